#!/usr/bin/env bash
# Install the pinned OpenMMLab stack and crossformer_mm into the current interpreter.
#
# Idempotent: every step is a pip call under requirements/constraints.txt, so a
# second run only checks. The pinned mmcv (with compiled ops) comes from the folder
# named by CFMM_WHEELHOUSE when it holds a matching wheel, otherwise it is built
# from source (20-35 minutes on 2 cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python}"
CONSTRAINTS="$ROOT/requirements/constraints.txt"
PIP=("$PY" -m pip install --constraint "$CONSTRAINTS")
# the tested versions, from the constraints file (the one place that pins them)
pinned() { sed -n "s/^$1==//p" "$CONSTRAINTS"; }
MMCV_VERSION="$(pinned mmcv)"

step() { echo; echo "==> [install] $*"; CURRENT_STEP="$*"; }
trap 'echo; echo "!! [install] FAILED at step: ${CURRENT_STEP:-start}" >&2' ERR

if [ -n "${CFMM_WHEELHOUSE:-}" ]; then
  if [ -d "$CFMM_WHEELHOUSE" ]; then
    WH="$(cd "$CFMM_WHEELHOUSE" && pwd)"
    export PIP_FIND_LINKS="${PIP_FIND_LINKS:+$PIP_FIND_LINKS }$WH"
    echo "[install] using wheelhouse $WH"
  else
    echo "[install] CFMM_WHEELHOUSE=$CFMM_WHEELHOUSE is not a folder; ignoring it"
  fi
fi

step "torch (kept if already installed)"
if "$PY" -c "import torch" 2>/dev/null; then
  "$PY" -c "import torch; print('torch', torch.__version__, 'already installed')"
else
  "${PIP[@]}" torch
fi

step "build tools: setuptools, wheel, ninja, numpy"
"${PIP[@]}" setuptools wheel ninja numpy

step "mmengine, opencv, pycocotools, xtcocotools, munkres"
"${PIP[@]}" mmengine opencv-python opencv-python-headless pycocotools xtcocotools munkres pandas

step "mmcv $MMCV_VERSION with compiled ops"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  echo "mmcv $MMCV_VERSION with ops already installed"
elif "$PY" -m pip download --no-deps --only-binary=:all: --no-index \
    ${PIP_FIND_LINKS:+$(printf -- '--find-links %s ' $PIP_FIND_LINKS)} \
    --constraint "$CONSTRAINTS" -d "$(mktemp -d)" mmcv >/dev/null 2>&1; then
  echo "found a prebuilt mmcv $MMCV_VERSION wheel"
  "${PIP[@]}" --only-binary=mmcv mmcv
else
  echo "no prebuilt mmcv $MMCV_VERSION wheel for this platform: building from source"
  echo "(77 C++ files; expect 20-35 minutes on 2 cores)"
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation --no-binary=mmcv mmcv
fi

step "mmdet, mmsegmentation (+ ftfy, regex)"
"${PIP[@]}" mmdet mmsegmentation ftfy regex

step "mmpose without chumpy, and its real dependencies"
"${PIP[@]}" --no-deps mmpose
"${PIP[@]}" json_tricks munkres xtcocotools six scipy matplotlib pillow

step "mmpretrain, and its dependencies"
# mmpretrain imports torchvision in four modules; where torchvision cannot be
# imported (CPU torch 2.13), crossformer_mm.classification supplies stand-ins
# (compat.mmpretrain_without_torchvision), so torchvision is not installed here.
"${PIP[@]}" mmpretrain einops importlib-metadata mat4py modelindex

step "openmim without openxlab"
"${PIP[@]}" --no-deps openmim
"${PIP[@]}" click colorama model-index rich tabulate requests pandas

step "test tools"
"${PIP[@]}" pytest scikit-learn  # scikit-learn: the digits of the classification learning check
"${PIP[@]}" yacs  # tests/utils/test_safe_load.py: released CrossFormer files pickle a yacs CfgNode

step "crossformer_mm (editable)"
"${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT"
# mim looks for <dist location>/crossformer_mm/.mim; a PEP 660 editable install
# keeps its dist-info in site-packages but the package in this repository, so
# link it there (what add_mim_extension did for old `setup.py develop` installs).
SITE="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
if [ ! -e "$SITE/crossformer_mm" ] || [ -L "$SITE/crossformer_mm" ]; then
  ln -sfn "$ROOT/crossformer_mm" "$SITE/crossformer_mm"  # (re-)point it at this checkout
  echo "linked $SITE/crossformer_mm -> $ROOT/crossformer_mm (for mim)"
fi
# The import hook that lets `from mmpose.apis import ...` work without torchvision
# before crossformer_mm is imported (_crossformer_mm_hook.py): wheels ship its .pth,
# editable installs do not, so write it into site-packages.
"$PY" "$ROOT/_crossformer_mm_hook.py" "$SITE"

step "Slurm (slurm-wlm: slurmctld, slurmd, srun) for tests/tools/test_slurm.py"
# The Slurm launcher test starts its own slurmctld + slurmd on 127.0.0.1.
# CFMM_NO_SLURM=1 skips this step (that test then fails, saying Slurm is missing).
if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v srun >/dev/null 2>&1; then
  echo "Slurm already installed: $(slurmctld -V 2>/dev/null || echo slurmctld)"
elif [ -n "${CFMM_NO_SLURM:-}" ]; then
  echo "CFMM_NO_SLURM is set: not installing Slurm (tests/tools/test_slurm.py will fail)"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's slurm-wlm with apt-get (no daemon is started or configured)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm >/dev/null
  echo "installed $(slurmctld -V)"
else
  echo "[install] Slurm (slurmctld, slurmd, srun) is not installed and this is not a root"
  echo "          shell on a Debian/Ubuntu system, so it is not installed automatically."
  echo "          tests/tools/test_slurm.py needs it: run as root"
  echo "          'apt-get install slurm-wlm' (or your distribution's slurm packages)."
fi

step "check imports"
"$PY" - <<'PY'
import importlib
mods = ['torch', 'numpy', 'mmengine', 'mmcv', 'mmcv.ops', 'mmdet', 'mmdet.models',
        'mmseg', 'mmseg.models', 'mmpose', 'mmpose.models', 'pycocotools',
        'xtcocotools', 'munkres', 'mim', 'crossformer_mm', 'mmpretrain',
        'crossformer_mm.classification', 'mmpretrain.models', 'sklearn']
for name in mods:
    mod = importlib.import_module(name)
    version = getattr(mod, '__version__', '')
    print(f'  {name:<16} {version}')
import numpy
assert numpy.__version__.startswith('1.'), f'numpy {numpy.__version__} is 2.x: the stack needs numpy<2'
import os.path as osp
import warnings
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    from mim.utils import get_installed_path
mim_tools = osp.join(get_installed_path('crossformer_mm'), '.mim', 'tools', 'train.py')
assert osp.isfile(mim_tools), f'mim cannot find crossformer_mm tools at {mim_tools}'
print(f'  mim finds         {osp.dirname(mim_tools)}')
print('[install] OK')
PY

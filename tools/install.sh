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

step "torch and its torchvision, from the package index"
# Keep a torch + torchvision pair that works (e.g. a CUDA build the user chose). Otherwise
# take the package index's builds, asked for with --isolated: the machine's pip
# configuration may prefer a local torch build (e.g. 2.13.0+cpu from a wheel folder) for
# which the index has no torchvision; mmpose and mmpretrain import torchvision.
TORCHVISION_WORKS='import torch, torchvision
boxes = torch.tensor([[0., 0., 2., 2.], [0., 0., 2., 2.1]])
assert torchvision.ops.nms(boxes, torch.tensor([1., .5]), .5).tolist() == [0]'
INDEX_PIP=("$PY" -m pip install --isolated --disable-pip-version-check)
if "$PY" -c "$TORCHVISION_WORKS" 2>/dev/null; then
  "$PY" -c "import torch, torchvision
print('torch', torch.__version__, 'with torchvision', torchvision.__version__, 'already installed')"
else
  TORCH_DIST="$("$PY" -c "import importlib.metadata as m; print(m.version('torch'))" 2>/dev/null || true)"
  if [[ "$TORCH_DIST" == *+* ]]; then
    echo "torch $TORCH_DIST is a local build: the package index has no torchvision for it;"
    echo "replacing it by the index's torch $(pinned torch)"
    "$PY" -m pip uninstall -y torch torchvision
    TORCH_DIST=
  fi
  if [ -z "$TORCH_DIST" ] || [ "$TORCH_DIST" = "$(pinned torch)" ]; then
    # the tested pair, both pinned in the constraints file
    "${INDEX_PIP[@]}" --constraint "$CONSTRAINTS" torch torchvision
  else
    # another torch from the index (kept): torch 2.M.P goes with torchvision 0.(M+15).P
    # (2.3.0 -> 0.18.0, ..., 2.13.0 -> 0.28.0)
    TV="$(echo "$TORCH_DIST" | awk -F. '$1 == 2 && $2 >= 3 {printf "0.%d.%d", $2 + 15, $3}')"
    if [ -z "$TV" ]; then
      echo "!! [install] torch $TORCH_DIST: install its matching torchvision by hand (or" \
           "'pip uninstall torch' and rerun for the tested torch $(pinned torch))" >&2
      false
    fi
    echo "torch $TORCH_DIST (not the tested $(pinned torch)): installing its torchvision $TV"
    "${INDEX_PIP[@]}" --no-deps "torchvision==$TV"
  fi
  "$PY" -c "$TORCHVISION_WORKS"
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
"${PIP[@]}" mmpretrain einops importlib-metadata mat4py modelindex

step "openmim without openxlab"
"${PIP[@]}" --no-deps openmim
"${PIP[@]}" click colorama model-index rich tabulate requests pandas

step "test tools"
"${PIP[@]}" pytest ruff scikit-learn  # scikit-learn: the digits of the classification learning check
"${PIP[@]}" yacs  # tests/utils/test_safe_load.py: released CrossFormer files pickle a yacs CfgNode
"${PIP[@]}" onnx onnxruntime onnxscript  # tests/deployment, tools/deployment: ONNX export, ONNX Runtime

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
# setuptools' editable install also writes __editable__.crossformer_mm-*.pth, which imports
# its finder at every interpreter start; the link above already makes `import crossformer_mm`
# load this checkout, so remove that .pth and its finder (pip uninstall skips missing files).
# crossformer_mm-hook.pth: written by this script before December 2026 (an import hook).
if [ "$(readlink -f "$SITE/crossformer_mm")" = "$(readlink -f "$ROOT/crossformer_mm")" ]; then
  rm -fv "$SITE"/__editable__.crossformer_mm-*.pth "$SITE"/__editable___crossformer_mm_*_finder.py
fi
rm -fv "$SITE/crossformer_mm-hook.pth"

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
CFMM_ROOT="$ROOT" "$PY" - <<'PY'
import importlib
mods = ['torch', 'torchvision', 'torchvision.ops', 'numpy', 'mmengine', 'mmcv', 'mmcv.ops',
        'mmdet', 'mmdet.models', 'mmseg', 'mmseg.models', 'mmpose', 'mmpose.models',
        'mmpose.apis', 'pycocotools', 'xtcocotools', 'munkres', 'mim', 'crossformer_mm',
        'mmpretrain', 'crossformer_mm.classification', 'mmpretrain.models', 'sklearn']
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
import glob
import os
import site
import sysconfig
import crossformer_mm
root = osp.realpath(os.environ['CFMM_ROOT'])
assert osp.realpath(crossformer_mm.__file__).startswith(osp.join(root, 'crossformer_mm', '')), (
    f'crossformer_mm is imported from {crossformer_mm.__file__}, not from this checkout {root}: '
    'pip uninstall crossformer_mm, then rerun tools/install.sh')
site_dirs = set(site.getsitepackages() + [sysconfig.get_paths()['purelib']])
pth = sorted(p for d in site_dirs for p in glob.glob(osp.join(d, '*crossformer*.pth')))
assert not pth, f'{pth} would run code at every interpreter start: delete them'
print('  no crossformer .pth in', ', '.join(sorted(site_dirs)))
print('[install] OK')
PY

#!/usr/bin/env bash
# Install the maintained stack (Python 3.12, numpy 2, the OneDL forks of the OpenMMLab
# packages) and crossformer_mm into a virtual environment of its own: .venv-onedl/ in
# this repository (CFMM_ONEDL_VENV overrides the folder). `make install STACK=onedl`.
#
# Idempotent: every step is a pip call under requirements/constraints-onedl.txt, so a
# second run only checks. The Python comes from pyenv (the newest 3.12.x it has;
# CFMM_ONEDL_PYTHON names another interpreter). pip calls run --isolated: the machine's
# pip configuration (local wheels, caps on torch) does not apply, the package index
# does, as for a user's machine. onedl-mmcv (with compiled ops) comes from the folder
# named by CFMM_WHEELHOUSE when it holds a matching wheel, otherwise it is built from
# source (15-25 minutes on 2 cores).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CFMM_ONEDL_VENV:-$ROOT/.venv-onedl}"
CONSTRAINTS="$ROOT/requirements/constraints-onedl.txt"
# the tested versions, from the constraints file (the one place that pins them)
pinned() { sed -n "s/^$1==//p" "$CONSTRAINTS"; }
MMCV_VERSION="$(pinned onedl-mmcv)"

step() { echo; echo "==> [install onedl] $*"; CURRENT_STEP="$*"; }
trap 'echo; echo "!! [install onedl] FAILED at step: ${CURRENT_STEP:-start}" >&2' ERR

step "Python 3.12 for $VENV"
find_python() {
  if [ -n "${CFMM_ONEDL_PYTHON:-}" ]; then
    echo "$CFMM_ONEDL_PYTHON"; return
  fi
  if command -v pyenv >/dev/null 2>&1; then
    local version
    version="$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12\.[0-9]+$' | sort -V | tail -n 1)"
    if [ -n "$version" ]; then
      echo "$(pyenv root)/versions/$version/bin/python"; return
    fi
  fi
  command -v python3.12 || true
}
BASE_PY="$(find_python)"
if [ -z "$BASE_PY" ] || ! "$BASE_PY" -c 'import sys; assert sys.version_info[:2] == (3, 12)' \
    2>/dev/null; then
  echo "[install onedl] no Python 3.12 found (looked in 'pyenv versions' and for python3.12;" >&2
  echo "                got '${BASE_PY:-nothing}'). Install one (pyenv install 3.12) or name" >&2
  echo "                it with CFMM_ONEDL_PYTHON=/path/to/python3.12." >&2
  false
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$BASE_PY" -m venv "$VENV"
  echo "created $VENV from $BASE_PY ($("$BASE_PY" -V))"
else
  echo "using $VENV ($("$VENV/bin/python" -V))"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --isolated --disable-pip-version-check --constraint "$CONSTRAINTS")

FIND_LINKS=()
if [ -n "${CFMM_WHEELHOUSE:-}" ]; then
  if [ -d "$CFMM_WHEELHOUSE" ]; then
    WH="$(cd "$CFMM_WHEELHOUSE" && pwd)"
    FIND_LINKS=(--find-links "$WH")
    echo "[install onedl] using wheelhouse $WH"
  else
    echo "[install onedl] CFMM_WHEELHOUSE=$CFMM_WHEELHOUSE is not a folder; ignoring it"
  fi
fi

step "torch and torchvision (the package index's builds)"
"${PIP[@]}" torch torchvision

step "build tools: setuptools, wheel, ninja, numpy, Cython"
"${PIP[@]}" setuptools wheel ninja numpy Cython

step "onedl-mmengine, opencv, pycocotools, xtcocotools (from source), munkres"
"${PIP[@]}" onedl-mmengine opencv-python opencv-python-headless pycocotools munkres
# xtcocotools has no cp312 wheel; its setup.py needs numpy and Cython at build time
"${PIP[@]}" --no-build-isolation xtcocotools

step "onedl-mmcv $MMCV_VERSION with compiled ops"
if "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null; then
  echo "onedl-mmcv $MMCV_VERSION with ops already installed"
elif [ ${#FIND_LINKS[@]} -gt 0 ] && "$PY" -m pip download --isolated --no-deps \
    --only-binary=:all: --no-index "${FIND_LINKS[@]}" --constraint "$CONSTRAINTS" \
    -d "$(mktemp -d)" onedl-mmcv >/dev/null 2>&1; then
  echo "found a prebuilt onedl-mmcv $MMCV_VERSION wheel"
  "${PIP[@]}" "${FIND_LINKS[@]}" --only-binary=onedl-mmcv onedl-mmcv
else
  echo "no prebuilt onedl-mmcv $MMCV_VERSION wheel for this platform: building from source"
  echo "(expect 15-25 minutes on 2 cores)"
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation --no-binary=onedl-mmcv onedl-mmcv
fi

step "onedl-mmdetection, onedl-mmsegmentation, onedl-mmpretrain"
"${PIP[@]}" --no-build-isolation onedl-mmdetection onedl-mmsegmentation onedl-mmpretrain

step "mmpose without chumpy, and its real dependencies"
"${PIP[@]}" --no-deps mmpose
"${PIP[@]}" json_tricks munkres six scipy matplotlib pillow

step "onedl-mim without opendatalab"
# its opendatalab dependency pulls openxlab and much else, and mim runs without it
"${PIP[@]}" --no-build-isolation --no-deps onedl-mim
"${PIP[@]}" click colorama model-index rich tabulate requests pandas packaging

step "test tools"
"${PIP[@]}" pytest scikit-learn  # scikit-learn: the digits of the classification learning check
"${PIP[@]}" yacs  # tests/utils/test_safe_load.py: released CrossFormer files pickle a yacs CfgNode
"${PIP[@]}" onnx onnxruntime onnxscript  # tests/deployment, tools/deployment: ONNX export, ONNX Runtime

step "crossformer_mm (editable)"
"${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT"
# mim looks for <dist location>/crossformer_mm/.mim; the PEP 660 editable install keeps
# its dist-info in site-packages and the package in this repository: link it there.
SITE="$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")"
if [ ! -e "$SITE/crossformer_mm" ] || [ -L "$SITE/crossformer_mm" ]; then
  ln -sfn "$ROOT/crossformer_mm" "$SITE/crossformer_mm"
  echo "linked $SITE/crossformer_mm -> $ROOT/crossformer_mm (for mim)"
fi
# setuptools' __editable__.crossformer_mm-*.pth imports its finder at every interpreter
# start; the link already makes `import crossformer_mm` load this checkout (as in
# tools/install.sh): remove the .pth and its finder.
if [ "$(readlink -f "$SITE/crossformer_mm")" = "$(readlink -f "$ROOT/crossformer_mm")" ]; then
  rm -fv "$SITE"/__editable__.crossformer_mm-*.pth "$SITE"/__editable___crossformer_mm_*_finder.py
fi

step "Slurm (for tests/tools/test_slurm.py)"
if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 \
    && command -v srun >/dev/null 2>&1; then
  echo "Slurm installed: $(slurmctld -V 2>/dev/null || echo slurmctld)"
else
  echo "Slurm (slurmctld, slurmd, srun) is not installed: 'make install' installs it as root"
  echo "(tests/tools/test_slurm.py fails without it)"
fi

step "check imports"
# (from another folder: a crossformer_mm.egg-info left in the checkout by an older
# install would otherwise be the distribution that importlib.metadata finds)
cd "$VENV"
"$PY" - "$CONSTRAINTS" <<'PY'
import importlib
import importlib.metadata as metadata
import os.path as osp
import re
import sys
import warnings

mods = ['torch', 'torchvision', 'numpy', 'mmengine', 'mmcv', 'mmcv.ops', 'mmdet',
        'mmdet.models', 'mmseg', 'mmseg.models', 'mmpose', 'mmpose.models', 'pycocotools',
        'xtcocotools', 'munkres', 'mim', 'mmpretrain', 'mmpretrain.models', 'crossformer_mm',
        'crossformer_mm.classification', 'sklearn']
for name in mods:
    mod = importlib.import_module(name)
    print(f'  {name:<30} {getattr(mod, "__version__", "")}')
with open(sys.argv[1]) as f:
    pins = dict(re.findall(r'^([A-Za-z0-9_.-]+)==(\S+)', f.read(), re.M))
wrong = {name: (metadata.version(name), version) for name, version in pins.items()
         if metadata.version(name).split('+')[0] != version}
assert not wrong, f'installed versions differ from constraints-onedl.txt: {wrong}'
for original in ('mmcv', 'mmengine', 'mmdet', 'mmsegmentation', 'mmpretrain', 'openmim'):
    try:
        metadata.version(original)
    except metadata.PackageNotFoundError:
        continue
    raise AssertionError(f'the original {original} is installed beside the OneDL forks')
with warnings.catch_warnings():
    warnings.simplefilter('ignore')
    from mim.utils import get_installed_path
# onedl-mim takes <root>/.mim/tools/train.py, else <root>/tools/train.py, where <root> is
# the checkout for an editable install and site-packages/crossformer_mm for a wheel
root = get_installed_path('crossformer_mm')
scripts = [osp.join(root, *parts, 'train.py') for parts in (('.mim', 'tools'), ('tools',))]
assert any(map(osp.isfile, scripts)), f'mim cannot find crossformer_mm tools at {scripts}'
print(f'  mim finds                      {next(filter(osp.isfile, scripts))}')
print('[install onedl] OK')
PY

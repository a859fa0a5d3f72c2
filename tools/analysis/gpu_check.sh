#!/usr/bin/env bash
# The GPU check of the CrossFormer backbone on a bare CUDA machine, without network:
# installs the carried wheels of wheels/gpu_check/ (tools/analysis/gpu_check_requirements.txt)
# into a temporary folder, puts it and this working tree on PYTHONPATH (the machine's own
# torch, numpy and timm are used) and runs tools/analysis/gpu_check.py within GPU_CHECK_TOTAL_S
# seconds (default 290) in all. Writes $OUT/gpu_check.json and $OUT/gpu_check.log
# (OUT defaults to work_dirs/gpu_check). Arguments go to gpu_check.py, e.g.
#   bash tools/analysis/gpu_check.sh                       # CUDA
#   bash tools/analysis/gpu_check.sh --device cpu --smoke  # a CPU run of the same path
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${PYTHON:-python3}"
WHEELS="$ROOT/wheels/gpu_check"
REQUIREMENTS="$ROOT/tools/analysis/gpu_check_requirements.txt"
TOTAL_S="${GPU_CHECK_TOTAL_S:-290}"
export OUT="${OUT:-$ROOT/work_dirs/gpu_check}"
say() { echo "[gpu_check.sh ${SECONDS}s] $*"; }

if ! compgen -G "$WHEELS/*.whl" > /dev/null; then
  echo "[gpu_check.sh] no wheels in $WHEELS: make them with" \
       "'bash tools/analysis/gpu_check_wheels.sh' (needs PyPI) and carry that folder" >&2
  exit 2
fi
TMP="$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
SITE="$TMP/site"
mkdir -p "$OUT"

say "python: $(command -v "$PY") ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"
if "$PY" -m pip --version > /dev/null 2>&1; then
  say "installing $(grep -c '==' "$REQUIREMENTS") wheels from $WHEELS into $SITE (no index, no deps)"
  "$PY" -m pip install --quiet --no-index --no-deps --no-compile --disable-pip-version-check \
    --find-links "$WHEELS" --target "$SITE" -r "$REQUIREMENTS"
else
  say "no pip: unpacking the wheels of $WHEELS into $SITE"
  for wheel in "$WHEELS"/*.whl; do "$PY" -m zipfile -e "$wheel" "$SITE"; done
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c 'import crossformer_mm, mmcv, mmengine, torch
print(f"[gpu_check.sh] crossformer_mm from {crossformer_mm.__file__}; mmengine {mmengine.__version__},"
      f" mmcv {mmcv.__version__}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")' \
  2>&1 | grep -v ' - mmengine - INFO - '

LEFT=$((TOTAL_S - SECONDS))
if [ "$LEFT" -lt 60 ]; then
  echo "[gpu_check.sh] only ${LEFT}s of GPU_CHECK_TOTAL_S=${TOTAL_S}s left after the install" >&2
  exit 2
fi
say "running tools/analysis/gpu_check.py (timeout ${LEFT}s, timing budget $((LEFT - 25))s)"
set +e
timeout --kill-after=5 "$LEFT" "$PY" "$ROOT/tools/analysis/gpu_check.py" \
  --budget-s "$((LEFT - 25))" --out "$OUT/gpu_check.json" "$@" 2>&1 | tee "$OUT/gpu_check.log"
STATUS=${PIPESTATUS[0]}
set -e
case "$STATUS" in
  0) say "passed; results in $OUT/gpu_check.json" ;;
  124|137) say "stopped at the ${TOTAL_S}s limit; partial results in $OUT/gpu_check.json" ;;
  *) say "a check failed or a section errored (exit $STATUS); see $OUT/gpu_check.json" ;;
esac
exit "$STATUS"

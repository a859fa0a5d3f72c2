#!/usr/bin/env bash
# Download the wheels of tools/analysis/gpu_check_requirements.txt into wheels/gpu_check/
# (Python 3.12, x86-64 Linux; pure-Python wheels where they exist), for
# tools/analysis/gpu_check.sh on a machine without network. Needs PyPI.
#   bash tools/analysis/gpu_check_wheels.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/wheels/gpu_check"
PY="${PYTHON:-python}"
mkdir -p "$DEST"
"$PY" -m pip download --no-deps --only-binary=:all: --dest "$DEST" \
  --python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
  -r "$ROOT/tools/analysis/gpu_check_requirements.txt"
du -b "$DEST"/*.whl | awk '{printf "%8.2f MiB  %s\n", $1 / 2^20, $2; t += $1}
                          END {printf "%8.2f MiB  total\n", t / 2^20}'

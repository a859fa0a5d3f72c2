#!/usr/bin/env bash
# Multi-process testing with torchrun:  tools/dist_test.sh CONFIG CHECKPOINT NPROC [test.py args]
# e.g. tools/dist_test.sh CONFIG CKPT 8 --eval bbox segm. Without CUDA the
# processes use the gloo backend. Multi-node: see dist_run.sh.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 CONFIG CHECKPOINT NPROC [tools/test.py arguments]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" "$3" test.py "$1" "$2" "${@:4}"

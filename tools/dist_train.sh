#!/usr/bin/env bash
# Multi-process training with torchrun:  tools/dist_train.sh CONFIG NPROC [train.py args]
# Without CUDA the processes use the gloo backend. Multi-node: NNODES,
# NODE_RANK, MASTER_ADDR, PORT (see dist_run.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 CONFIG NPROC [tools/train.py arguments]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/dist_run.sh" "$2" train.py "$1" "${@:3}"

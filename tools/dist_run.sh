#!/usr/bin/env bash
# Run a tool of this folder in NPROC processes with torchrun (used by
# dist_train.sh / dist_test.sh):  tools/dist_run.sh NPROC SCRIPT [args]
# Without CUDA the processes use the gloo backend (crossformer_mm/utils/runtime.py).
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR, PORT.
set -euo pipefail
NPROC=$1
SCRIPT=$2
PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
torchrun \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --nproc_per_node="$NPROC" \
    --master_port="${PORT:-29500}" \
    "$(dirname "$0")/$SCRIPT" "${@:3}" --launcher pytorch

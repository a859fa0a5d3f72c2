#!/usr/bin/env bash
# Run a tool of this folder in NPROC processes per node with torchrun (used by
# dist_train.sh / dist_test.sh):  [VAR=...] tools/dist_run.sh NPROC SCRIPT [args]
# Without CUDA the processes use the gloo backend (crossformer_mm.compat.dist_init_without_cuda).
#
# Multi-node (as in mmdet's dist_train.sh): run the same command on every node with
#   NNODES       number of nodes [1]
#   NODE_RANK    this node's rank, 0 .. NNODES-1 [0]
#   MASTER_ADDR  address of node 0, reachable from all nodes [127.0.0.1]
#   PORT         free TCP port on node 0 [29500]
# e.g. on node 0: NNODES=2 NODE_RANK=0 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8
#      on node 1: NNODES=2 NODE_RANK=1 MASTER_ADDR=10.0.0.1 tools/dist_train.sh CONFIG 8
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 NPROC SCRIPT [arguments of SCRIPT]" >&2
  exit 2
fi
NPROC=$1
SCRIPT=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
MASTER_ADDR=${MASTER_ADDR:-127.0.0.1}
PORT=${PORT:-29500}
for var in NPROC NNODES NODE_RANK PORT; do
  if ! [[ ${!var} =~ ^[0-9]+$ ]]; then
    echo "$0: $var=${!var} is not a whole number" >&2
    exit 2
  fi
done
if [ "$NPROC" -lt 1 ] || [ "$NNODES" -lt 1 ] || [ "$NODE_RANK" -ge "$NNODES" ]; then
  echo "$0: need NPROC >= 1, NNODES >= 1 and 0 <= NODE_RANK < NNODES" \
    "(NPROC=$NPROC NNODES=$NNODES NODE_RANK=$NODE_RANK)" >&2
  exit 2
fi
export PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}"
# torchrun of this interpreter
"${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$(dirname "$0")/$SCRIPT" "${@:3}" --launcher pytorch

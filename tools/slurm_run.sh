#!/usr/bin/env bash
# Run a tool of this folder as a Slurm job step (used by slurm_train.sh /
# slurm_test.sh):  [VAR=...] tools/slurm_run.sh PARTITION JOB_NAME SCRIPT [args]
#
# Environment (as in mmdet's slurm_train.sh; defaults in brackets):
#   GPUS            total number of tasks = processes = ranks [8]
#   GPUS_PER_NODE   GPUs per node [8]; 0 = a CPU partition: no --gres at all
#   TASKS_PER_NODE  --ntasks-per-node [min(GPUS, GPUS_PER_NODE) on GPUs;
#                   not passed on CPUs, so Slurm places the GPUS tasks]
#   CPUS_PER_TASK   --cpus-per-task [1: fits any node; raise it for data
#                   loader workers, e.g. 5 on 8-GPU/40-core nodes]
#   SRUN_ARGS       extra srun arguments, e.g. "--mem=32G --time=2:00:00"
#   PORT            MASTER_PORT of the process group [29500 (mmengine)]
#   PYTHON          interpreter [python]
# Inside an sbatch allocation srun starts its step there.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: $0 PARTITION JOB_NAME SCRIPT [arguments of SCRIPT]" >&2
  exit 2
fi
PARTITION=$1
JOB_NAME=$2
SCRIPT=$3
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-1}

for var in GPUS GPUS_PER_NODE CPUS_PER_TASK ${TASKS_PER_NODE:+TASKS_PER_NODE}; do
  if ! [[ ${!var} =~ ^[0-9]+$ ]]; then
    echo "$0: $var=${!var} is not a whole number" >&2
    exit 2
  fi
done
if [ "$GPUS" -lt 1 ] || [ "$CPUS_PER_TASK" -lt 1 ] || [ "${TASKS_PER_NODE:-1}" -lt 1 ]; then
  echo "$0: GPUS, CPUS_PER_TASK and TASKS_PER_NODE must be at least 1" \
    "(GPUS=$GPUS CPUS_PER_TASK=$CPUS_PER_TASK TASKS_PER_NODE=${TASKS_PER_NODE:-unset});" \
    "on a CPU partition set GPUS_PER_NODE=0 and GPUS to the number of processes" >&2
  exit 2
fi

SRUN_OPTS=(-p "$PARTITION" --job-name="$JOB_NAME" --ntasks="$GPUS"
           --cpus-per-task="$CPUS_PER_TASK" --kill-on-bad-exit=1)
if [ "$GPUS_PER_NODE" -gt 0 ]; then
  # one task per GPU; a single-node job of fewer GPUs asks only for those
  NODE_GPUS=$(( GPUS < GPUS_PER_NODE ? GPUS : GPUS_PER_NODE ))
  SRUN_OPTS+=(--gres=gpu:"$NODE_GPUS" --ntasks-per-node="${TASKS_PER_NODE:-$NODE_GPUS}")
elif [ -n "${TASKS_PER_NODE:-}" ]; then
  SRUN_OPTS+=(--ntasks-per-node="$TASKS_PER_NODE")
fi
if [ -n "${PORT:-}" ]; then
  export MASTER_PORT=$PORT  # read by mmengine's slurm launcher in every task
fi

export PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}"
set -x
# SRUN_ARGS is split into words on purpose (several options)
# shellcheck disable=SC2086
srun "${SRUN_OPTS[@]}" ${SRUN_ARGS:-} \
    "${PYTHON:-python}" -u "$(dirname "$0")/$SCRIPT" "${@:4}" --launcher=slurm

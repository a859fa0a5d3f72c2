#!/usr/bin/env bash
# Testing on Slurm:  tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args]
# GPUS (tasks, 8), GPUS_PER_NODE (8; 0 = CPU partition, no --gres), TASKS_PER_NODE,
# CPUS_PER_TASK (1), SRUN_ARGS, PORT as in mmdet (see slurm_run.sh), e.g.
#   GPUS=8 tools/slurm_test.sh gpu mask_rcnn_test CONFIG CKPT --eval bbox
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [tools/test.py arguments]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" test.py "$3" "$4" "${@:5}"

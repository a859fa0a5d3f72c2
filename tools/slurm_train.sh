#!/usr/bin/env bash
# Training on Slurm:  tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# GPUS (tasks, 8), GPUS_PER_NODE (8; 0 = CPU partition, no --gres), TASKS_PER_NODE,
# CPUS_PER_TASK (1), SRUN_ARGS, PORT as in mmdet (see slurm_run.sh), e.g.
#   GPUS=16 GPUS_PER_NODE=8 CPUS_PER_TASK=5 tools/slurm_train.sh gpu mask_rcnn CONFIG work_dirs/x
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 PARTITION JOB_NAME CONFIG WORK_DIR [tools/train.py arguments]" >&2
  exit 2
fi
exec bash "$(dirname "$0")/slurm_run.sh" "$1" "$2" train.py "$3" --work-dir="$4" "${@:5}"

#!/usr/bin/env bash
# Multi-node training under SLURM, driven by environment variables only:
#   RECIPE=recipes/configs/flextok/d18_d28_tokenizer.yaml GPUS_PER_NODE=8 sbatch --nodes=4 --gpus-per-node=8 \
#       --ntasks-per-node=1 recipes/launch/slurm_train.sh [section.key=value ...]
# Optional: ACCELERATE_CONFIG (default recipes/accelerate/multinode.yaml), MAIN_PORT (29500), VENV (.venv).
#SBATCH --job-name=unitok-train
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
: "${RECIPE:?set RECIPE to a recipes/configs/... YAML}"
GPUS_PER_NODE="${GPUS_PER_NODE:-8}"
ACCELERATE_CONFIG="${ACCELERATE_CONFIG:-recipes/accelerate/multinode.yaml}"
MAIN_PORT="${MAIN_PORT:-29500}"
VENV="${VENV:-.venv}"
MAIN_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
NUM_NODES="${SLURM_NNODES:-1}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"
# One launcher per node; each starts GPUS_PER_NODE processes. train.resume=latest makes requeued jobs continue.
srun --kill-on-bad-exit=1 bash -c "\"$VENV/bin/accelerate\" launch --config_file \"$ACCELERATE_CONFIG\" \
    --num_machines $NUM_NODES --num_processes $((NUM_NODES * GPUS_PER_NODE)) --machine_rank \$SLURM_NODEID \
    --main_process_ip $MAIN_ADDR --main_process_port $MAIN_PORT \
    recipes/train.py --config \"$RECIPE\" train.resume=latest $*"

#!/usr/bin/env bash
# Smoke test of a cluster before a long run: Qwen2.5-VL-3B, 3 steps of 8 images x 4 rollouts,
# through the same code path as the main run (LoRA, vLLM, GRPO, speciarl reward, dataset class).
# GPUs: 2 (1 trains, 1 serves a small local judge), or 1 with SPECIARL_JUDGE_URLS set.
set -euo pipefail
: "${MODEL_PATH:=Qwen/Qwen2.5-VL-3B-Instruct}"
: "${SPECIARL_JUDGE_MODEL:=Qwen/Qwen3-4B-Instruct-2507}"
: "${JUDGE_TP:=1}"
: "${ROLLOUT_TP:=1}"
: "${TRAIN_SUBSET:=64}"
: "${VAL_SUBSET:=16}"
: "${TRAIN_BATCH_SIZE:=8}"
: "${ROLLOUT_N:=4}"
: "${PPO_MINI_BATCH_SIZE:=8}"
: "${PPO_MICRO_BATCH_SIZE_PER_GPU:=4}"
: "${LOG_PROB_MICRO_BATCH_SIZE_PER_GPU:=4}"
: "${MAX_RESPONSE_LENGTH:=1024}"
: "${ROLLOUT_GPU_MEMORY_UTILIZATION:=0.5}"
: "${TOTAL_TRAINING_STEPS:=3}"
: "${TEST_FREQ:=2}"
: "${SAVE_FREQ:=-1}"
: "${REWARD_NUM_WORKERS:=2}"
: "${GROUP_TIMEOUT_S:=120}"
: "${JUDGE_READY_TIMEOUT_S:=900}"
: "${LOGGERS:=console}"
: "${DRY_RUN_GPUS:=2}"
: "${EXPERIMENT_NAME:=smoke_qwen25vl3b}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

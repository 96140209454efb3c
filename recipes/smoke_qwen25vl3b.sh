#!/usr/bin/env bash
# Smoke test of a cluster before a long run: Qwen2.5-VL-3B, 3 steps of 8 images x 4 rollouts,
# through the same code path as the main run (LoRA, vLLM, GRPO, speciarl reward, dataset class).
# GPUs: 2 (1 trains, 1 serves a small local judge), or 1 with SPECIARL_JUDGE_URLS set.
set -euo pipefail
RECIPE_VARIANT=smoke_qwen25vl3b  # its settings: verl_ext/recipes/config/recipe/smoke_qwen25vl3b.yaml
: "${JUDGE_TP:=1}"
: "${JUDGE_READY_TIMEOUT_S:=900}"
: "${TRAIN_SUBSET:=64}"
: "${VAL_SUBSET:=16}"
: "${DRY_RUN_GPUS:=2}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

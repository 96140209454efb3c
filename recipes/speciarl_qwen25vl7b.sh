#!/usr/bin/env bash
# The paper's main run: Qwen2.5-VL-7B-Instruct + LoRA, GRPO with the SpeciaRL best-in-group reward,
# 3,000 CUB images x 10 rollouts, judged by Qwen3-30B-A3B-Instruct-2507-FP8.
#
#   bash recipes/speciarl_qwen25vl7b.sh                 # fresh 8-GPU node: data, judge, training
#   DRY_RUN=1 bash recipes/speciarl_qwen25vl7b.sh       # check the config on any machine
#   SPECIARL_JUDGE_URLS=http://judge:8000/v1 bash recipes/speciarl_qwen25vl7b.sh trainer.total_epochs=1
#
# Every setting is an environment variable (see recipes/common.sh and docs/recipes.md);
# extra Hydra overrides pass through to verl last.
set -euo pipefail
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_speciarl}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

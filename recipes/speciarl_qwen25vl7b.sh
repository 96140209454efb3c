#!/usr/bin/env bash
# The paper's main run: Qwen2.5-VL-7B-Instruct + LoRA, GRPO with the SpeciaRL best-in-group reward,
# 3,000 CUB images x 10 rollouts, judged by Qwen3-30B-A3B-Instruct-2507-FP8.
#
#   bash recipes/speciarl_qwen25vl7b.sh                 # fresh 8-GPU node: data, judge, training
#   DRY_RUN=1 bash recipes/speciarl_qwen25vl7b.sh       # check the config on any machine
#   SPECIARL_JUDGE_URLS=http://judge:8000/v1 bash recipes/speciarl_qwen25vl7b.sh trainer.total_epochs=1
#
# Its settings are the Hydra config verl_ext/recipes/config/speciarl.yaml; arguments are Hydra
# overrides, passed to verl last. The node's settings (GPUs, judge, data) are environment
# variables (recipes/common.sh, docs/recipes.md).
set -euo pipefail
RECIPE_VARIANT=""  # the main run itself: verl_ext/recipes/config/speciarl.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

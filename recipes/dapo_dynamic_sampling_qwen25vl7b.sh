#!/usr/bin/env bash
# Ablation: DAPO with dynamic sampling. Groups whose rollouts all score the same (zero advantage)
# are dropped and replaced until 256 informative groups are collected (3 train batches of
# generation in flight at most, the paper's 768 prompts).
set -euo pipefail
RECIPE_VARIANT=dapo_dynamic_sampling_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/dapo_dynamic_sampling_qwen25vl7b.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

#!/usr/bin/env bash
# Ablation: 15 rollouts per image instead of 10.
set -euo pipefail
RECIPE_VARIANT=rollouts_n15_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/rollouts_n15_qwen25vl7b.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

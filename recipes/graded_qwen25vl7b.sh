#!/usr/bin/env bash
# Baseline: static graded rewards. reward.speciarl.rule picks the map:
#   scala1 (default): 1 / 0.75 / 0.5 / 0.25 / 0   scala2: abstain 0   scala3: generic and abstain 0
#   bash recipes/graded_qwen25vl7b.sh reward.speciarl.rule=scala3
set -euo pipefail
RECIPE_VARIANT=graded_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/graded_qwen25vl7b.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

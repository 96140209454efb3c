#!/usr/bin/env bash
# Baseline: static graded rewards (speciarl-method.md §5.1). REWARD_RULE picks the map:
#   scala1 (default): 1 / 0.75 / 0.5 / 0.25 / 0   scala2: abstain 0   scala3: generic and abstain 0
#   REWARD_RULE=scala3 bash recipes/graded_qwen25vl7b.sh
set -euo pipefail
: "${REWARD_RULE:=scala1}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_graded_${REWARD_RULE}}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

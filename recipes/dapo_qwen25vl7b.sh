#!/usr/bin/env bash
# Ablation: DAPO without dynamic sampling: decoupled clip (0.2 / 0.28), token-mean loss, no KL,
# dynamic batch size capped at 4,096 tokens per GPU, and the overlong penalty applied by the
# speciarl reward manager (see recipes/dapo_defaults.sh). REWARD_RULE=binary gives the paper's
# DAPO x binary row.
set -euo pipefail
: "${FILTER_GROUPS:=False}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_dapo_${REWARD_RULE:-best_in_group}}"
# shellcheck source=SCRIPTDIR/dapo_defaults.sh
source "$(dirname "${BASH_SOURCE[0]}")/dapo_defaults.sh"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

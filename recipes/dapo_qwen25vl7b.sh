#!/usr/bin/env bash
# Ablation: DAPO without dynamic sampling: decoupled clip (0.2 / 0.28), token-mean loss, no KL,
# dynamic batch size capped at 4,096 tokens per GPU, and the overlong penalty applied by the
# speciarl reward manager. reward.speciarl.rule=binary gives the paper's DAPO x binary row.
set -euo pipefail
RECIPE_VARIANT=dapo_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/dapo_qwen25vl7b.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

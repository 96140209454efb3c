#!/usr/bin/env bash
# Ablation: Dr.GRPO (no std normalisation of advantages, sequence-sum / token-normalised loss,
# no KL loss). reward.speciarl.rule=binary gives the paper's Dr.GRPO x binary row.
set -euo pipefail
RECIPE_VARIANT=drgrpo_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/drgrpo_qwen25vl7b.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

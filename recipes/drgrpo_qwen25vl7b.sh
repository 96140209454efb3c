#!/usr/bin/env bash
# Ablation: Dr.GRPO (no std normalisation of advantages, sequence-sum / token-normalised loss,
# no KL loss). REWARD_RULE=binary gives the paper's Dr.GRPO x binary row.
set -euo pipefail
: "${ADV_ESTIMATOR:=grpo}"
: "${NORM_ADV_BY_STD:=False}"
: "${LOSS_AGG_MODE:=seq-mean-token-sum-norm}"
: "${USE_KL_LOSS:=False}"
: "${KL_LOSS_COEF:=0.0}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_drgrpo_${REWARD_RULE:-best_in_group}}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

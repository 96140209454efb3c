#!/usr/bin/env bash
# Ablation: label noise. Each judged category moves one step up or down the ladder with
# probability LABEL_NOISE (0.05, 0.10 or 0.25 in the paper), seeded by REWARD_SEED, before the
# best-in-group rule. Trained on the 1,024-image CUB subset.
#   LABEL_NOISE=0.25 bash recipes/label_noise_qwen25vl7b.sh
set -euo pipefail
: "${LABEL_NOISE:=0.10}"
: "${TRAIN_SUBSET:=1024}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub1024_speciarl_noise${LABEL_NOISE}}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

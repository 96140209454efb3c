#!/usr/bin/env bash
# Ablation: label noise. Each judged category moves one step up or down the ladder with
# probability reward.speciarl.label_noise (0.05, 0.10 or 0.25 in the paper; default 0.10),
# seeded by reward.speciarl.seed, before the best-in-group rule. Trained on the 1,024-image CUB subset.
#   bash recipes/label_noise_qwen25vl7b.sh reward.speciarl.label_noise=0.25
set -euo pipefail
RECIPE_VARIANT=label_noise_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/label_noise_qwen25vl7b.yaml
: "${TRAIN_SUBSET:=1024}"  # data preparation: the 1,024-image training subset
# LABEL_NOISE (the older way to set the noise) also names the run after the noise as written
# (noise0.10), as it always did; the config's own name prints the number (noise0.1).
if [[ -n "${LABEL_NOISE:-}" ]]; then
  : "${EXPERIMENT_NAME:=qwen25vl7b_cub1024_speciarl_noise${LABEL_NOISE}}"
fi
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

#!/usr/bin/env bash
# Ablation: 15 rollouts per image instead of 10.
set -euo pipefail
: "${ROLLOUT_N:=15}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_speciarl_n15}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

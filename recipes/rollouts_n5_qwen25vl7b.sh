#!/usr/bin/env bash
# Ablation: 5 rollouts per image instead of 10.
set -euo pipefail
: "${ROLLOUT_N:=5}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_speciarl_n5}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

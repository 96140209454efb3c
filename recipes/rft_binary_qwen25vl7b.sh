#!/usr/bin/env bash
# Baseline: RFT with the static binary reward (1 for specific or more specific, else 0),
# speciarl-method.md §5.1 'reward3'. Everything else as the main run.
set -euo pipefail
: "${REWARD_RULE:=binary}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_rft_binary}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

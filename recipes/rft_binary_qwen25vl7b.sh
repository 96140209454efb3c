#!/usr/bin/env bash
# Baseline: RFT with the static binary reward (1 for specific or more specific, else 0).
# Everything else as the main run.
set -euo pipefail
RECIPE_VARIANT=rft_binary_qwen25vl7b  # its settings: verl_ext/recipes/config/recipe/rft_binary_qwen25vl7b.yaml
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

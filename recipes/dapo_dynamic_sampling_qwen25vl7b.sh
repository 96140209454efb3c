#!/usr/bin/env bash
# Ablation: DAPO with dynamic sampling. Groups whose rollouts all score the same (zero advantage)
# are dropped and replaced until 256 informative groups are collected.
# In verl 0.9's V1 trainer: algorithm.filter_groups.metric names a reward_extra_info key
# ("score" = the rule's reward for the rollout); max_inflight_gen_batches=3 (in units of
# train_batch_size, i.e. the paper's gen_batch_size of 768 prompts) bounds speculative
# generation; V1 ignores max_num_gen_batches, and data.gen_batch_size when filtering is on
# (it is still set, so the reward manager sizes its concurrency check for 768 x 10 rollouts).
set -euo pipefail
: "${FILTER_GROUPS:=True}"
: "${FILTER_GROUPS_METRIC:=score}"
: "${FILTER_GROUPS_MAX_INFLIGHT:=3}"
: "${GEN_BATCH_SIZE:=768}"
: "${REWARD_NUM_WORKERS:=16}"   # 7,680 rollouts may be in flight; keeps each worker under Ray's call cap
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_dapo_ds_${REWARD_RULE:-best_in_group}}"
# shellcheck source=SCRIPTDIR/dapo_defaults.sh
source "$(dirname "${BASH_SOURCE[0]}")/dapo_defaults.sh"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
speciarl_main "$@"

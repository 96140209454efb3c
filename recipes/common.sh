# shellcheck shell=bash
# Shared machinery of every SpeciaRL training recipe (sourced, never run directly).
#
# A recipe sets the defaults that differ (with `: "${NAME:=value}"`, so the user's environment
# still wins), sources this file, and calls `speciarl_main "$@"`. Every setting below can be
# changed through the environment; extra Hydra overrides given to the recipe pass through last.
#
# What speciarl_main does (see docs/recipes.md):
#   1. finds the GPUs and splits them between training and a local judge;
#   2. prepares the parquet files with data_prep/ if they are missing;
#   3. checks the model weights, starts (or checks) the judge and waits until it answers;
#   4. runs `python3 -m verl.trainer.main_ppo` with the overrides; stops the judge on exit.
# DRY_RUN=1 skips 1-3 (no GPU, no judge, no data needed) and runs
# `python3 -m verl_ext.recipes.dry_run` instead, which composes and validates the full config.

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${RECIPES_DIR}/.." && pwd)"

# ---------------------------------------------------------------- launch mode
: "${DRY_RUN:=0}"                   # 1: compose + validate the config only (no GPU needed)
: "${DRY_RUN_CONFIG:=}"             # with DRY_RUN=1: write the resolved config to this YAML file
: "${DRY_RUN_GPUS:=8}"              # with DRY_RUN=1: GPUs assumed on the node (no detection)
: "${DRY_RUN_EMIT:=}"               # testing hook: write the final argument list (NUL-separated) here and stop
: "${PYTHON:=python3}"              # interpreter with verl and verl_ext installed

# ---------------------------------------------------------------- model
: "${MODEL_PATH:=Qwen/Qwen2.5-VL-7B-Instruct}"   # hub id or local folder
: "${ATTN_IMPL:=auto}"              # auto | flash_attention_2 | sdpa | eager (auto: flash-attn if importable)
: "${USE_REMOVE_PADDING:=auto}"     # auto: on with flash-attn, off otherwise
: "${GRADIENT_CHECKPOINTING:=True}"
: "${LORA_RANK:=64}"                # 0 = full fine-tuning
: "${LORA_ALPHA:=32}"
: "${LORA_TARGET_MODULES:=all-linear}"
: "${LORA_EXCLUDE_MODULES:=.*visual.*}"  # regex (peft fullmatch): the whole vision tower incl. merger stays frozen
: "${ACTOR_STRATEGY:=fsdp}"

# ---------------------------------------------------------------- data
: "${DATA_DIR:=${HOME}/data/speciarl}"          # parquet output root: <DATA_DIR>/<source>/<split>.parquet
: "${DATA_SOURCE:=cub200}"                       # training domain (data_prep script: cub200 -> cub.py)
: "${DATA_ROOT:=${DATA_DIR}/raw/${DATA_SOURCE}}" # official archives / extracted layout for data_prep
: "${DATA_DOWNLOAD:=1}"             # 1: let data_prep download missing archives
: "${DATA_SEED:=42}"
: "${TRAIN_SUBSET:=3000}"           # images in the training subset
: "${VAL_SUBSET:=500}"              # images in the held-out validation subset (from the test split)
: "${TRAIN_FILES:=${DATA_DIR}/${DATA_SOURCE}/train_sub${TRAIN_SUBSET}_seed${DATA_SEED}.parquet}"  # comma-separated
: "${VAL_FILES:=${DATA_DIR}/${DATA_SOURCE}/test_sub${VAL_SUBSET}_seed${DATA_SEED}.parquet}"
: "${PROMPT_VARIANT:=general}"      # general | specific | custom text | file://path
: "${ON_BAD_IMAGE:=error}"          # error | skip (counted)
: "${MAX_PROMPT_LENGTH:=2048}"
: "${MAX_RESPONSE_LENGTH:=2048}"

# ---------------------------------------------------------------- algorithm
: "${ADV_ESTIMATOR:=grpo}"
: "${NORM_ADV_BY_STD:=True}"        # False for Dr.GRPO
: "${LR:=3e-5}"
: "${TRAIN_BATCH_SIZE:=256}"        # prompts (images) per step
: "${ROLLOUT_N:=10}"                # rollouts per image
: "${PPO_MINI_BATCH_SIZE:=128}"     # prompts per optimiser update
: "${PPO_MICRO_BATCH_SIZE_PER_GPU:=32}"
: "${LOG_PROB_MICRO_BATCH_SIZE_PER_GPU:=32}"
: "${USE_DYNAMIC_BSZ:=False}"
: "${PPO_MAX_TOKEN_LEN_PER_GPU:=16384}"  # only with USE_DYNAMIC_BSZ=True
: "${USE_KL_LOSS:=True}"
: "${KL_LOSS_COEF:=0.01}"
: "${KL_LOSS_TYPE:=low_var_kl}"
: "${ENTROPY_COEFF:=0}"
: "${LOSS_AGG_MODE:=token-mean}"
: "${CLIP_RATIO_LOW:=0.2}"
: "${CLIP_RATIO_HIGH:=0.2}"
: "${CLIP_RATIO_C:=3.0}"
: "${FILTER_GROUPS:=False}"         # DAPO dynamic sampling
: "${FILTER_GROUPS_METRIC:=score}"  # 'reward' or a reward_extra_info key of the speciarl manager
: "${FILTER_GROUPS_MAX_INFLIGHT:=3}"  # V1 bound on speculative generation, in train-batch units
: "${GEN_BATCH_SIZE:=}"             # data.gen_batch_size (empty = verl default)

# ---------------------------------------------------------------- rollout
: "${ROLLOUT_ENGINE:=vllm}"
: "${ROLLOUT_TP:=2}"
: "${ROLLOUT_GPU_MEMORY_UTILIZATION:=0.6}"
: "${ROLLOUT_TEMPERATURE:=1.0}"

# ---------------------------------------------------------------- reward (reward.speciarl.*)
: "${REWARD_RULE:=best_in_group}"   # best_in_group | binary | scala1 | scala2 | scala3
: "${LABEL_NOISE:=0.0}"
: "${REWARD_SEED:=0}"
: "${GROUP_TIMEOUT_S:=600}"
: "${REWARD_NUM_WORKERS:=8}"
: "${OVERLONG_BUFFER:=False}"       # DAPO overlong penalty
: "${OVERLONG_BUFFER_LEN:=512}"
: "${OVERLONG_PENALTY_FACTOR:=1.0}"

# ---------------------------------------------------------------- judge
: "${SPECIARL_JUDGE_URLS:=}"        # comma-separated base URLs (http://host:8000/v1); empty = start a local judge
: "${SPECIARL_JUDGE_MODEL:=Qwen/Qwen3-30B-A3B-Instruct-2507-FP8}"
: "${JUDGE_TP:=2}"                  # local judge: tensor parallel size (GPUs per replica)
: "${JUDGE_PORT:=8000}"             # local judge: first port
: "${JUDGE_READY_TIMEOUT_S:=1800}"  # local judge: wait this long for start-up (weights download + load)
: "${JUDGE_CHECK_TIMEOUT_S:=60}"    # remote judge: wait this long for it to answer
: "${JUDGE_ON_FAILURE:=fail}"       # fail | degrade
: "${JUDGE_CONSTRAINT:=}"           # choice | json_schema | text (empty = the client's default)
: "${JUDGE_CACHE_PATH:=}"           # sqlite cache (empty = <OUTPUT_DIR>/judge_cache.sqlite; 'none' = off)

# ---------------------------------------------------------------- trainer
: "${PROJECT_NAME:=speciarl}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_speciarl}"
: "${OUTPUT_DIR:=${PWD}/checkpoints/${PROJECT_NAME}/${EXPERIMENT_NAME}}"
: "${LOGGERS:=console,tensorboard}"
: "${TOTAL_EPOCHS:=15}"
: "${TOTAL_TRAINING_STEPS:=}"       # empty = epochs decide
: "${TEST_FREQ:=5}"
: "${SAVE_FREQ:=1000}"              # verl also saves the last step
: "${VAL_BEFORE_TRAIN:=True}"

# ---------------------------------------------------------------- cluster
: "${NNODES:=1}"                    # >1 or RAY_ADDRESS set: use an existing Ray cluster (docs/recipes.md)
: "${GPUS_PER_NODE:=}"              # training GPUs per node (empty on one node = auto split with the judge)
: "${TRAIN_GPUS:=}"                 # one node: force this many training GPUs
: "${RAY_ADDRESS:=}"
: "${FORWARD_ENV:=}"                # space-separated env var NAMES to pass to every Ray worker

OVERRIDES=()
JUDGE_PID=""
TRAIN_PID=""
TRAIN_NUM_GPUS=""
TRAIN_DEVICES=""
JUDGE_DEVICES=""
JUDGE_DP=0

speciarl_log() { printf '[speciarl] %s\n' "$*" >&2; }
speciarl_die() { printf '[speciarl] error: %s\n' "$*" >&2; exit 2; }

# Quote a value for Hydra's override grammar (single quotes; backslash and quote escaped).
hq() {
  local value="$1"
  value="${value//\\/\\\\}"
  value="${value//\'/\\\'}"
  printf "'%s'" "${value}"
}

# Comma-separated string -> Hydra list of quoted strings.
hydra_list() {
  local item out="" sep=""
  local -a items
  IFS=',' read -r -a items <<< "$1"
  for item in "${items[@]}"; do
    item="${item#"${item%%[![:space:]]*}"}"
    item="${item%"${item##*[![:space:]]}"}"
    [[ -z "${item}" ]] && continue
    out+="${sep}$(hq "${item}")"
    sep=","
  done
  printf '[%s]' "${out}"
}

is_true() { [[ "${1,,}" == "1" || "${1,,}" == "true" || "${1,,}" == "yes" ]]; }

uses_existing_cluster() { [[ -n "${RAY_ADDRESS}" || "${NNODES}" -gt 1 ]]; }

# ------------------------------------------------------------------ GPUs
speciarl_visible_gpus() {
  if [[ -n "${CUDA_VISIBLE_DEVICES+x}" ]]; then
    printf '%s' "${CUDA_VISIBLE_DEVICES}"
    return
  fi
  if ! command -v nvidia-smi > /dev/null 2>&1; then
    speciarl_die "no GPU found: nvidia-smi is not on PATH. Training needs NVIDIA GPUs (use DRY_RUN=1 to check a config without one)"
  fi
  local ids
  if ! ids="$(nvidia-smi --query-gpu=index --format=csv,noheader 2> /dev/null)"; then
    speciarl_die "no GPU found: nvidia-smi failed (driver not loaded?)"
  fi
  printf '%s' "$(printf '%s' "${ids}" | tr -d ' ' | paste -sd, -)"
}

speciarl_plan_gpus() {
  local visible plan local_judge_flag=()
  if uses_existing_cluster; then
    [[ -n "${SPECIARL_JUDGE_URLS}" ]] || speciarl_die "on an existing Ray cluster (NNODES=${NNODES}, RAY_ADDRESS=${RAY_ADDRESS:-unset}) the judge must run elsewhere: set SPECIARL_JUDGE_URLS"
    TRAIN_NUM_GPUS="${GPUS_PER_NODE:-8}"
    return
  fi
  if [[ -n "${GPUS_PER_NODE}" ]]; then
    TRAIN_NUM_GPUS="${GPUS_PER_NODE}"
    return
  fi
  if is_true "${DRY_RUN}"; then
    visible="$(seq -s, 0 $((DRY_RUN_GPUS - 1)))"
  else
    visible="$(speciarl_visible_gpus)"
  fi
  [[ -n "${visible}" ]] || speciarl_die "no GPU visible (CUDA_VISIBLE_DEVICES is empty); training needs GPUs"
  [[ -z "${SPECIARL_JUDGE_URLS}" ]] && local_judge_flag=(--local-judge)
  local train_flag=()
  [[ -n "${TRAIN_GPUS}" ]] && train_flag=(--train-gpus "${TRAIN_GPUS}")
  plan="$("${PYTHON}" -m verl_ext.recipes.gpu_plan --visible "${visible}" "${local_judge_flag[@]}" \
    --judge-tp "${JUDGE_TP}" --rollout-tp "${ROLLOUT_TP}" \
    --mini-batch-responses "$((PPO_MINI_BATCH_SIZE * ROLLOUT_N))" "${train_flag[@]}")" || exit 2
  read -r TRAIN_NUM_GPUS TRAIN_DEVICES JUDGE_DEVICES JUDGE_DP <<< "${plan}"
  speciarl_log "GPUs: training on ${TRAIN_DEVICES} (${TRAIN_NUM_GPUS}); judge on ${JUDGE_DEVICES} (${JUDGE_DP:-0} replica(s) x TP ${JUDGE_TP})"
}

# ------------------------------------------------------------------ data
speciarl_prepare_data() {
  local script="${DATA_SOURCE}.py" file
  [[ "${DATA_SOURCE}" == "cub200" ]] && script="cub.py"
  local -a download=(--no-download) files  # data_prep downloads by default; DATA_DOWNLOAD=0 must still refuse
  is_true "${DATA_DOWNLOAD}" && download=(--download)
  local default_train="${DATA_DIR}/${DATA_SOURCE}/train_sub${TRAIN_SUBSET}_seed${DATA_SEED}.parquet"
  local default_val="${DATA_DIR}/${DATA_SOURCE}/test_sub${VAL_SUBSET}_seed${DATA_SEED}.parquet"
  IFS=',' read -r -a files <<< "${TRAIN_FILES},${VAL_FILES}"
  for file in "${files[@]}"; do
    [[ -f "${file}" ]] && continue
    local -a split=()
    case "${file}" in
      "${default_train}") split=(--splits train --subset "${TRAIN_SUBSET}" --seed "${DATA_SEED}") ;;
      "${default_val}") split=(--splits test --subset "${VAL_SUBSET}" --seed "${DATA_SEED}") ;;
      *) speciarl_die "data file ${file} does not exist (only the default files are prepared automatically)" ;;
    esac
    speciarl_log "preparing ${file} with data_prep/${script}"
    "${PYTHON}" "${REPO_DIR}/data_prep/${script}" --root "${DATA_ROOT}" --out "${DATA_DIR}" "${download[@]}" "${split[@]}" \
      || speciarl_die "data preparation failed; see the message above (raw data expected under DATA_ROOT=${DATA_ROOT})"
    [[ -f "${file}" ]] || speciarl_die "data_prep finished but ${file} is still missing; check DATA_DIR, TRAIN_SUBSET, DATA_SEED"
  done
}

# ------------------------------------------------------------------ judge
speciarl_start_judge() {
  local log="${OUTPUT_DIR}/judge_server.log"
  mkdir -p "${OUTPUT_DIR}"
  speciarl_log "starting the local judge ${SPECIARL_JUDGE_MODEL} on GPUs ${JUDGE_DEVICES} (log: ${log})"
  CUDA_VISIBLE_DEVICES="${JUDGE_DEVICES}" JUDGE_MODEL="${SPECIARL_JUDGE_MODEL}" JUDGE_HOST=127.0.0.1 \
    JUDGE_PORT="${JUDGE_PORT}" JUDGE_TP="${JUDGE_TP}" JUDGE_DP="${JUDGE_DP}" JUDGE_WAIT_S=0 PYTHON="${PYTHON}" \
    bash "${RECIPES_DIR}/judge_server.sh" > "${log}" 2>&1 &
  JUDGE_PID=$!
  "${PYTHON}" -m verl_ext.recipes.preflight judge --url "http://127.0.0.1:${JUDGE_PORT}/v1" \
    --model "${SPECIARL_JUDGE_MODEL}" --wait "${JUDGE_READY_TIMEOUT_S}" --pid "${JUDGE_PID}" --log "${log}" \
    || speciarl_die "the local judge did not become ready; last lines of ${log}: $(tail -n 5 "${log}" 2> /dev/null | tr '\n' ' ')"
}

speciarl_check_remote_judge() {
  local url
  local -a urls args=()
  IFS=',' read -r -a urls <<< "${SPECIARL_JUDGE_URLS}"
  for url in "${urls[@]}"; do [[ -n "${url// /}" ]] && args+=(--url "${url// /}"); done
  "${PYTHON}" -m verl_ext.recipes.preflight judge "${args[@]}" --model "${SPECIARL_JUDGE_MODEL}" \
    --wait "${JUDGE_CHECK_TIMEOUT_S}" || speciarl_die "the judge at ${SPECIARL_JUDGE_URLS} is unreachable"
}

speciarl_stop() {
  local pid
  for pid in "${TRAIN_PID}" "${JUDGE_PID}"; do
    [[ -n "${pid}" ]] && kill -0 "${pid}" 2> /dev/null && kill -TERM "${pid}" 2> /dev/null
  done
  if [[ -n "${JUDGE_PID}" ]]; then
    speciarl_log "stopping the local judge (pid ${JUDGE_PID})"
    wait "${JUDGE_PID}" 2> /dev/null || true
    JUDGE_PID=""
  fi
}

# ------------------------------------------------------------------ overrides
speciarl_resolve_attention() {
  if [[ "${ATTN_IMPL}" == "auto" ]]; then
    if is_true "${DRY_RUN}" || "${PYTHON}" -c "import flash_attn" > /dev/null 2>&1; then
      ATTN_IMPL=flash_attention_2
    else
      speciarl_log "flash-attn is not importable: using attn_implementation=sdpa without remove-padding (slower, more memory)"
      ATTN_IMPL=sdpa
    fi
  fi
  if [[ "${USE_REMOVE_PADDING}" == "auto" ]]; then
    if [[ "${ATTN_IMPL}" == "flash_attention_2" ]]; then USE_REMOVE_PADDING=True; else USE_REMOVE_PADDING=False; fi
  fi
}

speciarl_build_overrides() {
  local judge_urls="${SPECIARL_JUDGE_URLS:-http://127.0.0.1:${JUDGE_PORT}/v1}"
  local cache_path="${JUDGE_CACHE_PATH:-${OUTPUT_DIR}/judge_cache.sqlite}"
  OVERRIDES=(
    # algorithm
    "algorithm.adv_estimator=${ADV_ESTIMATOR}"
    "algorithm.norm_adv_by_std_in_grpo=${NORM_ADV_BY_STD}"
    "algorithm.use_kl_in_reward=False"
    "algorithm.filter_groups.enable=${FILTER_GROUPS}"
    # data: our dataset class over data_prep's parquet files
    "data.train_files=$(hydra_list "${TRAIN_FILES}")"
    "data.val_files=$(hydra_list "${VAL_FILES}")"
    "data.image_key=images"
    "data.train_batch_size=${TRAIN_BATCH_SIZE}"
    "data.max_prompt_length=${MAX_PROMPT_LENGTH}"
    "data.max_response_length=${MAX_RESPONSE_LENGTH}"
    "data.filter_overlong_prompts=True"
    "data.truncation=error"
    "data.shuffle=True"
    "data.custom_cls.path=pkg://verl_ext.data.dataset"
    "data.custom_cls.name=FineGrainedImageDataset"
    "+data.speciarl.prompt_variant=$(hq "${PROMPT_VARIANT}")"
    "+data.speciarl.on_bad_image=${ON_BAD_IMAGE}"
    # model: LoRA on every linear layer of the language model; the vision tower stays frozen
    "actor_rollout_ref.model.path=$(hq "${MODEL_PATH}")"
    "actor_rollout_ref.model.use_remove_padding=${USE_REMOVE_PADDING}"
    "actor_rollout_ref.model.enable_gradient_checkpointing=${GRADIENT_CHECKPOINTING}"
    "actor_rollout_ref.model.lora_rank=${LORA_RANK}"
    "actor_rollout_ref.model.lora_alpha=${LORA_ALPHA}"
    "actor_rollout_ref.model.target_modules=$(hq "${LORA_TARGET_MODULES}")"
    "actor_rollout_ref.model.exclude_modules=$(hq "${LORA_EXCLUDE_MODULES}")"
    "+actor_rollout_ref.model.override_config.attn_implementation=${ATTN_IMPL}"
    # actor
    "actor_rollout_ref.actor.strategy=${ACTOR_STRATEGY}"
    "actor_rollout_ref.actor.optim.lr=${LR}"
    "actor_rollout_ref.actor.ppo_mini_batch_size=${PPO_MINI_BATCH_SIZE}"
    "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=${PPO_MICRO_BATCH_SIZE_PER_GPU}"
    "actor_rollout_ref.actor.use_dynamic_bsz=${USE_DYNAMIC_BSZ}"
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu=${PPO_MAX_TOKEN_LEN_PER_GPU}"
    "actor_rollout_ref.actor.use_kl_loss=${USE_KL_LOSS}"
    "actor_rollout_ref.actor.kl_loss_coef=${KL_LOSS_COEF}"
    "actor_rollout_ref.actor.kl_loss_type=${KL_LOSS_TYPE}"
    "actor_rollout_ref.actor.entropy_coeff=${ENTROPY_COEFF}"
    "actor_rollout_ref.actor.loss_agg_mode=${LOSS_AGG_MODE}"
    "actor_rollout_ref.actor.clip_ratio_low=${CLIP_RATIO_LOW}"
    "actor_rollout_ref.actor.clip_ratio_high=${CLIP_RATIO_HIGH}"
    "actor_rollout_ref.actor.clip_ratio_c=${CLIP_RATIO_C}"
    "actor_rollout_ref.actor.fsdp_config.param_offload=False"
    "actor_rollout_ref.actor.fsdp_config.optimizer_offload=False"
    "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=${LOG_PROB_MICRO_BATCH_SIZE_PER_GPU}"
    # rollout
    "actor_rollout_ref.rollout.name=${ROLLOUT_ENGINE}"
    "actor_rollout_ref.rollout.n=${ROLLOUT_N}"
    "actor_rollout_ref.rollout.tensor_model_parallel_size=${ROLLOUT_TP}"
    "actor_rollout_ref.rollout.gpu_memory_utilization=${ROLLOUT_GPU_MEMORY_UTILIZATION}"
    "actor_rollout_ref.rollout.temperature=${ROLLOUT_TEMPERATURE}"
    "actor_rollout_ref.rollout.top_p=1.0"
    "actor_rollout_ref.rollout.top_k=-1"
    "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=${LOG_PROB_MICRO_BATCH_SIZE_PER_GPU}"
    "actor_rollout_ref.rollout.val_kwargs.n=1"
    "actor_rollout_ref.rollout.val_kwargs.do_sample=False"
    "actor_rollout_ref.rollout.val_kwargs.temperature=0"
    # reward: the speciarl reward manager and its judge (reward.* only; old keys are ignored in 0.9),
    # found through the verl.plugins entry point as the README tells users to rely on
    "reward.reward_manager.name=speciarl"
    "reward.num_workers=${REWARD_NUM_WORKERS}"
    "+reward.speciarl.rule=${REWARD_RULE}"
    "+reward.speciarl.label_noise=${LABEL_NOISE}"
    "+reward.speciarl.seed=${REWARD_SEED}"
    "+reward.speciarl.group_timeout_s=${GROUP_TIMEOUT_S}"
    "+reward.speciarl.metrics_path=${OUTPUT_DIR}/speciarl_reward_metrics.jsonl"
    "+reward.speciarl.judge.urls=$(hydra_list "${judge_urls}")"
    "+reward.speciarl.judge.model=$(hq "${SPECIARL_JUDGE_MODEL}")"
    "+reward.speciarl.judge.on_failure=${JUDGE_ON_FAILURE}"
    # trainer
    "trainer.project_name=$(hq "${PROJECT_NAME}")"
    "trainer.experiment_name=$(hq "${EXPERIMENT_NAME}")"
    "trainer.default_local_dir=$(hq "${OUTPUT_DIR}")"
    "trainer.logger=$(hydra_list "${LOGGERS}")"
    "trainer.total_epochs=${TOTAL_EPOCHS}"
    "trainer.test_freq=${TEST_FREQ}"
    "trainer.save_freq=${SAVE_FREQ}"
    "trainer.val_before_train=${VAL_BEFORE_TRAIN}"
    "trainer.balance_batch=True"
    # verl's sync trainer plus: no update on a batch the judge could not grade, and every
    # step's reward figures in the tracker (verl_ext/trainer/speciarl.py)
    "trainer.v1.trainer_mode=speciarl"
    "trainer.nnodes=${NNODES}"
    "trainer.n_gpus_per_node=${TRAIN_NUM_GPUS}"
  )
  [[ "${cache_path}" != "none" ]] && OVERRIDES+=("+reward.speciarl.judge.cache_path=$(hq "${cache_path}")")
  [[ -n "${JUDGE_CONSTRAINT}" ]] && OVERRIDES+=("+reward.speciarl.judge.constraint=${JUDGE_CONSTRAINT}")
  [[ -n "${TOTAL_TRAINING_STEPS}" ]] && OVERRIDES+=("trainer.total_training_steps=${TOTAL_TRAINING_STEPS}")
  [[ -n "${GEN_BATCH_SIZE}" ]] && OVERRIDES+=("data.gen_batch_size=${GEN_BATCH_SIZE}")
  if is_true "${USE_DYNAMIC_BSZ}"; then
    OVERRIDES+=(
      "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=${PPO_MAX_TOKEN_LEN_PER_GPU}"
      "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu=${PPO_MAX_TOKEN_LEN_PER_GPU}"
    )
  fi
  if is_true "${FILTER_GROUPS}"; then
    OVERRIDES+=(
      "algorithm.filter_groups.metric=${FILTER_GROUPS_METRIC}"
      "algorithm.filter_groups.max_inflight_gen_batches=${FILTER_GROUPS_MAX_INFLIGHT}"
    )
  fi
  if is_true "${OVERLONG_BUFFER}"; then
    OVERRIDES+=(
      "+reward.speciarl.overlong_buffer.enable=True"
      "+reward.speciarl.overlong_buffer.len=${OVERLONG_BUFFER_LEN}"
      "+reward.speciarl.overlong_buffer.penalty_factor=${OVERLONG_PENALTY_FACTOR}"
    )
  fi
  local name
  local -a forward
  read -r -a forward <<< "${FORWARD_ENV}"
  for name in "${forward[@]}"; do
    [[ "${name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || speciarl_die "FORWARD_ENV: '${name}' is not an environment variable name"
    [[ -n "${!name+x}" ]] || speciarl_die "FORWARD_ENV names ${name}, which is not set"
    if [[ "${name^^}" =~ KEY|TOKEN|SECRET|PASSWORD ]]; then
      speciarl_log "warning: ${name} goes into the Ray runtime_env, which verl prints; prefer exporting it before 'ray start' on every node"
    fi
    OVERRIDES+=("+ray_kwargs.ray_init.runtime_env.env_vars.${name}=$(hq "${!name}")")
  done
}

# ------------------------------------------------------------------ main
speciarl_main() {
  set -euo pipefail
  if is_true "${DRY_RUN}"; then
    speciarl_plan_gpus
    speciarl_resolve_attention
    speciarl_build_overrides
    if [[ -n "${DRY_RUN_EMIT}" ]]; then
      printf '%s\0' "${OVERRIDES[@]}" "$@" > "${DRY_RUN_EMIT}"
      return 0
    fi
    DRY_RUN_CONFIG="${DRY_RUN_CONFIG}" exec "${PYTHON}" -m verl_ext.recipes.dry_run "${OVERRIDES[@]}" "$@"
  fi

  speciarl_plan_gpus
  trap speciarl_stop EXIT
  trap 'speciarl_stop; exit 130' INT
  trap 'speciarl_stop; exit 143' TERM
  speciarl_prepare_data
  "${PYTHON}" -m verl_ext.recipes.preflight model "${MODEL_PATH}" > /dev/null \
    || speciarl_die "model weights for MODEL_PATH=${MODEL_PATH} are missing (see above)"
  if [[ -z "${SPECIARL_JUDGE_URLS}" ]]; then
    speciarl_start_judge
  else
    speciarl_check_remote_judge
  fi
  speciarl_resolve_attention
  speciarl_build_overrides
  if ! uses_existing_cluster && [[ -z "${GPUS_PER_NODE}" ]]; then
    export CUDA_VISIBLE_DEVICES="${TRAIN_DEVICES}"
  fi
  mkdir -p "${OUTPUT_DIR}"
  export TENSORBOARD_DIR="${TENSORBOARD_DIR:-${OUTPUT_DIR}/tensorboard}"
  speciarl_log "training ${EXPERIMENT_NAME} on ${TRAIN_NUM_GPUS} GPU(s) x ${NNODES} node(s); checkpoints in ${OUTPUT_DIR}"
  "${PYTHON}" -m verl.trainer.main_ppo "${OVERRIDES[@]}" "$@" &
  TRAIN_PID=$!
  local status=0
  wait "${TRAIN_PID}" || status=$?
  TRAIN_PID=""
  return "${status}"
}

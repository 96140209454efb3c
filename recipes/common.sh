# shellcheck shell=bash
# Shared machinery of every SpeciaRL training recipe (sourced, never run directly).
#
# A recipe's settings are its Hydra config: verl_ext/recipes/config/speciarl.yaml (the paper's
# main run, over verl's ppo_trainer) and, for a variant, recipe/<RECIPE_VARIANT>.yaml. A recipe
# script names its variant, sets the shell settings that differ (with `: "${NAME:=value}"`, so
# the user's environment still wins), sources this file and calls `speciarl_main "$@"`; its
# arguments are Hydra overrides, applied last. This file keeps what must be shell: the GPU
# split, data preparation, the judge's lifecycle and the traps, set by the variables below.
# The older variables that name a Hydra key (ROLLOUT_N, LR, ...) still work: each becomes its
# key's override (verl_ext/recipes/environment.py; docs/recipes.md lists them).
#
# What speciarl_main does (see docs/recipes.md):
#   1. composes the config (python3 -m verl_ext.recipes.recipe_args) and reads back what the
#      shell needs: model, rollout sizes, data files, judge model, output folder;
#   2. finds the GPUs and splits them between training and a local judge;
#   3. prepares the parquet files with data_prep/ if they are missing;
#   4. checks the model weights, starts (or checks) the judge and waits until it answers;
#   5. runs `python3 -m verl.trainer.main_ppo` with the arguments; stops the judge on exit.
# DRY_RUN=1 skips 3-5 (no GPU, no judge, no data needed) and runs
# `python3 -m verl_ext.recipes.dry_run` instead, which composes and validates the full config.

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "${RECIPES_DIR}/.." && pwd)"

# ---------------------------------------------------------------- launch mode
: "${DRY_RUN:=0}"                   # 1: compose + validate the config only (no GPU needed)
: "${DRY_RUN_CONFIG:=}"             # with DRY_RUN=1: write the resolved config to this YAML file
: "${DRY_RUN_GPUS:=8}"              # with DRY_RUN=1: GPUs assumed on the node (no detection)
: "${DRY_RUN_EMIT:=}"               # testing hook: write the final argument list (NUL-separated) here and stop
: "${PYTHON:=python3}"              # interpreter with verl and verl_ext installed
: "${RECIPE_VARIANT:=}"             # set by the recipe script: recipe/<name>.yaml (empty: the main run)

# ---------------------------------------------------------------- data preparation (data.train_files, data.val_files)
: "${DATA_DIR:=${HOME}/data/speciarl}"          # parquet output root: <DATA_DIR>/<source>/<split>.parquet
: "${DATA_SOURCE:=cub200}"                       # training domain (data_prep script: cub200 -> cub.py)
: "${DATA_ROOT:=${DATA_DIR}/raw/${DATA_SOURCE}}" # official archives / extracted layout for data_prep
: "${DATA_DOWNLOAD:=1}"             # 1: let data_prep download missing archives
: "${DATA_SEED:=42}"
: "${TRAIN_SUBSET:=3000}"           # images in the training subset
: "${VAL_SUBSET:=500}"              # images in the held-out validation subset (from the test split)
: "${TRAIN_FILES:=${DATA_DIR}/${DATA_SOURCE}/train_sub${TRAIN_SUBSET}_seed${DATA_SEED}.parquet}"  # comma-separated
: "${VAL_FILES:=${DATA_DIR}/${DATA_SOURCE}/test_sub${VAL_SUBSET}_seed${DATA_SEED}.parquet}"

# ---------------------------------------------------------------- judge (reward.speciarl.judge.urls)
: "${SPECIARL_JUDGE_URLS:=}"        # comma-separated base URLs (http://host:8000/v1); empty = start a local judge
: "${SPECIARL_JUDGE_MODEL:=}"       # served model; empty: the config's reward.speciarl.judge.model
: "${JUDGE_TP:=2}"                  # local judge: tensor parallel size (GPUs per replica)
: "${JUDGE_PORT:=8000}"             # local judge: first port
: "${JUDGE_READY_TIMEOUT_S:=1800}"  # local judge: wait this long for start-up (weights download + load)
: "${JUDGE_CHECK_TIMEOUT_S:=60}"    # remote judge: wait this long for it to answer

# ---------------------------------------------------------------- cluster (trainer.nnodes, trainer.n_gpus_per_node)
: "${NNODES:=1}"                    # >1 or RAY_ADDRESS set: use an existing Ray cluster (docs/recipes.md)
: "${GPUS_PER_NODE:=}"              # training GPUs per node (empty on one node = auto split with the judge)
: "${TRAIN_GPUS:=}"                 # one node: force this many training GPUs
: "${RAY_ADDRESS:=}"
: "${FORWARD_ENV:=}"                # space-separated env var NAMES to pass to every Ray worker

# ---------------------------------------------------------------- read back from the composed config
# by speciarl_read_config, with TRAIN_FILES, VAL_FILES and SPECIARL_JUDGE_MODEL (set in the
# environment, each of these sets its Hydra key instead, as the older variables do)
: "${MODEL_PATH:=}"                 # actor_rollout_ref.model.path: the weights the preflight checks
: "${ROLLOUT_TP:=}"                 # actor_rollout_ref.rollout.tensor_model_parallel_size  } the GPU
: "${ROLLOUT_N:=}"                  # actor_rollout_ref.rollout.n                           } split
: "${PPO_MINI_BATCH_SIZE:=}"        # actor_rollout_ref.actor.ppo_mini_batch_size           }
: "${EXPERIMENT_NAME:=}"            # trainer.experiment_name
: "${OUTPUT_DIR:=}"                 # trainer.default_local_dir (absolute): checkpoints, logs, judge log

MAIN_PPO_ARGS=()                  # what speciarl_main hands to main_ppo (or the dry run)
JUDGE_PID=""
TRAIN_PID=""
TRAIN_NUM_GPUS=""
TRAIN_DEVICES=""
JUDGE_DEVICES=""
JUDGE_DP=0

speciarl_log() { printf '[speciarl] %s\n' "$*" >&2; }
speciarl_die() { printf '[speciarl] error: %s\n' "$*" >&2; exit 2; }

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

# Sets TRAIN_NUM_GPUS (and, on one node, TRAIN_DEVICES, JUDGE_DEVICES, JUDGE_DP).
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
  [[ -n "${ROLLOUT_TP}" && -n "${ROLLOUT_N}" && -n "${PPO_MINI_BATCH_SIZE}" ]] \
    || speciarl_die "the GPU split needs ROLLOUT_TP, ROLLOUT_N and PPO_MINI_BATCH_SIZE (speciarl_read_config reads them from the config)"
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

# ------------------------------------------------------------------ config
# Compose the recipe's config once (verl_ext/recipes/recipe_args.py) and read back what the
# shell needs (ROLLOUT_TP, TRAIN_FILES, OUTPUT_DIR, ...; its SHELL_VALUES). Fills MAIN_PPO_ARGS
# with the arguments for main_ppo up to, not including, the recipe's own ("$@").
speciarl_read_config() {
  local name record
  local -a names settings records
  # Python reads the settings from its environment: export those a script set without exporting.
  mapfile -t names < <("${PYTHON}" -m verl_ext.recipes.recipe_args names)
  wait "$!" || speciarl_die "cannot run ${PYTHON} -m verl_ext.recipes.recipe_args (is this package installed?)"
  for name in "${names[@]}"; do
    if [[ -n "${!name:-}" ]]; then export "${name?}"; fi
  done
  settings=(
    --list data.train_files "${TRAIN_FILES}" --list data.val_files "${VAL_FILES}"
    --list +reward.speciarl.judge.urls "${SPECIARL_JUDGE_URLS:-http://127.0.0.1:${JUDGE_PORT}/v1}"
    --value trainer.nnodes "${NNODES}"
  )
  [[ -n "${RECIPE_VARIANT}" ]] && settings+=(--variant "${RECIPE_VARIANT}")
  is_true "${DRY_RUN}" && settings+=(--dry-run)
  read -r -a names <<< "${FORWARD_ENV}"
  for name in "${names[@]}"; do
    [[ "${name}" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || speciarl_die "FORWARD_ENV: '${name}' is not an environment variable name"
    [[ -n "${!name+x}" ]] || speciarl_die "FORWARD_ENV names ${name}, which is not set"
    if [[ "${name^^}" =~ KEY|TOKEN|SECRET|PASSWORD ]]; then
      speciarl_log "warning: ${name} goes into the Ray runtime_env, which verl prints; prefer exporting it before 'ray start' on every node"
    fi
    settings+=(--string "+ray_kwargs.ray_init.runtime_env.env_vars.${name}" "${!name}")
  done
  mapfile -d '' -t records < <("${PYTHON}" -m verl_ext.recipes.recipe_args build "${settings[@]}" -- "$@")
  wait "$!" || exit 2
  MAIN_PPO_ARGS=()
  for record in "${records[@]}"; do
    name="${record%%=*}"
    if [[ "${name}" == ARG ]]; then
      MAIN_PPO_ARGS+=("${record#*=}")
    elif [[ "${name}" =~ ^[A-Z][A-Z0-9_]*$ ]]; then
      printf -v "${name}" '%s' "${record#*=}"
    fi
  done
}

# ------------------------------------------------------------------ main
speciarl_main() {
  set -euo pipefail
  speciarl_read_config "$@"
  speciarl_plan_gpus
  MAIN_PPO_ARGS+=("trainer.n_gpus_per_node=${TRAIN_NUM_GPUS}" "$@")
  if is_true "${DRY_RUN}"; then
    if [[ -n "${DRY_RUN_EMIT}" ]]; then
      printf '%s\0' "${MAIN_PPO_ARGS[@]}" > "${DRY_RUN_EMIT}"
      return 0
    fi
    DRY_RUN_CONFIG="${DRY_RUN_CONFIG}" exec "${PYTHON}" -m verl_ext.recipes.dry_run "${MAIN_PPO_ARGS[@]}"
  fi

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
  if ! uses_existing_cluster && [[ -z "${GPUS_PER_NODE}" ]]; then
    export CUDA_VISIBLE_DEVICES="${TRAIN_DEVICES}"
  fi
  mkdir -p "${OUTPUT_DIR}"
  export TENSORBOARD_DIR="${TENSORBOARD_DIR:-${OUTPUT_DIR}/tensorboard}"
  speciarl_log "training ${EXPERIMENT_NAME} on ${TRAIN_NUM_GPUS} GPU(s) x ${NNODES} node(s); checkpoints in ${OUTPUT_DIR}"
  "${PYTHON}" -m verl.trainer.main_ppo "${MAIN_PPO_ARGS[@]}" &
  TRAIN_PID=$!
  local status=0
  wait "${TRAIN_PID}" || status=$?
  TRAIN_PID=""
  return "${status}"
}

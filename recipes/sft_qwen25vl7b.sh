#!/usr/bin/env bash
# Baseline: supervised fine-tuning (SFT) of Qwen2.5-VL-7B-Instruct with LoRA as in the RL runs
# (rank 64, alpha 32, vision tower frozen), with verl 0.9's own SFT trainer, on the same 3,000
# CUB training images (train subset, seed 42) as the RL recipes.
#
#   bash recipes/sft_qwen25vl7b.sh                        # targets: the ground-truth label after a fixed reasoning line
#   SFT_TARGET=rejection bash recipes/sft_qwen25vl7b.sh   # targets: the base model's own answers the judge grades specific
#   DRY_RUN=1 bash recipes/sft_qwen25vl7b.sh              # check everything on any machine, no GPU
#   bash recipes/sft_qwen25vl7b.sh optim.lr=1e-5 trainer.total_epochs=5   # any verl SFT key, applied last
#
# Steps: data_prep/cub.py writes the RL parquet files if they are missing; with SFT_TARGET=rejection
# the evaluation harness samples the base model on the training images and the judge grades the
# answers (recipes/eval_be_specific_qwen25vl7b.sh with the training prompt, skipped when
# SFT_ROLLOUTS_DIR already holds a finished run); python -m verl_ext.data_prep.sft builds the SFT
# parquet; torchrun -m verl.trainer.sft_trainer trains with recipes/config/sft_qwen25vl7b.yaml,
# where every Hydra setting lives. Shell keeps only the data, the GPUs and the launch.
# See docs/recipes.md, "SFT baseline".
set -euo pipefail

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---------------------------------------------------------------- targets
: "${SFT_TARGET:=label}"                # label | rejection
: "${SFT_REASONING:=}"                  # label: the fixed reasoning line (empty: the built-in one)
: "${SFT_ROLLOUT_N:=10}"                # rejection: samples per image (the RL runs' rollouts per image)
: "${SFT_ROLLOUT_TEMPERATURE:=1.0}"     # rejection: the RL rollouts' temperature and top-p
: "${SFT_ROLLOUT_TOP_P:=1.0}"
: "${SFT_PER_IMAGE:=1}"                 # rejection: accepted answers kept per image (lowest sample index first)
: "${SFT_JUDGE_MODEL:=${SPECIARL_JUDGE_MODEL:-Qwen/Qwen3-30B-A3B-Instruct-2507-FP8}}"  # rejection: the RL reward's judge
: "${SFT_JUDGE_TP:=${JUDGE_TP:-2}}"     # rejection: GPUs of a local judge (SPECIARL_JUDGE_URLS: use yours)
: "${SFT_VAL:=1}"                       # 1: validation loss on the label targets of the held-out test subset

# ---------------------------------------------------------------- run
: "${MODEL_PATH:=Qwen/Qwen2.5-VL-7B-Instruct}"
: "${EXPERIMENT_NAME:=qwen25vl7b_cub_sft_${SFT_TARGET}}"
: "${OUTPUT_DIR:=${PWD}/checkpoints/speciarl/${EXPERIMENT_NAME}}"   # checkpoints, TensorBoard, the SFT parquet
: "${SFT_ROLLOUTS_DIR:=${OUTPUT_DIR}/rejection_rollouts}"          # rejection: the evaluation run's --out
: "${SFT_CONFIG:=${RECIPES_DIR}/config/sft_qwen25vl7b.yaml}"        # the Hydra config (extends verl's sft_trainer_engine)

# ---------------------------------------------------------------- launch (torchrun)
: "${GPUS_PER_NODE:=}"                  # empty: every GPU torch sees (DRY_RUN=1: DRY_RUN_GPUS)
: "${NNODES:=1}"
: "${TORCHRUN_ARGS:=--standalone --nnodes=1}"  # several nodes: --nnodes=N --node-rank=R --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT

# shellcheck source=SCRIPTDIR/common.sh
source "${RECIPES_DIR}/common.sh"

# A Hydra override value in single quotes (paths may hold spaces or commas).
sft_quote() {
  [[ "$1" != *[\'\\]* ]] || speciarl_die "'$1' contains a quote or a backslash, which this recipe cannot pass to Hydra"
  printf "'%s'" "$1"
}

sft_gpus() {
  if [[ -n "${GPUS_PER_NODE}" ]]; then
    printf '%s' "${GPUS_PER_NODE}"
  elif is_true "${DRY_RUN}"; then
    printf '%s' "${DRY_RUN_GPUS}"
  else
    "${PYTHON}" -m verl_ext.recipes.sft_config gpus || exit 2
  fi
}

# The base model's answers on the training images, graded by the judge: the evaluation harness,
# through the evaluation recipe (it starts and stops a local judge, or checks SPECIARL_JUDGE_URLS).
sft_rejection_rollouts() {
  if [[ -f "${SFT_ROLLOUTS_DIR}/samples.jsonl" ]]; then
    speciarl_log "rejection sampling: reusing the rollouts in ${SFT_ROLLOUTS_DIR}"
    return 0
  fi
  local source split data_dir
  source="$(basename "$(dirname "${RL_TRAIN}")")"
  split="$(basename "${RL_TRAIN}" .parquet)"
  data_dir="$(dirname "$(dirname "${RL_TRAIN}")")"
  speciarl_log "rejection sampling: ${SFT_ROLLOUT_N} answers per image of ${RL_TRAIN} at temperature ${SFT_ROLLOUT_TEMPERATURE}, graded by ${SFT_JUDGE_MODEL}"
  DATA_DIR="${data_dir}" EVAL_DATA_SOURCES="${source}" EVAL_SPLIT="${split}" EVAL_MODEL="${MODEL_PATH}" \
    EVAL_PROMPT_VARIANT=general EVAL_N="${SFT_ROLLOUT_N}" EVAL_TEMPERATURE="${SFT_ROLLOUT_TEMPERATURE}" \
    EVAL_OUT="${SFT_ROLLOUTS_DIR}" OUTPUT_DIR="${SFT_ROLLOUTS_DIR}" EXPERIMENT_NAME="${EXPERIMENT_NAME}_rollouts" \
    SPECIARL_JUDGE_MODEL="${SFT_JUDGE_MODEL}" JUDGE_TP="${SFT_JUDGE_TP}" DRY_RUN="${DRY_RUN}" DRY_RUN_EMIT="" DRY_RUN_CONFIG="" \
    bash "${RECIPES_DIR}/eval_be_specific_qwen25vl7b.sh" --top-p "${SFT_ROLLOUT_TOP_P}" \
    || speciarl_die "rejection sampling failed (see above); the SFT data cannot be built without it"
}

sft_build_data() {
  local -a train=(--from "${RL_TRAIN}" --out "${SFT_TRAIN_FILE}" --target "${SFT_TARGET}" --no-progress)
  if [[ "${SFT_TARGET}" == "rejection" ]]; then
    train+=(--rollouts "${SFT_ROLLOUTS_DIR}" --per-image "${SFT_PER_IMAGE}")
  elif [[ -n "${SFT_REASONING}" ]]; then
    train+=(--reasoning "${SFT_REASONING}")
  fi
  local -a val=(--from "${RL_VAL}" --out "${SFT_VAL_FILE}" --target label --no-progress)
  if is_true "${DRY_RUN}"; then
    speciarl_log "would build the SFT training data: ${PYTHON} -m verl_ext.data_prep.sft ${train[*]}"
    is_true "${SFT_VAL}" && speciarl_log "would build the SFT validation data: ${PYTHON} -m verl_ext.data_prep.sft ${val[*]}"
    return 0
  fi
  "${PYTHON}" -m verl_ext.data_prep.sft "${train[@]}" || speciarl_die "building the SFT training data failed (see above)"
  if is_true "${SFT_VAL}"; then
    "${PYTHON}" -m verl_ext.data_prep.sft "${val[@]}" || speciarl_die "building the SFT validation data failed (see above)"
  fi
}

sft_main() {
  local -a rl_train rl_val torchrun_args
  case "${SFT_TARGET}" in
    label | rejection) ;;
    *) speciarl_die "SFT_TARGET must be 'label' or 'rejection', got '${SFT_TARGET}'" ;;
  esac
  IFS=',' read -r -a rl_train <<< "${TRAIN_FILES}"
  IFS=',' read -r -a rl_val <<< "${VAL_FILES}"
  (( ${#rl_train[@]} == 1 )) || speciarl_die "the SFT data is built from one RL parquet file; TRAIN_FILES=${TRAIN_FILES}"
  RL_TRAIN="${rl_train[0]}"
  RL_VAL="${rl_val[0]:-}"
  [[ -n "${RL_VAL}" ]] || ! is_true "${SFT_VAL}" || speciarl_die "SFT_VAL=1 needs VAL_FILES (its label targets give the validation loss); or set SFT_VAL=0"
  SFT_TRAIN_FILE="${OUTPUT_DIR}/sft_data/train_${SFT_TARGET}.parquet"
  SFT_VAL_FILE="${OUTPUT_DIR}/sft_data/val_label.parquet"
  local gpus val_files=null
  gpus="$(sft_gpus)"
  is_true "${SFT_VAL}" && val_files="$(sft_quote "${SFT_VAL_FILE}")"
  local -a overrides=(
    "model.path=$(sft_quote "${MODEL_PATH}")"
    "data.train_files=$(sft_quote "${SFT_TRAIN_FILE}")"
    "data.val_files=${val_files}"
    "trainer.experiment_name=$(sft_quote "${EXPERIMENT_NAME}")"
    "trainer.default_local_dir=$(sft_quote "${OUTPUT_DIR}")"
    "trainer.n_gpus_per_node=${gpus}"
    "trainer.nnodes=${NNODES}"
  )
  local config_dir config_name
  config_dir="$(cd "$(dirname "${SFT_CONFIG}")" && pwd)"
  config_name="$(basename "${SFT_CONFIG}" .yaml)"

  if is_true "${DRY_RUN}"; then
    if [[ -n "${DRY_RUN_EMIT}" ]]; then
      printf '%s\0' "--config-path=${config_dir}" "--config-name=${config_name}" "${overrides[@]}" "$@" > "${DRY_RUN_EMIT}"
      return 0
    fi
    [[ "${SFT_TARGET}" == "rejection" ]] && sft_rejection_rollouts
    sft_build_data
    DRY_RUN_CONFIG="${DRY_RUN_CONFIG}" exec "${PYTHON}" -m verl_ext.recipes.sft_config dry-run \
      --config "${config_dir}/${config_name}.yaml" "${overrides[@]}" "$@"
  fi

  speciarl_prepare_data
  [[ "${SFT_TARGET}" == "rejection" ]] && sft_rejection_rollouts
  sft_build_data
  "${PYTHON}" -m verl_ext.recipes.preflight model "${MODEL_PATH}" > /dev/null \
    || speciarl_die "model weights for MODEL_PATH=${MODEL_PATH} are missing (see above)"
  "${PYTHON}" -m verl_ext.recipes.sft_config preflight --config "${config_dir}/${config_name}.yaml" "${overrides[@]}" "$@" \
    || speciarl_die "the SFT config is not valid (see above)"
  mkdir -p "${OUTPUT_DIR}"
  export TENSORBOARD_DIR="${TENSORBOARD_DIR:-${OUTPUT_DIR}/tensorboard}"
  read -r -a torchrun_args <<< "${TORCHRUN_ARGS}"
  speciarl_log "training ${EXPERIMENT_NAME} (SFT, ${SFT_TARGET} targets) on ${gpus} GPU(s) x ${NNODES} node(s); checkpoints in ${OUTPUT_DIR}"
  exec "${PYTHON}" -m torch.distributed.run "${torchrun_args[@]}" --nproc-per-node "${gpus}" \
    -m verl.trainer.sft_trainer "--config-path=${config_dir}" "--config-name=${config_name}" "${overrides[@]}" "$@"
}

sft_main "$@"

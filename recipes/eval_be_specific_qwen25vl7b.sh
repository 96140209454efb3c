#!/usr/bin/env bash
# Prompting baseline, evaluation only: the base Qwen2.5-VL-7B-Instruct asked to "be specific"
# (prompt variant `specific`), greedy, one answer per image, on CUB and the five out-of-domain
# test sets, judged like every evaluation (Llama-3-70B-Instruct in the paper).
#
#   SPECIARL_JUDGE_URLS=http://judge:8000/v1 bash recipes/eval_be_specific_qwen25vl7b.sh
#   bash recipes/eval_be_specific_qwen25vl7b.sh      # starts a local judge on the last JUDGE_TP GPUs
#   DRY_RUN=1 bash recipes/eval_be_specific_qwen25vl7b.sh
# Extra arguments go to `python -m verl_ext.eval` (docs/evaluation.md).
set -euo pipefail
: "${EVAL_MODEL:=Qwen/Qwen2.5-VL-7B-Instruct}"
: "${EVAL_PROMPT_VARIANT:=specific}"
: "${EVAL_DATA_SOURCES:=cub200,flowers102,oxford_pets,food101,fgvc_aircraft,stanford_cars}"
: "${EVAL_SPLIT:=test}"                  # <DATA_DIR>/<source>/<EVAL_SPLIT>.parquet (see docs/data.md for CoOp splits)
: "${EVAL_TP:=1}"                        # GPUs for the policy's vLLM engine
: "${EVAL_N:=1}"
: "${EVAL_TEMPERATURE:=0}"
: "${EVAL_MAX_NEW_TOKENS:=2048}"
: "${SPECIARL_JUDGE_MODEL:=meta-llama/Meta-Llama-3-70B-Instruct}"  # the paper's evaluation judge
: "${JUDGE_TP:=4}"
: "${EXPERIMENT_NAME:=eval_qwen25vl7b_be_specific}"
: "${EVAL_OUT:=${PWD}/eval/${EXPERIMENT_NAME}}"
: "${OUTPUT_DIR:=${EVAL_OUT}}"
# shellcheck source=SCRIPTDIR/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

eval_arguments() {
  local source
  local -a sources judge_urls
  EVAL_ARGS=(--model "${EVAL_MODEL}" --data)
  IFS=',' read -r -a sources <<< "${EVAL_DATA_SOURCES}"
  for source in "${sources[@]}"; do EVAL_ARGS+=("${DATA_DIR}/${source}/${EVAL_SPLIT}.parquet"); done
  IFS=',' read -r -a judge_urls <<< "${SPECIARL_JUDGE_URLS:-http://127.0.0.1:${JUDGE_PORT}/v1}"
  EVAL_ARGS+=(--judge-url "${judge_urls[@]}" --judge-model "${SPECIARL_JUDGE_MODEL}")
  EVAL_ARGS+=(--out "${EVAL_OUT}" --backend vllm --tensor-parallel-size "${EVAL_TP}")
  EVAL_ARGS+=(--n "${EVAL_N}" --temperature "${EVAL_TEMPERATURE}" --max-new-tokens "${EVAL_MAX_NEW_TOKENS}")
  EVAL_ARGS+=(--prompt-variant "${EVAL_PROMPT_VARIANT}" --method "${EXPERIMENT_NAME}")
}

eval_main() {
  eval_arguments
  if is_true "${DRY_RUN}"; then
    if [[ -n "${DRY_RUN_EMIT}" ]]; then
      printf '%s\0' "${EVAL_ARGS[@]}" "$@" > "${DRY_RUN_EMIT}"
      return 0
    fi
    DRY_RUN_CONFIG="${DRY_RUN_CONFIG}" exec "${PYTHON}" -m verl_ext.recipes.eval_dry_run -- "${EVAL_ARGS[@]}" "$@"
  fi
  local file
  for file in "${EVAL_ARGS[@]}"; do
    if [[ "${file}" == *.parquet && ! -f "${file}" ]]; then
      speciarl_die "evaluation file ${file} is missing; prepare it with data_prep/<dataset>.py --splits ${EVAL_SPLIT} (docs/data.md)"
    fi
  done
  trap speciarl_stop EXIT
  trap 'speciarl_stop; exit 130' INT
  trap 'speciarl_stop; exit 143' TERM
  # The harness loads a local folder only: a hub id becomes its snapshot in the HF cache (downloaded once).
  local model_dir
  model_dir="$("${PYTHON}" -m verl_ext.recipes.preflight model "${EVAL_MODEL}")" \
    || speciarl_die "model weights for EVAL_MODEL=${EVAL_MODEL} are missing (see above)"
  EVAL_MODEL="${model_dir}"
  eval_arguments
  local visible
  local -a gpus
  visible="$(speciarl_visible_gpus)"
  IFS=',' read -r -a gpus <<< "${visible}"
  if [[ -z "${SPECIARL_JUDGE_URLS}" ]]; then
    (( ${#gpus[@]} >= EVAL_TP + JUDGE_TP )) \
      || speciarl_die "too few GPUs: ${#gpus[@]} visible, ${EVAL_TP} for the policy + ${JUDGE_TP} for the local judge needed (or set SPECIARL_JUDGE_URLS)"
    JUDGE_DEVICES="$(IFS=','; echo "${gpus[*]: -${JUDGE_TP}}")"
    JUDGE_DP=1
    speciarl_start_judge
  else
    (( ${#gpus[@]} >= EVAL_TP )) || speciarl_die "too few GPUs: ${#gpus[@]} visible, EVAL_TP=${EVAL_TP} needed"
    speciarl_check_remote_judge
  fi
  CUDA_VISIBLE_DEVICES="$(IFS=','; echo "${gpus[*]:0:${EVAL_TP}}")"
  export CUDA_VISIBLE_DEVICES
  speciarl_log "evaluating ${EVAL_MODEL} with prompt variant '${EVAL_PROMPT_VARIANT}' -> ${EVAL_OUT}"
  "${PYTHON}" -m verl_ext.eval "${EVAL_ARGS[@]}" "$@" &
  TRAIN_PID=$!
  local status=0
  wait "${TRAIN_PID}" || status=$?
  TRAIN_PID=""
  return "${status}"
}

eval_main "$@"

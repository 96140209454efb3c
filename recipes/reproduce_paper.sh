#!/usr/bin/env bash
# The paper's whole comparison in one command: data for the six datasets, the five methods
# (base model, "be specific" prompt, SFT, RFT, SpeciaRL) plus Best-of-64 as an upper bound, the
# evaluation of each with both protocols, and the comparison table and Figure 1.
#
#   bash recipes/reproduce_paper.sh                    # everything, on one 8-GPU node (days of GPU time)
#   DRY_RUN=1 bash recipes/reproduce_paper.sh          # walk every step on any machine: configs checked, nothing run
#   SFT_MODEL=/ckpt/sft RFT_MODEL=/ckpt/rft SPECIARL_MODEL=/ckpt/speciarl bash recipes/reproduce_paper.sh
#                                                      # given models are evaluated, not trained
#   STEPS=eval,compare EVAL_JUDGE_URLS=http://judge:8000/v1 bash recipes/reproduce_paper.sh
#
# Steps (STEPS, comma-separated; each step skips work whose outputs exist, so a rerun resumes):
#   data     python data_prep/<dataset>.py for CUB (training subset, validation subset, test) and the five others
#   train    bash recipes/sft_qwen25vl7b.sh, rft_binary_qwen25vl7b.sh, speciarl_qwen25vl7b.sh (each with its own
#            training judge), then python -m verl_ext.recipes.checkpoints merge (verl's model merger)
#   eval     python -m verl_ext.eval --metrics judge,owc through recipes/eval_be_specific_qwen25vl7b.sh, once per
#            method, against one evaluation judge and one LI judge (started here unless their URLs are given)
#   compare  python -m verl_ext.eval.compare on the six runs: comparison.md and figure1.png
# See docs/recipes.md, "Reproducing the paper".
set -euo pipefail

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---------------------------------------------------------------- what to run
: "${STEPS:=data,train,eval,compare}"
: "${REPRO_DIR:=${PWD}/reproduce}"          # checkpoints/, models/, eval/, compare/ go here
: "${MODEL_PATH:=Qwen/Qwen2.5-VL-7B-Instruct}"   # the base model (hub id or local folder)
: "${SFT_TARGET:=label}"                    # label | rejection (the paper does not say; docs/recipes.md)

# ---------------------------------------------------------------- given models (skip training that method)
: "${SFT_MODEL:=}"                          # anything python -m verl_ext.eval --model loads
: "${RFT_MODEL:=}"
: "${SPECIARL_MODEL:=}"

# ---------------------------------------------------------------- evaluation
: "${EVAL_JUDGE_URLS:=}"                    # empty: serve EVAL_JUDGE_MODEL here, on EVAL_JUDGE_GPUS
: "${EVAL_JUDGE_MODEL:=meta-llama/Meta-Llama-3-70B-Instruct}"   # the paper's evaluation judge
: "${EVAL_JUDGE_GPUS:=4,5,6,7}"             # its tensor-parallel GPUs
: "${EVAL_JUDGE_PORT:=8100}"
: "${LI_JUDGE_URLS:=}"                      # empty: serve LI_JUDGE_MODEL here, on LI_JUDGE_GPUS
: "${LI_JUDGE_MODEL:=meta-llama/Llama-3.2-3B-Instruct}"         # protocol 2's LLM-inclusion judge
: "${LI_JUDGE_GPUS:=3}"
: "${LI_JUDGE_PORT:=8101}"
: "${EVAL_POLICY_GPUS:=0}"                  # the evaluated model's vLLM engine (tensor parallel over these)
: "${JUDGE_READY_TIMEOUT_S:=3600}"          # first start downloads the judges' weights
: "${BON_N:=64}"                            # Best-of-N of the base model: the paper's sampling
: "${BON_TEMPERATURE:=0.6}"
: "${BON_TOP_P:=0.95}"

# shellcheck source=SCRIPTDIR/common.sh
source "${RECIPES_DIR}/common.sh"

BASE_NAME="Qwen2.5-VL-7B"
#: method key | name in the tables | how its model is made
METHODS=(base be_specific sft rft speciarl bon)
declare -A METHOD_NAME=(
  [base]="${BASE_NAME}" [be_specific]="+ be specific" [sft]="+ SFT" [rft]="+ RFT (binary)"
  [speciarl]="SpeciaRL" [bon]="${BASE_NAME} (T=${BON_TEMPERATURE})"
)
declare -A TRAIN_RECIPE=([sft]=sft_qwen25vl7b.sh [rft]=rft_binary_qwen25vl7b.sh [speciarl]=speciarl_qwen25vl7b.sh)
declare -A GIVEN_MODEL=([sft]="${SFT_MODEL}" [rft]="${RFT_MODEL}" [speciarl]="${SPECIARL_MODEL}")
JUDGE_PIDS=()
JUDGE_URL=""

has_step() { [[ ",${STEPS}," == *",$1,"* ]]; }

repro_run() {  # print a step's command under DRY_RUN, run it otherwise
  if is_true "${DRY_RUN}"; then
    speciarl_log "would run: $*"
  else
    "$@"
  fi
}

# ------------------------------------------------------------------ data
repro_data() {
  local -a download=()
  is_true "${DATA_DOWNLOAD}" || download=(--no-download)
  local script out args
  # script | a file it writes (skip when present) | arguments
  while IFS='|' read -r script out args; do
    if [[ -f "${DATA_DIR}/${out}" ]]; then
      speciarl_log "data: ${DATA_DIR}/${out} exists"
      continue
    fi
    local -a extra=()
    read -r -a extra <<< "${args}"
    repro_run "${PYTHON}" "${REPO_DIR}/data_prep/${script}" --out "${DATA_DIR}" "${download[@]}" "${extra[@]}" \
      || speciarl_die "data preparation with data_prep/${script} failed (see above)"
  done <<'EOF'
cub.py|cub200/train_sub3000_seed42.parquet|
cub.py|cub200/test.parquet|--splits test
flowers102.py|flowers102/test.parquet|
food101.py|food101/test.parquet|
oxford_pets.py|oxford_pets/test.parquet|
fgvc_aircraft.py|fgvc_aircraft/test.parquet|
stanford_cars.py|stanford_cars/test.parquet|
EOF
}

# ------------------------------------------------------------------ training
model_of() {  # the folder the evaluation loads for a method
  case "$1" in
    base | be_specific | bon) printf '%s' "${MODEL_PATH}" ;;
    *) printf '%s' "${GIVEN_MODEL[$1]:-${REPRO_DIR}/models/$1}" ;;
  esac
}

repro_train() {
  local key
  for key in sft rft speciarl; do
    if [[ -n "${GIVEN_MODEL[${key}]}" ]]; then
      speciarl_log "train: ${METHOD_NAME[${key}]} given as ${GIVEN_MODEL[${key}]}; not training it"
      continue
    fi
    local run="${REPRO_DIR}/checkpoints/${key}"
    if [[ -f "${REPRO_DIR}/models/${key}/.merged_from" ]]; then
      speciarl_log "train: ${METHOD_NAME[${key}]} already trained and merged in ${REPRO_DIR}/models/${key}"
      continue
    fi
    speciarl_log "train: ${METHOD_NAME[${key}]} with recipes/${TRAIN_RECIPE[${key}]} -> ${run}"
    DRY_RUN="${DRY_RUN}" OUTPUT_DIR="${run}" MODEL_PATH="${MODEL_PATH}" DATA_DIR="${DATA_DIR}" SFT_TARGET="${SFT_TARGET}" \
      DRY_RUN_EMIT="" DRY_RUN_CONFIG="" bash "${RECIPES_DIR}/${TRAIN_RECIPE[${key}]}" \
      || speciarl_die "training ${METHOD_NAME[${key}]} failed (see above); fix it and rerun: finished steps are skipped"
    local -a dry=()
    is_true "${DRY_RUN}" && dry=(--dry-run)
    "${PYTHON}" -m verl_ext.recipes.checkpoints merge "${run}" --out "${REPRO_DIR}/models/${key}" "${dry[@]}" \
      || speciarl_die "merging the checkpoint of ${METHOD_NAME[${key}]} failed (see above)"
  done
}

# ------------------------------------------------------------------ evaluation judges
repro_stop_judges() {
  local pid
  for pid in "${JUDGE_PIDS[@]}"; do
    kill -0 "${pid}" 2> /dev/null && kill -TERM "${pid}" 2> /dev/null
    wait "${pid}" 2> /dev/null || true
  done
  JUDGE_PIDS=()
}

# Sets JUDGE_URL: the given URLs, or a judge served here (stopped on exit). Not run in $(...): the
# server must stay a child of this shell so that the traps can stop it.
repro_judge() {
  local given="$1" model="$2" gpus="$3" port="$4" what="$5"
  JUDGE_URL="${given}"
  [[ -n "${given}" ]] && return 0
  JUDGE_URL="http://127.0.0.1:${port}/v1"
  local log="${REPRO_DIR}/eval/${what}_judge.log"
  if is_true "${DRY_RUN}"; then
    speciarl_log "would serve the ${what} judge ${model} on GPUs ${gpus} at ${JUDGE_URL} (recipes/judge_server.sh)"
    return 0
  fi
  local -a devices
  IFS=',' read -r -a devices <<< "${gpus}"
  mkdir -p "${REPRO_DIR}/eval"
  speciarl_log "serving the ${what} judge ${model} on GPUs ${gpus} at ${JUDGE_URL} (log: ${log})"
  CUDA_VISIBLE_DEVICES="${gpus}" JUDGE_MODEL="${model}" JUDGE_TP="${#devices[@]}" JUDGE_DP=1 JUDGE_PORT="${port}" \
    JUDGE_HOST=127.0.0.1 JUDGE_WAIT_S=0 PYTHON="${PYTHON}" bash "${RECIPES_DIR}/judge_server.sh" > "${log}" 2>&1 &
  JUDGE_PIDS+=("$!")
  "${PYTHON}" -m verl_ext.recipes.preflight judge --url "${JUDGE_URL}" --model "${model}" --wait "${JUDGE_READY_TIMEOUT_S}" \
    --pid "$!" --log "${log}" > /dev/null || speciarl_die "the ${what} judge did not become ready; see ${log}"
}

# ------------------------------------------------------------------ evaluation
repro_complete() {  # an evaluation whose every sample has its verdicts (metrics.json "complete")
  [[ -f "$1/metrics.json" ]] && "${PYTHON}" -c 'import json, sys; sys.exit(not json.load(open(sys.argv[1]))["complete"])' "$1/metrics.json"
}

repro_eval() {
  local judge li key
  local -a policy_gpus
  IFS=',' read -r -a policy_gpus <<< "${EVAL_POLICY_GPUS}"
  repro_judge "${EVAL_JUDGE_URLS}" "${EVAL_JUDGE_MODEL}" "${EVAL_JUDGE_GPUS}" "${EVAL_JUDGE_PORT}" evaluation
  judge="${JUDGE_URL}"
  repro_judge "${LI_JUDGE_URLS}" "${LI_JUDGE_MODEL}" "${LI_JUDGE_GPUS}" "${LI_JUDGE_PORT}" li
  li="${JUDGE_URL}"
  for key in "${METHODS[@]}"; do
    local out="${REPRO_DIR}/eval/${key}" variant=general n=1 temperature=0 top_p=1.0
    [[ "${key}" == "be_specific" ]] && variant=specific
    [[ "${key}" == "bon" ]] && { n="${BON_N}"; temperature="${BON_TEMPERATURE}"; top_p="${BON_TOP_P}"; }
    if repro_complete "${out}"; then
      speciarl_log "eval: ${METHOD_NAME[${key}]} is complete in ${out}"
      continue
    fi
    speciarl_log "eval: ${METHOD_NAME[${key}]} ($(model_of "${key}"), prompt ${variant}, n=${n}) -> ${out}"
    CUDA_VISIBLE_DEVICES="${EVAL_POLICY_GPUS}" DRY_RUN="${DRY_RUN}" DRY_RUN_EMIT="" DRY_RUN_CONFIG="" DATA_DIR="${DATA_DIR}" \
      EVAL_MODEL="$(model_of "${key}")" EVAL_PROMPT_VARIANT="${variant}" EVAL_N="${n}" EVAL_TEMPERATURE="${temperature}" \
      EVAL_TP="${#policy_gpus[@]}" EVAL_OUT="${out}" OUTPUT_DIR="${out}" EXPERIMENT_NAME="${METHOD_NAME[${key}]}" \
      SPECIARL_JUDGE_URLS="${judge}" SPECIARL_JUDGE_MODEL="${EVAL_JUDGE_MODEL}" \
      bash "${RECIPES_DIR}/eval_be_specific_qwen25vl7b.sh" --top-p "${top_p}" --metrics judge,owc \
      --li-judge-url "${li}" --li-judge-model "${LI_JUDGE_MODEL}" --no-progress \
      || speciarl_die "evaluating ${METHOD_NAME[${key}]} failed or is incomplete (see above); rerun to resume it"
  done
  repro_stop_judges
}

repro_compare() {
  local key
  local -a runs=()
  for key in "${METHODS[@]}"; do runs+=("${REPRO_DIR}/eval/${key}"); done
  repro_run "${PYTHON}" -m verl_ext.eval.compare "${runs[@]}" --out "${REPRO_DIR}/compare" --base "${BASE_NAME}" \
    || speciarl_die "the comparison failed (see above)"
  is_true "${DRY_RUN}" || speciarl_log "the paper's tables: ${REPRO_DIR}/compare/comparison.md; Figure 1: ${REPRO_DIR}/compare/figure1.png"
}

repro_main() {
  local step
  for step in ${STEPS//,/ }; do
    case "${step}" in
      data | train | eval | compare) ;;
      *) speciarl_die "STEPS: unknown step '${step}'; choose from data,train,eval,compare" ;;
    esac
  done
  (( $# == 0 )) || speciarl_die "reproduce_paper.sh takes no arguments ($*); its settings are environment variables, and each recipe's own Hydra keys go to that recipe (docs/recipes.md)"
  trap repro_stop_judges EXIT
  trap 'repro_stop_judges; exit 130' INT
  trap 'repro_stop_judges; exit 143' TERM
  has_step data && repro_data
  has_step train && repro_train
  has_step eval && repro_eval
  has_step compare && repro_compare
  speciarl_log "done: ${STEPS}"
}

repro_main "$@"

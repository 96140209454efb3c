#!/usr/bin/env bash
# Check an install on any machine, in about a minute, before paying for GPUs: the whole
# training recipe through verl's real main_ppo, on CPU, with the same recipes/common.sh path
# as every GPU recipe (data_prep, judge check, dataset class, speciarl reward and trainer
# mode, LoRA, GRPO, validation, checkpoints, TensorBoard).
#
#   bash recipes/smoke_cpu.sh                         # outputs in ./smoke_cpu
#   SMOKE_DIR=/tmp/smoke SMOKE_GPUS=2 bash recipes/smoke_cpu.sh
#   SPECIARL_JUDGE_URLS=http://judge:8000/v1 bash recipes/smoke_cpu.sh   # your own judge
#
# What is real and what is not (docs/testing.md): the model is the offline kit's tiny
# random-weight Qwen2.5-VL, served by verl_ext's CPU test backend (transformers generate, FSDP2
# over gloo); its answers are scripted labels so that rewards vary; the default judge grades by
# a rule table. A CPU run proves that the parts work together, not speed or GPU memory.
set -euo pipefail

RECIPES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# ---------------------------------------------------------------- smoke settings
: "${SMOKE_DIR:=${PWD}/smoke_cpu}"  # everything the run builds and writes goes here
: "${SMOKE_GPUS:=1}"                # simulated GPU ranks (FSDP2 world size over gloo)
: "${SMOKE_STEPS:=2}"               # training steps (validation before the first and after the last)
: "${SMOKE_CHECK:=1}"               # 1: check the run's outputs at the end (verl_ext.testing.smoke check)
: "${PYTHON:=python3}"

# The run is offline and must not write into the home folder (Ray's token) or call wandb.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled RAY_AUTH_MODE=disabled
export TOKENIZERS_PARALLELISM=false

mkdir -p "${SMOKE_DIR}"
SMOKE_DIR="$(cd "${SMOKE_DIR}" && pwd)"
declare -A PREPARED
while IFS='=' read -r name value; do
  PREPARED["${name}"]="${value}"
done < <("${PYTHON}" -m verl_ext.testing.smoke prepare "${SMOKE_DIR}")

# ---------------------------------------------------------------- judge: the scripted one unless given
SMOKE_JUDGE_PID=""
stop_judge() {
  if [[ -n "${SMOKE_JUDGE_PID}" ]] && kill -0 "${SMOKE_JUDGE_PID}" 2> /dev/null; then
    kill -TERM "${SMOKE_JUDGE_PID}" 2> /dev/null || true
    wait "${SMOKE_JUDGE_PID}" 2> /dev/null || true
  fi
}
trap stop_judge EXIT
if [[ -z "${SPECIARL_JUDGE_URLS:-}" ]]; then
  ready="${SMOKE_DIR}/judge.url"
  rm -f "${ready}"
  "${PYTHON}" -m verl_ext.testing.judge_server_cli --rules "${PREPARED[RULES]}" --ready-file "${ready}" \
    --stats-file "${SMOKE_DIR}/judge_stats.json" > "${SMOKE_DIR}/judge.log" 2>&1 &
  SMOKE_JUDGE_PID=$!
  for _ in $(seq 100); do [[ -s "${ready}" ]] && break; sleep 0.1; done
  [[ -s "${ready}" ]] || { echo "[smoke] the scripted judge did not start; see ${SMOKE_DIR}/judge.log" >&2; exit 2; }
  SPECIARL_JUDGE_URLS="$(cat "${ready}")"
  : "${SPECIARL_JUDGE_MODEL:=scripted-judge}"
fi
export SPECIARL_JUDGE_URLS
export SPECIARL_JUDGE_MODEL="${SPECIARL_JUDGE_MODEL:-}"

# ---------------------------------------------------------------- the recipe's settings, CPU-sized
# The Hydra config verl_ext/recipes/config/recipe/smoke_cpu.yaml sizes the run for the kit's
# model; the node's settings (data, output folder, simulated GPUs, judge) are set here.
RECIPE_VARIANT=smoke_cpu
OUTPUT_DIR="${SMOKE_DIR}/run"
rm -rf "${OUTPUT_DIR}"
export OUTPUT_DIR MODEL_PATH="${PREPARED[KIT]}" ATTN_IMPL=sdpa
export DATA_DIR="${SMOKE_DIR}/data" DATA_ROOT="${PREPARED[DATA_ROOT]}" DATA_DOWNLOAD=0 TRAIN_SUBSET=16 VAL_SUBSET=8
export GPUS_PER_NODE="${SMOKE_GPUS}" JUDGE_CHECK_TIMEOUT_S=30

# The CPU backend in every verl process (verl_ext/testing/cpu_backend), and its overrides.
mapfile -t CPU_OVERRIDES < <("${PYTHON}" -m verl_ext.testing.cpu_backend overrides --gpus "${SMOKE_GPUS}" \
  --answers-file "${PREPARED[ANSWERS]}" --log-dir "${OUTPUT_DIR}/cpu_backend")
while IFS='=' read -r name value; do
  export "${name}=${value}"
done < <("${PYTHON}" -m verl_ext.testing.cpu_backend env)

# shellcheck source=SCRIPTDIR/common.sh
source "${RECIPES_DIR}/common.sh"
set +e
# verl's replay buffer looks for finished groups every 2 s; CPU steps take about that long.
( speciarl_main "${CPU_OVERRIDES[@]}" "+trainer.v1.speciarl.poll_interval_s=0.1" \
    "trainer.total_training_steps=${SMOKE_STEPS}" "trainer.test_freq=${SMOKE_STEPS}" \
    "trainer.rollout_data_dir=${OUTPUT_DIR}/rollouts" "trainer.validation_data_dir=${OUTPUT_DIR}/validation" "$@" )
status=$?
set -e
is_true "${DRY_RUN}" && exit "${status}"
if [[ "${status}" -ne 0 ]]; then
  echo "[smoke] training failed (exit ${status}); the log is above" >&2
  exit "${status}"
fi
if is_true "${SMOKE_CHECK}"; then
  "${PYTHON}" -m verl_ext.testing.smoke check "${OUTPUT_DIR}" --rules "${PREPARED[RULES]}" --steps "${SMOKE_STEPS}"
fi
cat <<EOF
[smoke] outputs in ${SMOKE_DIR}:
  checkpoints     ${OUTPUT_DIR}/global_step_*/actor
  TensorBoard     ${OUTPUT_DIR}/tensorboard
  reward figures  ${OUTPUT_DIR}/speciarl_reward_metrics.jsonl
  rollouts        ${OUTPUT_DIR}/rollouts  (validation: ${OUTPUT_DIR}/validation)
  CPU rollout log ${OUTPUT_DIR}/cpu_backend
  judge           ${SMOKE_DIR}/judge.log
EOF

#!/usr/bin/env bash
# Serve the SpeciaRL training judge with vLLM's OpenAI-compatible server, and wait until it answers.
#
# Standalone (e.g. on a separate judge node; the training node then sets
# SPECIARL_JUDGE_URLS=http://<this-host>:8000/v1):
#   JUDGE_HOST=0.0.0.0 bash recipes/judge_server.sh
# The training recipes start it themselves when SPECIARL_JUDGE_URLS is empty.
#
# Ctrl-C / SIGTERM stop the server and all its workers. Extra arguments go to `vllm serve`.
set -euo pipefail

# ---------------------------------------------------------------- model
: "${JUDGE_MODEL:=${SPECIARL_JUDGE_MODEL:-Qwen/Qwen3-30B-A3B-Instruct-2507-FP8}}"  # hub id or folder
: "${JUDGE_SERVED_NAME:=${JUDGE_MODEL}}"   # the name clients send as "model" (SPECIARL_JUDGE_MODEL)
: "${JUDGE_MAX_MODEL_LEN:=4096}"           # rubric + one pair + a label fit easily

# ---------------------------------------------------------------- parallelism (GPUs = TP x DP)
: "${JUDGE_TP:=2}"                         # tensor parallel size per replica
: "${JUDGE_DP:=1}"                         # data-parallel replicas behind one port
: "${JUDGE_GPU_MEMORY_UTILIZATION:=0.90}"  # the judge GPUs are dedicated

# ---------------------------------------------------------------- throughput
# One training step sends up to 2,560 short requests (256 images x 10 rollouts) that share the
# rubric prefix and produce a handful of tokens. Prefix caching makes each one a few dozen
# tokens of prefill; 512 concurrent sequences keep the batch full without starving the KV cache.
: "${JUDGE_MAX_NUM_SEQS:=512}"

# ---------------------------------------------------------------- network
: "${JUDGE_HOST:=127.0.0.1}"               # 0.0.0.0 to serve other nodes
: "${JUDGE_PORT:=8000}"
: "${JUDGE_WAIT_S:=1800}"                  # 0 = do not wait here (the caller waits)
: "${PYTHON:=python3}"
# SPECIARL_JUDGE_API_KEY, if set, is required from clients (passed to vLLM via VLLM_API_KEY,
# so it never appears on a command line).

log() { printf '[judge_server] %s\n' "$*" >&2; }
die() { printf '[judge_server] error: %s\n' "$*" >&2; exit 2; }

command -v vllm > /dev/null 2>&1 || die "vllm is not installed in this environment (pip install vllm); the judge needs it"
if [[ -n "${CUDA_VISIBLE_DEVICES+x}" ]]; then
  IFS=',' read -r -a gpus <<< "${CUDA_VISIBLE_DEVICES}"
  (( ${#gpus[@]} >= JUDGE_TP * JUDGE_DP )) \
    || die "JUDGE_TP=${JUDGE_TP} x JUDGE_DP=${JUDGE_DP} needs $((JUDGE_TP * JUDGE_DP)) GPUs; CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES}"
fi
if [[ -n "${SPECIARL_JUDGE_API_KEY:-}" ]]; then
  export VLLM_API_KEY="${SPECIARL_JUDGE_API_KEY}"
fi

args=(
  serve "${JUDGE_MODEL}"
  --served-model-name "${JUDGE_SERVED_NAME}"
  --host "${JUDGE_HOST}"
  --port "${JUDGE_PORT}"
  --tensor-parallel-size "${JUDGE_TP}"
  --data-parallel-size "${JUDGE_DP}"
  --gpu-memory-utilization "${JUDGE_GPU_MEMORY_UTILIZATION}"
  --max-model-len "${JUDGE_MAX_MODEL_LEN}"
  --max-num-seqs "${JUDGE_MAX_NUM_SEQS}"
  --enable-prefix-caching
  --generation-config vllm
)

log "vllm ${args[*]} $*"
# A session of its own, so that stopping it reaches every engine and worker process vLLM forks.
setsid vllm "${args[@]}" "$@" &
server_pid=$!

# shellcheck disable=SC2317  # called from the traps below
stop_server() {
  trap - EXIT INT TERM
  if kill -0 "${server_pid}" 2> /dev/null; then
    log "stopping vLLM (process group ${server_pid})"
    kill -TERM -- "-${server_pid}" 2> /dev/null || kill -TERM "${server_pid}" 2> /dev/null || true
    for _ in $(seq 1 30); do
      kill -0 "${server_pid}" 2> /dev/null || break
      sleep 1
    done
    kill -KILL -- "-${server_pid}" 2> /dev/null || true
  fi
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT
trap 'stop_server; exit 143' TERM

url="http://${JUDGE_HOST/0.0.0.0/127.0.0.1}:${JUDGE_PORT}"
if (( JUDGE_WAIT_S > 0 )); then
  log "waiting up to ${JUDGE_WAIT_S} s for ${url}/health"
  waited=0
  until "${PYTHON}" -c 'import sys, httpx; httpx.get(sys.argv[1], timeout=5).raise_for_status()' "${url}/health" 2> /dev/null; do
    kill -0 "${server_pid}" 2> /dev/null || die "vLLM exited during start-up (see its messages above)"
    (( waited < JUDGE_WAIT_S )) || die "vLLM did not become healthy within ${JUDGE_WAIT_S} s"
    sleep 5
    waited=$((waited + 5))
  done
  log "ready: ${url}/v1 serves ${JUDGE_SERVED_NAME}"
fi

status=0
wait "${server_pid}" || status=$?
log "vLLM exited with status ${status}"
exit "${status}"

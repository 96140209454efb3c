"""The recipes' launch path (not the dry run): GPU split, judge start/stop, clear errors.

Test doubles, because this machine has no GPU: a fake ``nvidia-smi`` that lists 8 GPUs, a
fake ``vllm`` that serves ``/health`` and ``/v1/models`` over real HTTP on 127.0.0.1 (and forks
a child, like vLLM's engine processes), and a ``PYTHON`` wrapper that records the
``verl.trainer.main_ppo`` call instead of training. Everything else (bash scripts, preflight
checks, process groups, signals) is real.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

FAKE_VLLM = textwrap.dedent(
    """\
    #!{python}
    import http.server, json, os, subprocess, sys
    argv = sys.argv[1:]
    port = int(argv[argv.index("--port") + 1])
    name = argv[argv.index("--served-model-name") + 1]
    child = subprocess.Popen(["sleep", "300"])  # stands in for vLLM's engine/worker processes
    with open(os.environ["FAKE_VLLM_RECORD"], "w") as f:
        json.dump({{"argv": argv, "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid(),
                    "child": child.pid}}, f)
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({{"data": [{{"id": name}}]}}).encode() if self.path == "/v1/models" else b"ok"
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)

FAKE_NVIDIA_SMI = "#!/usr/bin/env bash\nprintf '%s\\n' 0 1 2 3 4 5 6 7\n"

FAKE_PYTHON = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    if [[ "${{1:-}}" == "-m" && "${{2:-}}" == "verl.trainer.main_ppo" ]]; then
      shift 2
      printf '%s\\0' "$@" > "${{FAKE_TRAIN_RECORD}}"
      printf '%s' "${{CUDA_VISIBLE_DEVICES:-}}" > "${{FAKE_TRAIN_RECORD}}.cuda"
      exit "${{FAKE_TRAIN_EXIT:-0}}"
    fi
    exec {python} "$@"
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture
def node(tmp_path):
    """A fake 8-GPU node: bin folder with the doubles, data files, a local model folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (
        ("vllm", FAKE_VLLM.format(python=sys.executable)),
        ("nvidia-smi", FAKE_NVIDIA_SMI),
        ("python-wrapper", FAKE_PYTHON.format(python=sys.executable)),
    ):
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    data = tmp_path / "data" / "cub200"
    data.mkdir(parents=True)
    for name in ("train_sub3000_seed42.parquet", "test_sub500_seed42.parquet"):
        (data / name).write_bytes(b"")  # existence is all the launcher checks
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}", encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"\0")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(RECIPES.parent),
        "PYTHON": str(bin_dir / "python-wrapper"),
        "DATA_DIR": str(tmp_path / "data"),
        "MODEL_PATH": str(model),
        "OUTPUT_DIR": str(tmp_path / "out"),
        "JUDGE_PORT": str(_free_port()),
        "ATTN_IMPL": "sdpa",
        "FAKE_VLLM_RECORD": str(tmp_path / "vllm.json"),
        "FAKE_TRAIN_RECORD": str(tmp_path / "train.args"),
        "HF_HUB_OFFLINE": "1",
    }
    return tmp_path, env


def _run(script: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RECIPES / script)], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("train_exit", [0, 3])
def test_main_recipe_splits_gpus_starts_the_judge_and_stops_it_on_exit(node, train_exit):
    import json

    tmp_path, env = node
    result = _run("speciarl_qwen25vl7b.sh", {**env, "FAKE_TRAIN_EXIT": str(train_exit)})
    assert result.returncode == train_exit, result.stderr
    vllm = json.loads((tmp_path / "vllm.json").read_text())
    assert vllm["cuda"] == "4,5,6,7"
    argv = vllm["argv"]
    for flag, value in (("--tensor-parallel-size", "2"), ("--data-parallel-size", "2"), ("--max-num-seqs", "512"),
                        ("--port", env["JUDGE_PORT"]), ("--host", "127.0.0.1")):
        assert argv[argv.index(flag) + 1] == value
    assert "--enable-prefix-caching" in argv
    assert (tmp_path / "train.args.cuda").read_text() == "0,1,2,3"
    train_args = (tmp_path / "train.args").read_text().split("\0")
    assert "trainer.n_gpus_per_node=4" in train_args
    assert f"+reward.speciarl.judge.urls=['http://127.0.0.1:{env['JUDGE_PORT']}/v1']" in train_args
    deadline = time.monotonic() + 40
    while (_alive(vllm["pid"]) or _alive(vllm["child"])) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(vllm["pid"]) and not _alive(vllm["child"]), "judge processes outlived the recipe"


def test_no_gpu_is_a_clear_error(node):
    _, env = node
    env = {**env, "PATH": os.environ["PATH"]}  # no fake nvidia-smi
    result = _run("speciarl_qwen25vl7b.sh", env)
    assert result.returncode == 2
    assert "no GPU found" in result.stderr


def test_missing_model_weights_is_a_clear_error_before_the_judge_starts(node):
    tmp_path, env = node
    result = _run("speciarl_qwen25vl7b.sh", {**env, "MODEL_PATH": str(tmp_path / "no-such-model")})
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "MODEL_PATH" in result.stderr
    assert not (tmp_path / "vllm.json").exists()


def test_unreachable_remote_judge_is_a_clear_error(node):
    _, env = node
    url = f"http://127.0.0.1:{_free_port()}/v1"
    result = _run("speciarl_qwen25vl7b.sh", {**env, "SPECIARL_JUDGE_URLS": url, "JUDGE_CHECK_TIMEOUT_S": "0"})
    assert result.returncode == 2
    assert f"judge at {url} is unreachable" in result.stderr


def test_judge_server_standalone_waits_until_healthy_and_stops_its_process_group(node):
    import json

    tmp_path, env = node
    proc = subprocess.Popen(
        ["bash", str(RECIPES / "judge_server.sh")],
        env={**env, "JUDGE_WAIT_S": "60", "PYTHON": sys.executable, "CUDA_VISIBLE_DEVICES": "0,1"},
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "ready:" in line or not line:
                break
        assert any(f"ready: http://127.0.0.1:{env['JUDGE_PORT']}/v1" in line for line in lines), lines
        vllm = json.loads((tmp_path / "vllm.json").read_text())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 143
        assert not _alive(vllm["pid"]) and not _alive(vllm["child"])
    finally:
        if proc.poll() is None:
            proc.kill()

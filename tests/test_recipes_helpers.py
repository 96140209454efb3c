"""The recipes' Python helpers: GPU split between training and judge, and the preflight checks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from verl_ext.recipes.errors import RecipeError
from verl_ext.recipes.gpu_plan import main as gpu_plan_main
from verl_ext.recipes.gpu_plan import plan_gpus
from verl_ext.recipes.preflight import probe_judge, resolve_model, wait_for_judges
from verl_ext.testing.judge_server import ScriptableJudgeServer

EIGHT = [str(i) for i in range(8)]


def test_eight_gpus_with_local_judge_train_on_four_and_judge_on_four():
    """1,280 responses per mini-batch do not split over 6 GPUs; the spare pair becomes a judge replica."""
    plan = plan_gpus(EIGHT, local_judge=True, judge_tp=2, rollout_tp=2, mini_batch_responses=128 * 10)
    assert plan.train == ("0", "1", "2", "3")
    assert plan.judge == ("4", "5", "6", "7")
    assert plan.judge_dp == 2


def test_fifteen_rollouts_train_on_six_gpus():
    plan = plan_gpus(EIGHT, local_judge=True, judge_tp=2, rollout_tp=2, mini_batch_responses=128 * 15)
    assert len(plan.train) == 6 and plan.judge == ("6", "7") and plan.judge_dp == 1


def test_remote_judge_trains_on_every_gpu():
    plan = plan_gpus(EIGHT, local_judge=False, judge_tp=2, rollout_tp=2, mini_batch_responses=1280)
    assert plan.train == tuple(EIGHT) and plan.judge == () and plan.judge_dp == 0


def test_too_few_gpus_names_the_need():
    with pytest.raises(RecipeError, match="too few GPUs: 3 visible, at least 4 needed"):
        plan_gpus(["0", "1", "2"], local_judge=True, judge_tp=2, rollout_tp=2, mini_batch_responses=1280)


def test_no_gpu_is_an_error():
    with pytest.raises(RecipeError, match="no GPU visible"):
        plan_gpus([], local_judge=False, judge_tp=2, rollout_tp=2, mini_batch_responses=1280)


def test_forced_training_gpu_count_must_split_the_batch():
    with pytest.raises(RecipeError, match="TRAIN_GPUS=6"):
        plan_gpus(EIGHT, local_judge=True, judge_tp=2, rollout_tp=2, mini_batch_responses=1280, train_gpus=6)


def test_gpu_plan_cli_prints_one_line(capsys):
    assert gpu_plan_main(["--visible", "0,1", "--local-judge", "--judge-tp", "1", "--rollout-tp", "1", "--mini-batch-responses", "32"]) == 0
    assert capsys.readouterr().out.strip() == "1 0 1 1"


def _model_dir(tmp_path: Path, weights: bool = True) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    if weights:
        (folder / "model-00001-of-00001.safetensors").write_bytes(b"\0")
    return folder


def test_local_model_folder_with_weights_is_accepted(tmp_path):
    folder = _model_dir(tmp_path)
    assert resolve_model(str(folder)) == folder


def test_local_model_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(RecipeError, match="no weight files"):
        resolve_model(str(_model_dir(tmp_path, weights=False)))


def test_missing_hub_model_offline_says_how_to_fetch_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(RecipeError, match="hf download Qwen/Qwen2.5-VL-7B-Instruct"):
        resolve_model("Qwen/Qwen2.5-VL-7B-Instruct")


def test_judge_probe_lists_the_served_model():
    with ScriptableJudgeServer({}, model_name="judge-x").start_in_thread() as server:
        assert "judge-x" in probe_judge(server.url, api_key=None)
        wait_for_judges([server.url], model="judge-x", api_key=None)
        with pytest.raises(RecipeError, match="not 'other-model'"):
            wait_for_judges([server.url], model="other-model", api_key=None)


def test_judge_that_needs_a_key_reports_401():
    with ScriptableJudgeServer({}, api_key="secret").start_in_thread() as server:
        with pytest.raises(RecipeError, match="HTTP 401"):
            probe_judge(server.url, api_key=None)
        assert probe_judge(server.url, api_key="secret")


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def test_unreachable_judge_fails_with_what_to_do():
    with pytest.raises(RecipeError, match="unreachable.*judge_server.sh"):
        wait_for_judges([_closed_port_url()], model=None, api_key=None, wait_s=0.5, poll_s=0.1)


def test_judge_process_that_died_during_start_up_fails_fast(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with pytest.raises(RecipeError, match=f"process {dead.pid} exited during start-up; its log is x.log"):
        wait_for_judges([_closed_port_url()], model=None, api_key=None, wait_s=60, poll_s=0.05, pid=dead.pid, log_path="x.log")


def test_preflight_cli_exit_status(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    ok = subprocess.run([sys.executable, "-m", "verl_ext.recipes.preflight", "model", str(_model_dir(tmp_path))],
                        capture_output=True, text=True, env=env, timeout=60)
    bad = subprocess.run([sys.executable, "-m", "verl_ext.recipes.preflight", "judge", "--url", _closed_port_url()],
                         capture_output=True, text=True, env=env, timeout=60)
    assert ok.returncode == 0 and bad.returncode == 2 and "unreachable" in bad.stderr

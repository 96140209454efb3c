"""``recipes/reproduce_paper.sh``: the paper's whole sequence, walked with ``DRY_RUN=1``.

The dry run does what a GPU run does up to the point where something would start: each training
recipe composes and validates its config (its own dry run), each evaluation's arguments go
through the evaluation CLI's parser, and the data, merge, judge and comparison steps print their
commands. The tests read that walk and check every step is there with the paper's settings.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from test_recipes_dryrun import _clean_env

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "reproduce_paper.sh"
SOURCES = ("cub200", "flowers102", "oxford_pets", "food101", "fgvc_aircraft", "stanford_cars")


def _walk(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    env = _clean_env(tmp_path, DATA_DIR=str(tmp_path / "data"), REPRO_DIR=str(tmp_path / "repro"), **env)
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def _evaluations(stdout: str) -> list[list[str]]:
    return [line.split()[3:] for line in stdout.splitlines() if line.startswith("[dry run] python -m verl_ext.eval ")]


def _value(arguments: list[str], flag: str) -> str:
    return arguments[arguments.index(flag) + 1]


@pytest.fixture(scope="module")
def walk(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("reproduce")
    result = _walk(tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    return tmp_path, result


def test_data_for_all_six_datasets_on_the_papers_splits(walk):
    tmp_path, result = walk
    data = [line for line in result.stderr.splitlines() if "would run:" in line and "/data_prep/" in line]
    assert [line.split("/data_prep/")[1].split()[0] for line in data] == [
        "cub.py", "cub.py", "flowers102.py", "food101.py", "oxford_pets.py", "fgvc_aircraft.py", "stanford_cars.py"]
    assert data[1].endswith("--splits test") and all(f"--out {tmp_path / 'data'}" in line for line in data)


def test_the_three_trained_methods_are_dry_run_by_their_own_recipes_and_merged(walk):
    tmp_path, result = walk
    assert result.stdout.count("[dry run] OK: the config is valid") == 2  # RFT and SpeciaRL (main_ppo)
    assert result.stdout.count("[dry run] OK: the SFT config is valid") == 1
    rules = [line.split("reward rule / label noise")[1].split("/")[0].strip()
             for line in result.stdout.splitlines() if "reward rule / label noise" in line]
    assert rules == ["binary", "best_in_group"]  # RFT's static binary reward, then SpeciaRL's
    merges = [line for line in result.stdout.splitlines() if "verl.model_merger merge" in line]
    assert [line.split("--target_dir ")[1] for line in merges] == [str(tmp_path / "repro" / "models" / k) for k in ("sft", "rft", "speciarl")]


def test_six_evaluations_with_both_protocols_against_the_papers_judges(walk):
    tmp_path, result = walk
    runs = _evaluations(result.stdout)
    models = tmp_path / "repro" / "models"
    expected = [  # method name, model, prompt variant, n, temperature, top-p
        ("Qwen2.5-VL-7B", "Qwen/Qwen2.5-VL-7B-Instruct", "general", "1", "0", "1.0"),
        ("+ be specific", "Qwen/Qwen2.5-VL-7B-Instruct", "specific", "1", "0", "1.0"),
        ("+ SFT", str(models / "sft"), "general", "1", "0", "1.0"),
        ("+ RFT (binary)", str(models / "rft"), "general", "1", "0", "1.0"),
        ("SpeciaRL", str(models / "speciarl"), "general", "1", "0", "1.0"),
        ("Qwen2.5-VL-7B (T=0.6)", "Qwen/Qwen2.5-VL-7B-Instruct", "general", "64", "0.6", "0.95"),
    ]
    assert len(runs) == len(expected)
    for arguments, (method, model, variant, n, temperature, top_p) in zip(runs, expected):
        joined = " ".join(arguments)
        assert method in joined and _value(arguments, "--model") == model
        assert (_value(arguments, "--prompt-variant"), _value(arguments, "--n")) == (variant, n)
        assert (_value(arguments, "--temperature"), _value(arguments, "--top-p")) == (temperature, top_p)
        assert _value(arguments, "--metrics") == "judge,owc"
        assert _value(arguments, "--judge-model") == "meta-llama/Meta-Llama-3-70B-Instruct"
        assert _value(arguments, "--judge-url") == "http://127.0.0.1:8100/v1"
        assert (_value(arguments, "--li-judge-url"), _value(arguments, "--li-judge-model")) == (
            "http://127.0.0.1:8101/v1", "meta-llama/Llama-3.2-3B-Instruct")
        data = arguments[arguments.index("--data") + 1: arguments.index("--data") + 7]
        assert data == [str(tmp_path / "data" / source / "test.parquet") for source in SOURCES]
    assert "would serve the evaluation judge meta-llama/Meta-Llama-3-70B-Instruct on GPUs 4,5,6,7" in result.stderr


def test_the_comparison_lines_up_the_six_runs_with_arrows_from_the_base_model(walk):
    tmp_path, result = walk
    compare = next(line for line in result.stderr.splitlines() if "verl_ext.eval.compare" in line)
    runs = [str(tmp_path / "repro" / "eval" / k) for k in ("base", "be_specific", "sft", "rft", "speciarl", "bon")]
    assert compare.split("verl_ext.eval.compare ")[1] == " ".join(runs) + f" --out {tmp_path / 'repro' / 'compare'} --base Qwen2.5-VL-7B"


def test_given_models_are_evaluated_not_trained_and_finished_work_is_skipped(tmp_path):
    for source in SOURCES:
        (tmp_path / "data" / source).mkdir(parents=True)
        (tmp_path / "data" / source / "test.parquet").write_bytes(b"")
    (tmp_path / "data" / "cub200" / "train_sub3000_seed42.parquet").write_bytes(b"")
    done = tmp_path / "repro" / "eval" / "base"
    done.mkdir(parents=True)
    (done / "metrics.json").write_text(json.dumps({"complete": True}))
    given = {"SFT_MODEL": "/ckpt/sft", "RFT_MODEL": "/ckpt/rft", "SPECIARL_MODEL": "/ckpt/speciarl"}
    result = _walk(tmp_path, STEPS="data,train,eval", EVAL_JUDGE_URLS="http://judge:8000/v1",
                   LI_JUDGE_URLS="http://li:8001/v1", **given)
    assert result.returncode == 0, result.stderr
    assert "would run:" not in result.stderr  # every data file is there
    assert result.stderr.count("not training it") == 3 and "[dry run] OK: the config is valid" not in result.stdout
    assert f"eval: Qwen2.5-VL-7B is complete in {done}" in result.stderr
    runs = _evaluations(result.stdout)
    assert [_value(a, "--model") for a in runs[1:4]] == ["/ckpt/sft", "/ckpt/rft", "/ckpt/speciarl"]
    assert {_value(a, "--judge-url") for a in runs} == {"http://judge:8000/v1"}
    assert {_value(a, "--li-judge-url") for a in runs} == {"http://li:8001/v1"}
    assert "would serve" not in result.stderr and "verl_ext.eval.compare" not in result.stderr


@pytest.mark.parametrize(("args", "env", "fragment"), [
    ((), {"STEPS": "data,trian"}, "unknown step 'trian'"),
    (("optim.lr=1e-5",), {}, "takes no arguments"),
])
def test_a_mistyped_step_or_an_argument_is_refused_before_anything_runs(tmp_path, args, env, fragment):
    result = _walk(tmp_path, *args, **env)
    assert result.returncode == 2 and fragment in result.stderr
    assert "would run" not in result.stderr

"""``recipes/sft_qwen25vl7b.sh``: its dry run, its config next to the RL recipes', and its launch path.

The dry-run tests run the real script under bash with ``DRY_RUN=1``; most ask it for its final
argument list (``DRY_RUN_EMIT``) and compose that in this process. The launch test runs the
real data preparation and checks, with a ``PYTHON`` wrapper that records the torchrun call
instead of training (this machine has no GPU; ``test_train_sft_cpu.py`` trains for real).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from verl_ext.core.prompts import policy_response
from verl_ext.recipes.errors import RecipeError
from verl_ext.recipes.sft_config import check_sft_config
from verl_ext.testing import layouts

from recipe_doubles import recording_python
from test_recipes_dryrun import _clean_env, _lookup, compose_recipe, emit_arguments

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "recipes" / "sft_qwen25vl7b.sh"
CONFIG = REPO / "recipes" / "config" / "sft_qwen25vl7b.yaml"
LORA_KEYS = ("lora_rank", "lora_alpha", "target_modules", "exclude_modules", "path")


def compose_sft(tmp_path: Path, *args: str, **env: str) -> dict:
    arguments = emit_arguments(SCRIPT.name, tmp_path, *args, **env)
    config_path, config_name, overrides = arguments[0], arguments[1], arguments[2:]
    assert config_path == f"--config-path={CONFIG.parent}" and config_name == f"--config-name={CONFIG.stem}"
    out = tmp_path / "sft.yaml"
    check_sft_config(CONFIG, overrides, strict=False, config_out=str(out), echo=lambda _line: None)
    return yaml.safe_load(out.read_text(encoding="utf-8"))


def test_sft_recipe_composes_the_paper_setting_on_the_rl_recipes_images(tmp_path):
    config = compose_sft(tmp_path)
    expected = {
        "model.path": "Qwen/Qwen2.5-VL-7B-Instruct",
        "model.lora_rank": 64, "model.lora_alpha": 32, "model.target_modules": "all-linear",
        "model.exclude_modules": ".*visual.*",
        "engine.strategy": "fsdp", "optim.lr": 3e-5, "optim.lr_scheduler_type": "constant",
        "data.train_batch_size": 64, "data.max_length": 4096, "data.truncation": "error",
        "data.enable_thinking_default": None,  # verl's default is the truthy string 'none'
        "data.train_files": str(tmp_path / "checkpoints/speciarl/qwen25vl7b_cub_sft_label/sft_data/train_label.parquet"),
        "data.val_files": str(tmp_path / "checkpoints/speciarl/qwen25vl7b_cub_sft_label/sft_data/val_label.parquet"),
        "trainer.experiment_name": "qwen25vl7b_cub_sft_label",
        "trainer.n_gpus_per_node": 8,  # no judge to share the node with
        "trainer.total_epochs": 3,
    }
    for key, value in expected.items():
        assert _lookup(config, key) == value, key


def test_sft_lora_and_model_are_the_rl_recipes(tmp_path):
    """If the RL recipes' LoRA ever changes, the SFT baseline must follow (or this fails)."""
    sft = compose_sft(tmp_path)
    rl = compose_recipe("speciarl_qwen25vl7b.sh", tmp_path)
    for key in LORA_KEYS:
        assert _lookup(sft, f"model.{key}") == _lookup(rl, f"actor_rollout_ref.model.{key}"), key


def test_environment_and_arguments_reach_the_config_and_arguments_come_last(tmp_path):
    arguments = emit_arguments(SCRIPT.name, tmp_path, "optim.lr=1e-5", SFT_TARGET="rejection", GPUS_PER_NODE="4",
                               MODEL_PATH="/models/qwen 7b", SFT_VAL="0")
    assert arguments[-1] == "optim.lr=1e-5"
    config = compose_sft(tmp_path, "optim.lr=1e-5", SFT_TARGET="rejection", GPUS_PER_NODE="4",
                         MODEL_PATH="/models/qwen 7b", SFT_VAL="0")
    assert _lookup(config, "optim.lr") == 1e-5 and _lookup(config, "trainer.n_gpus_per_node") == 4
    assert _lookup(config, "model.path") == "/models/qwen 7b" and _lookup(config, "data.val_files") is None
    assert _lookup(config, "data.train_files").endswith("qwen25vl7b_cub_sft_rejection/sft_data/train_rejection.parquet")


def _dry_run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], env=_clean_env(tmp_path, **env), capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)


def test_dry_run_through_bash_writes_the_resolved_config(tmp_path):
    out = tmp_path / "resolved.yaml"
    result = _dry_run(tmp_path, "trainer.total_epochs=5", DRY_RUN_CONFIG=str(out))
    assert result.returncode == 0, result.stderr
    assert "[dry run] OK: the SFT config is valid" in result.stdout
    assert "MultiTurnSFTDataset" in result.stdout and "flash-attn is not installed here" in result.stdout
    assert "would build the SFT training data" in result.stderr and "--target label" in result.stderr
    assert _lookup(yaml.safe_load(out.read_text()), "trainer.total_epochs") == 5


@pytest.mark.parametrize(
    ("args", "env", "fragment"),
    [
        (("optim.lrr=1e-5",), {}, "optim.lrr"),
        ((), {"GPUS_PER_NODE": "6"}, "data.train_batch_size=64 does not split over 6 GPUs"),
        (("model.exclude_modules='.*(visual'",), {}, "not a regular expression"),
        (("data.pad_mode=left",), {}, "data.pad_mode='left'"),
        (("engine.strategy=fsdp3",), {}, "engine: verl rejected the settings: strategy fsdp3 not supported"),
    ],
    ids=["typo", "uneven-batch", "bad-regex", "pad-mode", "engine"],
)
def test_bad_settings_fail_at_dry_run_with_the_key_in_the_message(tmp_path, args, env, fragment):
    """The recipe's own arguments, checked in this process (the bash -> Python path is tested below)."""
    arguments = emit_arguments(SCRIPT.name, tmp_path, *args, **env)
    with pytest.raises(RecipeError, match=re.escape(fragment)):
        check_sft_config(CONFIG, arguments[2:], strict=False, echo=lambda _line: None)


def test_a_bad_setting_stops_the_bash_dry_run_with_exit_2(tmp_path):
    result = _dry_run(tmp_path, "optim.lrr=1e-5")
    assert result.returncode == 2 and "Hydra rejected" in result.stderr and "optim.lrr" in result.stderr
    result = _dry_run(tmp_path, SFT_TARGET="lable")
    assert result.returncode == 2 and "SFT_TARGET must be 'label' or 'rejection'" in result.stderr


def test_rejection_dry_run_walks_the_base_models_sampling_on_the_training_images(tmp_path):
    result = _dry_run(tmp_path, SFT_TARGET="rejection", SPECIARL_JUDGE_URLS="http://judge:8000/v1")
    assert result.returncode == 0, result.stderr
    evaluation = next(line for line in result.stdout.splitlines() if line.startswith("[dry run] python -m verl_ext.eval"))
    for fragment in ("--model Qwen/Qwen2.5-VL-7B-Instruct", "cub200/train_sub3000_seed42.parquet", "--n 10",
                     "--temperature 1.0", "--top-p 1.0", "--prompt-variant general",
                     "--judge-model Qwen/Qwen3-30B-A3B-Instruct-2507-FP8", "qwen25vl7b_cub_sft_rejection/rejection_rollouts"):
        assert fragment in evaluation, fragment
    assert "--target rejection" in result.stderr and "[dry run] OK: the SFT config is valid" in result.stdout




def test_rejection_launch_builds_the_data_from_finished_rollouts_and_starts_torchrun(tmp_path, offline_kit):
    """Real data_prep, SFT data build, model and config preflight; torchrun is recorded, not run."""
    layouts.build_cub(tmp_path / "raw", classes=2, train_per_class=2, test_per_class=1)
    data = tmp_path / "data"
    rollouts = tmp_path / "rollouts"
    rollouts.mkdir()
    (rollouts / "metrics.json").write_text(json.dumps({"run": {"prompt_variant": "general", "sampling": {"n": 2}}}))
    python = recording_python(tmp_path / "python", "torch.distributed.run", "FAKE_TRAIN_RECORD")
    record = tmp_path / "torchrun.args"
    env = _clean_env(tmp_path) | dict(DRY_RUN="0", PYTHON=str(python), FAKE_TRAIN_RECORD=str(record), MODEL_PATH=str(offline_kit.path),
                     DATA_DIR=str(data), DATA_ROOT=str(tmp_path / "raw"), DATA_DOWNLOAD="0", TRAIN_SUBSET="4", VAL_SUBSET="2",
                     SFT_TARGET="rejection", SFT_ROLLOUTS_DIR=str(rollouts), OUTPUT_DIR=str(tmp_path / "run"), GPUS_PER_NODE="2")
    # the samples.jsonl an evaluation of the RL parquet writes; made after data_prep, from its rows
    subprocess.run([sys.executable, str(REPO / "data_prep" / "cub.py"), "--root", str(tmp_path / "raw"), "--out", str(data),
                    "--splits", "train", "--subset", "4", "--no-download", "--no-progress"], check=True, capture_output=True)
    rows = pq.read_table(data / "cub200" / "train_sub4_seed42.parquet").to_pylist()
    lines = []
    for i, row in enumerate(rows):
        truth = row["reward_model"]["ground_truth"]
        for sample, category in enumerate(("generic", "specific" if i % 2 == 0 else "wrong")):
            lines.append({"data_source": "cub200", "index": row["extra_info"]["index"], "sample": sample, "ground_truth": truth,
                          "response": policy_response(f"sample {sample}", truth), "status": "judged", "category": category})
    (rollouts / "samples.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = subprocess.run(["bash", str(SCRIPT), "++model.override_config.attn_implementation=sdpa",
                             "model.use_remove_padding=False"], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "reusing the rollouts" in result.stderr
    sft = pq.read_table(tmp_path / "run" / "sft_data" / "train_rejection.parquet").to_pylist()
    assert [r["messages"][-1]["content"] for r in sft] == [policy_response("sample 1", rows[i]["reward_model"]["ground_truth"])
                                                           for i in (0, 2)]
    arguments = [a for a in record.read_text().split("\0") if a]
    assert arguments[:6] == ["--standalone", "--nnodes=1", "--nproc-per-node", "2", "-m", "verl.trainer.sft_trainer"]
    assert f"data.train_files='{tmp_path / 'run' / 'sft_data' / 'train_rejection.parquet'}'" in arguments
    assert arguments[-2:] == ["++model.override_config.attn_implementation=sdpa", "model.use_remove_padding=False"]


def test_preflight_refuses_what_would_fail_after_torchrun_started(tmp_path):
    """Flash-attention asked where it is missing (the GPU default, here), and a file that is not SFT data."""
    from verl_ext.recipes.sft_config import main

    train = tmp_path / "train.parquet"
    pq.write_table(_sft_table(), train)
    files = [f"data.train_files={train}", "data.val_files=null"]
    sdpa = ["model.use_remove_padding=False", "++model.override_config.attn_implementation=sdpa"]
    assert main(["preflight", "--config", str(CONFIG), *files]) == 2
    with pytest.raises(RecipeError, match="attn_implementation=sdpa"):
        check_sft_config(CONFIG, files, strict=True, echo=lambda _line: None)
    check_sft_config(CONFIG, files + sdpa, strict=True, echo=lambda _line: None)
    pq.write_table(_sft_table(columns=("images",)), train)
    with pytest.raises(RecipeError, match=r"no column\(s\) \['messages'\]"):
        check_sft_config(CONFIG, files + sdpa, strict=True, echo=lambda _line: None)
    with pytest.raises(RecipeError, match="does not exist"):
        check_sft_config(CONFIG, [f"data.train_files={tmp_path / 'no.parquet'}"] + sdpa, strict=True, echo=lambda _line: None)


def _sft_table(columns=("messages", "images")):
    import pyarrow as pa

    values = {"messages": [[{"role": "user", "content": "x"}]], "images": [[{"bytes": b"x", "path": "p"}]]}
    return pa.table({name: values[name] for name in columns})

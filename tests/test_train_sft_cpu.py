"""The SFT recipe for real on CPU: ``bash recipes/sft_qwen25vl7b.sh`` through torchrun and verl's SFT trainer.

Everything is the user's path: ``data_prep/cub.py`` on a miniature CUB layout, the SFT parquet
(label targets), the preflight, ``torchrun -m verl.trainer.sft_trainer`` with the recipe's Hydra
config, FSDP2 over gloo (``verl_ext.testing.cpu_backend``: its platform and its patch of verl's
torchrun process-group set-up), LoRA, the validation loss, the checkpoint, and
``verl.model_merger`` on it. The model is the offline kit's tiny random-weight Qwen2.5-VL: the
run proves the parts work together, not that SFT teaches anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from verl_ext.testing import layouts
from verl_ext.testing.cpu_backend import cpu_backend_env, cpu_sft_overrides

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 600
STEPS = 2


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VERL_", "SFT_", "DATA_", "DRY_RUN"))}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false",
               PYTHON=sys.executable, **extra)
    return env


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, offline_kit):
    root = tmp_path_factory.mktemp("sft_cpu")
    layouts.build_cub(root / "raw" / "cub200", classes=4, train_per_class=4, test_per_class=2)
    env = _env(
        **cpu_backend_env(), MODEL_PATH=str(offline_kit.path), DATA_DIR=str(root / "data"),
        DATA_ROOT=str(root / "raw" / "cub200"), DATA_DOWNLOAD="0", TRAIN_SUBSET="12", VAL_SUBSET="4",
        OUTPUT_DIR=str(root / "run"), GPUS_PER_NODE="1",
    )
    overrides = [*cpu_sft_overrides(), "data.train_batch_size=4", "model.lora_rank=8", "model.lora_alpha=16",
                 f"trainer.total_training_steps={STEPS}", "trainer.logger=[console]"]
    result = subprocess.run(["bash", str(REPO / "recipes" / "sft_qwen25vl7b.sh"), *overrides], env=env,
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=root)
    assert result.returncode == 0, (result.stdout[-4000:], result.stderr[-6000:])
    return root, result, offline_kit


def test_the_recipe_builds_the_sft_data_from_the_rl_rows(sft_run):
    root, _, _ = sft_run
    rl = pq.read_table(root / "data" / "cub200" / "train_sub12_seed42.parquet").to_pylist()
    sft = pq.read_table(root / "run" / "sft_data" / "train_label.parquet").to_pylist()
    assert [r["extra_info"] for r in sft] == [r["extra_info"] for r in rl] and len(sft) == 12
    assert all(r["messages"][-1]["content"].endswith(f"<answer>{r['reward_model']['ground_truth']}</answer>") for r in sft)
    assert pq.read_metadata(root / "run" / "sft_data" / "val_label.parquet").num_rows == 4


def test_verls_sft_trainer_logs_every_step_and_the_validation_loss(sft_run):
    _, result, _ = sft_run
    steps = [int(m) for m in re.findall(r"step:(\d+) - .*train/loss:", result.stdout)]
    assert steps == list(range(1, STEPS + 1))
    assert re.search(rf"step:{STEPS} - val/loss:\d", result.stdout)


def test_the_checkpoint_merges_into_a_lora_adapter_on_the_language_model_only(sft_run):
    """LoRA as in the RL runs: the vision tower has no adapter, the adapter trained, the base stayed put."""
    root, _, kit = sft_run
    step = root / "run" / f"global_step_{STEPS}"
    assert json.loads((step / "lora_train_meta.json").read_text())["r"] == 8
    assert (root / "run" / "latest_checkpointed_iteration.txt").read_text().strip() == str(STEPS)
    merged = root / "merged"
    merge = [sys.executable, "-m", "verl_ext.recipes.checkpoints", "merge", str(root / "run"), "--out", str(merged)]
    result = subprocess.run(merge, env=_env(), capture_output=True, text=True, timeout=300)  # verl.model_merger inside
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"merged {step}" in result.stdout  # an SFT step folder holds its shards itself (no actor/)
    adapter = load_file(merged / "lora_adapter" / "adapter_model.safetensors")
    assert adapter and not [k for k in adapter if "visual" in k]
    assert any(torch.count_nonzero(v) for k, v in adapter.items() if "lora_B" in k)  # B starts at zero
    # the merger writes the base weights next to the adapter, in the training dtype (bf16)
    base, original = load_file(merged / "model.safetensors"), load_file(kit.path / "model.safetensors")
    assert base.keys() == original.keys()
    assert all(torch.equal(base[k], original[k].to(base[k].dtype)) for k in base)

    from verl_ext.eval.model_source import resolve_model

    source = resolve_model(merged)  # what python -m verl_ext.eval --model MERGED loads
    assert source.has_adapter and source.adapter_rank() == 8
    again = subprocess.run(merge, env=_env(), capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "already holds" in again.stdout

"""Resolving --model: HF folder, LoRA adapter (PEFT or verl merger layout), verl checkpoints."""

import json
import shutil

import pytest
import torch

from verl_ext.eval.backends.hf import _load_model
from verl_ext.eval.model_source import ModelSourceError, fingerprint, resolve_model

Q_PROJ = "model.language_model.layers.0.self_attn.q_proj.weight"


@pytest.fixture(scope="module")
def adapter_dir(offline_kit, tmp_path_factory):
    """A real PEFT LoRA adapter on the kit's model, with non-zero B so it changes the weights."""
    from peft import LoraConfig, get_peft_model

    model = offline_kit.load_model()
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  exclude_modules=r".*visual.*"))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    out = tmp_path_factory.mktemp("adapter") / "peft_adapter"
    peft_model.save_pretrained(out)
    return out


def merger_layout(kit_path, adapter, root):
    """What `python -m verl.model_merger merge` leaves for a LoRA run: base weights + lora_adapter/."""
    shutil.copytree(kit_path, root)
    shutil.copytree(adapter, root / "lora_adapter")
    config = json.loads((root / "lora_adapter" / "adapter_config.json").read_text())
    config.pop("base_model_name_or_path", None)  # the merger does not record it
    (root / "lora_adapter" / "adapter_config.json").write_text(json.dumps(config))
    return root


def test_plain_hf_folder(offline_kit):
    source = resolve_model(offline_kit.path)
    assert (source.layout, source.base_path, source.adapter_path) == ("hf", offline_kit.path, None)


def test_peft_adapter_folder_finds_its_base_model(offline_kit, adapter_dir):
    source = resolve_model(adapter_dir)
    assert source.layout == "peft_adapter"
    assert source.base_path.resolve() == offline_kit.path.resolve()
    assert source.adapter_rank() == 4


def test_model_merger_output_applies_its_lora_adapter(offline_kit, adapter_dir, tmp_path):
    merged = merger_layout(offline_kit.path, adapter_dir, tmp_path / "merged")
    source = resolve_model(merged)
    assert (source.layout, source.base_path, source.adapter_path) == ("lora_checkpoint", merged, merged / "lora_adapter")


def test_lora_checkpoint_loads_base_plus_scaled_low_rank_update(offline_kit, adapter_dir, tmp_path):
    from safetensors.torch import load_file

    merged = merger_layout(offline_kit.path, adapter_dir, tmp_path / "merged")
    base = dict(_load_model(resolve_model(offline_kit.path), "cpu").named_parameters())[Q_PROJ]
    tuned = dict(_load_model(resolve_model(merged), "cpu").named_parameters())[Q_PROJ]
    weights = load_file(merged / "lora_adapter" / "adapter_model.safetensors")
    a = next(v for k, v in weights.items() if "layers.0.self_attn.q_proj.lora_A" in k)
    b = next(v for k, v in weights.items() if "layers.0.self_attn.q_proj.lora_B" in k)
    assert torch.allclose(tuned, base + (b @ a) * (8 / 4), atol=1e-5)
    assert not torch.allclose(tuned, base)


def test_adapter_without_base_needs_base_model_flag(adapter_dir, offline_kit, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(adapter_dir, bare)
    config = json.loads((bare / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None
    (bare / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelSourceError, match="--base-model"):
        resolve_model(bare)
    assert resolve_model(bare, base_model=str(offline_kit.path)).base_path == offline_kit.path


def test_verl_checkpoint_with_hf_weights_is_used(offline_kit, tmp_path):
    hf = tmp_path / "global_step_5" / "actor" / "huggingface"
    shutil.copytree(offline_kit.path, hf)
    source = resolve_model(tmp_path / "global_step_5")
    assert (source.layout, source.base_path) == ("verl_checkpoint_hf", hf)


def test_sharded_fsdp_checkpoint_says_how_to_merge(tmp_path):
    actor = tmp_path / "global_step_5" / "actor"
    (actor / "huggingface").mkdir(parents=True)
    (actor / "huggingface" / "config.json").write_text("{}")
    (actor / "model_world_size_4_rank_0.pt").write_bytes(b"")
    with pytest.raises(ModelSourceError, match="verl.model_merger merge --backend fsdp"):
        resolve_model(tmp_path / "global_step_5")


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelSourceError, match="not a directory"):
        resolve_model(tmp_path / "nothing")
    with pytest.raises(ModelSourceError, match="no config.json"):
        resolve_model(tmp_path)


def test_fingerprint_follows_content_not_path(offline_kit, adapter_dir, tmp_path):
    copy_a = merger_layout(offline_kit.path, adapter_dir, tmp_path / "a")
    copy_b = merger_layout(offline_kit.path, adapter_dir, tmp_path / "b")
    memo = tmp_path / "memo.json"
    first = fingerprint(resolve_model(copy_a), memo)
    assert fingerprint(resolve_model(copy_b), memo) == first
    assert fingerprint(resolve_model(offline_kit.path), memo) != first  # no adapter
    weights = copy_b / "lora_adapter" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\x00\x00\x00\x01")
    assert fingerprint(resolve_model(copy_b), memo) != first

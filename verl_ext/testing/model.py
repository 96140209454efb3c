"""A random-weight Qwen2.5-VL small enough to run forward and ``generate`` on a CPU in milliseconds.

The architecture is the real ``Qwen2_5_VLForConditionalGeneration`` (vision tower, merger,
multimodal rope), only narrower and shallower, and its special-token ids are the tiny
tokenizer's. Its outputs are noise; it exists so that loading, batching, image placement and
generation code paths run for real.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerBase,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

TEXT_HIDDEN_SIZE = 64
TEXT_HEADS = 4
TEXT_KV_HEADS = 2
#: Multimodal rope split of half the head dim (64 / 4 / 2 = 8) into temporal/height/width parts.
MROPE_SECTION = [2, 3, 3]


def _token_id(tokenizer: "PreTrainedTokenizerBase", token: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ValueError(f"tokenizer has no {token!r} token; build it with verl_ext.testing.tokenizer")
    return int(token_id)


def tiny_qwen25vl_config(tokenizer: "PreTrainedTokenizerBase") -> "Qwen2_5_VLConfig":
    """A two-layer Qwen2.5-VL config whose vocabulary and token ids match ``tokenizer``."""
    from transformers import Qwen2_5_VLConfig

    eos_id = _token_id(tokenizer, "<|im_end|>")
    pad_id = _token_id(tokenizer, "<|endoftext|>")
    text_config = {
        "vocab_size": len(tokenizer),
        "hidden_size": TEXT_HIDDEN_SIZE,
        "intermediate_size": 2 * TEXT_HIDDEN_SIZE,
        "num_hidden_layers": 2,
        "num_attention_heads": TEXT_HEADS,
        "num_key_value_heads": TEXT_KV_HEADS,
        "max_position_embeddings": 4096,
        "max_window_layers": 2,
        # transformers 5.x keeps mrope_section in ``rope_parameters``; 4.x called it ``rope_scaling``.
        "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": MROPE_SECTION},
        "bos_token_id": pad_id,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "tie_word_embeddings": False,
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": TEXT_HIDDEN_SIZE,
        "fullatt_block_indexes": [1],
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 56,
    }
    config = Qwen2_5_VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=_token_id(tokenizer, "<|image_pad|>"),
        video_token_id=_token_id(tokenizer, "<|video_pad|>"),
        vision_start_token_id=_token_id(tokenizer, "<|vision_start|>"),
        vision_end_token_id=_token_id(tokenizer, "<|vision_end|>"),
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        tie_word_embeddings=False,
    )
    config.architectures = ["Qwen2_5_VLForConditionalGeneration"]
    return config


def tiny_generation_config(tokenizer: "PreTrainedTokenizerBase") -> "GenerationConfig":
    """Stop on ``<|im_end|>`` or ``<|endoftext|>`` and pad with ``<|endoftext|>``, as Qwen2.5-VL does."""
    from transformers import GenerationConfig

    eos_id = _token_id(tokenizer, "<|im_end|>")
    pad_id = _token_id(tokenizer, "<|endoftext|>")
    return GenerationConfig(
        bos_token_id=pad_id, eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, do_sample=False
    )


def build_tiny_model(
    tokenizer: "PreTrainedTokenizerBase", *, seed: int = 0
) -> "Qwen2_5_VLForConditionalGeneration":
    """Random weights drawn from ``seed`` (the same seed gives the same model), sdpa attention, eval mode."""
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    config = tiny_qwen25vl_config(tokenizer)
    config._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = tiny_generation_config(tokenizer)
    return model.eval()

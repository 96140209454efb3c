"""The offline kit: tiny tokenizer, stock Qwen2.5-VL processor, tiny model, images, reward DataProto.

Everything here is real: transformers' ``Qwen2_5_VLProcessor`` and
``Qwen2_5_VLForConditionalGeneration``, verl's loaders, ``DataProto`` and reward-loop manager.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_ext.testing.images import synthetic_image, synthetic_jpeg, write_synthetic_jpeg
from verl_ext.testing.tokenizer import QWEN25VL_ADDED_TOKENS

IMAGE_TURN = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Classify the image."}]},
]


def _process(processor, messages, images):
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return processor(text=[text], images=images, return_tensors="pt")


def _image_pad_count(inputs, image_token_id) -> int:
    return int((inputs["input_ids"] == image_token_id).sum())


# --- tokenizer ------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80))
def test_tokenizer_round_trips_any_text_exactly(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert tiny_tokenizer.decode(ids) == text


def test_tokenizer_knows_domain_words_as_few_tokens(tiny_tokenizer):
    # The corpus holds the answer tags and class names, so they compress well and decode exactly.
    text = "<think> a small red bird </think><answer>Northern Cardinal</answer>"
    ids = tiny_tokenizer.encode(text, add_special_tokens=False)
    assert len(ids) < len(text) / 2
    assert tiny_tokenizer.decode(ids) == text


def test_tokenizer_has_every_qwen25vl_added_token_as_one_id(tiny_tokenizer):
    for token, _special in QWEN25VL_ADDED_TOKENS:
        ids = tiny_tokenizer.encode(token, add_special_tokens=False)
        assert tiny_tokenizer.convert_ids_to_tokens(ids) == [token]
    assert tiny_tokenizer.eos_token == "<|im_end|>"
    assert tiny_tokenizer.pad_token == "<|endoftext|>"


def test_special_tokens_vanish_when_skipped_on_decode(tiny_tokenizer):
    ids = tiny_tokenizer.encode("<answer>rose</answer><|im_end|>", add_special_tokens=False)
    assert tiny_tokenizer.decode(ids, skip_special_tokens=True) == "<answer>rose</answer>"


def test_chat_template_emits_vision_block_per_image_and_generation_prompt(tiny_tokenizer):
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "Which?"}]},
    ]
    text = tiny_tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text.count("<|vision_start|><|image_pad|><|vision_end|>") == 2
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("Which?<|im_end|>\n<|im_start|>assistant\n")


def test_chat_template_accepts_plain_string_content(tiny_tokenizer):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a flower."},
        {"role": "assistant", "content": "<answer>tulip</answer>"},
    ]
    text = tiny_tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nName a flower.<|im_end|>\n"
        "<|im_start|>assistant\n<answer>tulip</answer><|im_end|>\n"
    )


# --- processor ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 48), (200, 150), (30, 300)])
def test_processor_expands_each_image_to_its_grid_of_pad_tokens(tiny_processor, offline_kit, size):
    inputs = _process(tiny_processor, IMAGE_TURN, [synthetic_image(1, size)])
    (grid,) = inputs["image_grid_thw"].tolist()
    merge = tiny_processor.image_processor.merge_size
    t, h, w = grid
    assert inputs["pixel_values"].shape[0] == t * h * w
    assert _image_pad_count(inputs, offline_kit.image_token_id) == t * h * w // merge**2


def test_processor_keeps_images_within_the_small_pixel_bounds(tiny_processor):
    inputs = _process(tiny_processor, IMAGE_TURN, [synthetic_image(2, (640, 480))])
    t, h, w = inputs["image_grid_thw"][0].tolist()
    assert h * w * 14 * 14 <= tiny_processor.image_processor.size["longest_edge"]


def test_processor_handles_two_images_in_one_prompt(tiny_processor, offline_kit):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "?"}]}]
    inputs = _process(tiny_processor, messages, [synthetic_image(3, (64, 64)), synthetic_image(4, (112, 56))])
    grids = inputs["image_grid_thw"]
    assert grids.shape == (2, 3)
    assert _image_pad_count(inputs, offline_kit.image_token_id) == int(grids.prod(dim=1).sum()) // 4


def test_auto_processor_loads_a_processor_not_a_tokenizer(offline_kit):
    from transformers import AutoProcessor, PreTrainedTokenizerBase, Qwen2_5_VLProcessor

    processor = AutoProcessor.from_pretrained(offline_kit.path)
    assert isinstance(processor, Qwen2_5_VLProcessor)
    assert not isinstance(processor, PreTrainedTokenizerBase)


def test_auto_processor_round_trip_gives_the_same_outputs(offline_kit):
    from transformers import AutoProcessor

    from verl_ext.testing.processor import build_tiny_processor
    from verl_ext.testing.tokenizer import build_tiny_tokenizer

    settings_used = offline_kit.info["settings"]
    in_memory = build_tiny_processor(
        build_tiny_tokenizer(settings_used["vocab_size"]),
        min_pixels=settings_used["min_pixels"],
        max_pixels=settings_used["max_pixels"],
    )
    reloaded = AutoProcessor.from_pretrained(offline_kit.path)
    image = synthetic_image(5, (90, 70))
    expected = _process(in_memory, IMAGE_TURN, [image])
    actual = _process(reloaded, IMAGE_TURN, [image])
    assert sorted(actual.keys()) == sorted(expected.keys())
    for key in expected:
        assert actual[key].equal(expected[key]), key


def test_verl_loaders_accept_the_kit_folder(offline_kit):
    from transformers import Qwen2_5_VLProcessor
    from verl.utils import hf_processor, hf_tokenizer

    tokenizer = hf_tokenizer(str(offline_kit.path))
    processor = hf_processor(str(offline_kit.path))
    assert tokenizer.pad_token_id == offline_kit.tokenizer.pad_token_id
    assert isinstance(processor, Qwen2_5_VLProcessor)  # None would mean "text-only model" to verl
    assert processor.config.image_token_id == offline_kit.image_token_id


# --- model ----------------------------------------------------------------------------------


def test_tiny_model_config_matches_the_tokenizer(offline_kit):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(offline_kit.path)
    tokenizer = offline_kit.tokenizer
    assert config.text_config.vocab_size == len(tokenizer)
    assert config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    assert config.text_config.eos_token_id == tokenizer.eos_token_id


def test_tiny_model_forward_and_generate_with_an_image(offline_kit, tiny_processor):
    import torch

    model = offline_kit.load_model()
    assert model.config._attn_implementation == "sdpa"
    inputs = _process(tiny_processor, IMAGE_TURN, [synthetic_image(6, (64, 48))])
    prompt_len = inputs["input_ids"].shape[1]
    with torch.no_grad():
        logits = model(**inputs).logits
        generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert logits.shape == (1, prompt_len, len(offline_kit.tokenizer))
    assert torch.isfinite(logits).all()
    assert generated.shape[0] == 1 and prompt_len < generated.shape[1] <= prompt_len + 4
    assert generated[0, :prompt_len].equal(inputs["input_ids"][0])


def test_tiny_model_trains_one_step_on_text(offline_kit, tiny_tokenizer):
    import torch

    model = offline_kit.load_model().train()
    ids = torch.tensor([tiny_tokenizer.encode("<answer>Blue Jay</answer>")])
    loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert model.lm_head.weight.grad is not None


# --- kit folder and CLI ---------------------------------------------------------------------


def test_ensure_offline_kit_reuses_a_cached_kit(offline_kit):
    from verl_ext.testing.kit import MARKER_FILE, ensure_offline_kit

    marker = offline_kit.path / MARKER_FILE
    before = marker.stat().st_mtime_ns
    again = ensure_offline_kit(offline_kit.path.parent)
    assert again.path == offline_kit.path
    assert marker.stat().st_mtime_ns == before


def test_kit_cli_rebuilds_the_same_files_and_refuses_a_used_folder(offline_kit, tmp_path, capsys):
    # Same sources and settings give byte-identical files, which is what the cache key relies on.
    from verl_ext.testing.kit import main

    out = tmp_path / "kit"
    assert main(["--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    for name in ("tokenizer.json", "model.safetensors", "config.json", "processor_config.json"):
        assert (out / name).read_bytes() == (offline_kit.path / name).read_bytes(), name
    assert main(["--out", str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err


def test_kit_settings_change_the_vocabulary_and_reject_bad_values(tmp_path):
    from transformers import AutoTokenizer

    from verl_ext.testing.kit import KitSettings, build_offline_kit

    kit = build_offline_kit(tmp_path / "kit", KitSettings(vocab_size=400))
    assert len(AutoTokenizer.from_pretrained(kit.path)) == 400
    with pytest.raises(ValueError, match="min_pixels"):
        KitSettings(min_pixels=5000, max_pixels=100)


def test_opening_a_folder_that_is_not_a_kit_says_how_to_build_one(tmp_path):
    from verl_ext.testing.kit import OfflineKit, OfflineKitError

    with pytest.raises(OfflineKitError, match="python -m verl_ext.testing.kit"):
        OfflineKit(tmp_path)


def test_importing_the_testing_package_loads_no_heavy_libraries():
    code = (
        "import sys, verl_ext.testing as t; t.synthetic_jpeg; "
        "heavy = [m for m in ('torch', 'transformers', 'verl') if m in sys.modules]; "
        "sys.exit(', '.join(heavy) or None)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- images ---------------------------------------------------------------------------------


def test_synthetic_jpeg_is_deterministic_per_seed_and_has_the_asked_size(tmp_path):
    from PIL import Image

    first, again, other = synthetic_jpeg(7, (80, 60)), synthetic_jpeg(7, (80, 60)), synthetic_jpeg(8, (80, 60))
    assert first == again and first != other
    assert first[:2] == b"\xff\xd8"  # JPEG start-of-image marker
    with Image.open(io.BytesIO(first)) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (80, 60))
    path = write_synthetic_jpeg(tmp_path / "a" / "b.jpg", 7, (80, 60))
    assert path.read_bytes() == first


def test_synthetic_image_is_not_flat():
    import numpy as np

    pixels = np.asarray(synthetic_image(9, (64, 48)), dtype=np.float32)
    assert pixels.std() > 5.0


@pytest.mark.parametrize("size", [(0, 10), (10,), (3.5, 4)])
def test_synthetic_image_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size"):
        synthetic_image(0, size)


# --- reward DataProto -----------------------------------------------------------------------


def _decode_like_naive_manager(tokenizer, data) -> str:
    item = data[-1]
    responses = item.batch["responses"]
    valid = item.batch["attention_mask"][-responses.shape[-1] :].sum()
    return tokenizer.decode(responses[:valid], skip_special_tokens=True)


def test_reward_dataproto_decodes_back_to_the_response(tiny_tokenizer):
    from verl_ext.testing.dataproto import make_reward_dataproto

    response = "<think> long tail, red crest </think>\n<answer>Northern Cardinal</answer>"
    data = make_reward_dataproto(
        tiny_tokenizer,
        prompt="Classify the image.",
        response=response,
        uid="group-1",
        session_id=3,
        data_source="cub200",
        ground_truth="Northern Cardinal",
        extra_info={"split": "train", "index": 17},
        global_steps=5,
        image=synthetic_image(0),
    )
    assert len(data) == 1
    assert _decode_like_naive_manager(tiny_tokenizer, data) == response
    batch = data.batch
    assert batch["input_ids"][0].tolist() == batch["prompts"][0].tolist() + batch["responses"][0].tolist()
    assert batch["attention_mask"].sum() == batch["input_ids"].shape[1]
    assert batch["responses"][0, -1] == tiny_tokenizer.eos_token_id
    fields = data[-1].non_tensor_batch
    assert (fields["uid"], fields["session_id"], fields["global_steps"]) == ("group-1", 3, 5)
    assert fields["data_source"] == "cub200"
    assert fields["reward_model"] == {"ground_truth": "Northern Cardinal", "style": "model"}
    assert fields["extra_info"] == {"split": "train", "index": 17}
    assert fields["raw_prompt"][0]["content"][0]["type"] == "image"


def test_reward_dataproto_prompt_carries_the_vision_block(tiny_tokenizer):
    from verl_ext.testing.dataproto import make_reward_dataproto

    data = make_reward_dataproto(
        tiny_tokenizer,
        prompt="Classify the image.",
        response="x",
        uid="u",
        data_source="cub200",
        ground_truth="g",
        image=synthetic_image(0),
    )
    prompt_text = tiny_tokenizer.decode(data.batch["prompts"][0])
    assert "<|vision_start|><|image_pad|><|vision_end|>Classify the image." in prompt_text
    assert prompt_text.endswith("<|im_start|>assistant\n")


def test_group_dataprotos_share_uid_and_number_sessions(tiny_tokenizer):
    from verl_ext.testing.dataproto import make_group_dataprotos

    extra_info = {"split": "train"}
    group = make_group_dataprotos(
        tiny_tokenizer,
        prompt="Classify the image.",
        responses=["<answer>bird</answer>", "<answer>Blue Jay</answer>", "<answer>None</answer>"],
        data_source="cub200",
        ground_truth="Blue Jay",
        extra_info=extra_info,
    )
    uids = {data.non_tensor_batch["uid"][0] for data in group}
    assert len(uids) == 1 and len(next(iter(uids))) == 36  # one uuid4 string
    assert [int(data.non_tensor_batch["session_id"][0]) for data in group] == [0, 1, 2]
    group[0].non_tensor_batch["extra_info"][0]["mutated"] = True
    assert "mutated" not in group[1].non_tensor_batch["extra_info"][0] and "mutated" not in extra_info


@pytest.mark.parametrize("bad_uid", ["", None, 7])
def test_reward_dataproto_rejects_a_missing_uid(tiny_tokenizer, bad_uid):
    from verl_ext.testing.dataproto import make_reward_dataproto

    with pytest.raises(ValueError, match="uid"):
        make_reward_dataproto(
            tiny_tokenizer, prompt="p", response="r", uid=bad_uid, data_source="d", ground_truth="g"
        )


async def test_verl_naive_reward_loop_manager_scores_the_dataproto(tiny_tokenizer):
    from omegaconf import OmegaConf
    from verl.experimental.reward_loop.reward_manager import get_reward_manager_cls

    from verl_ext.testing.dataproto import make_reward_dataproto

    seen = {}

    def compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs):
        seen.update(data_source=data_source, solution_str=solution_str, extra_info=dict(extra_info))
        return 1.0 if f"<answer>{ground_truth}</answer>" in solution_str else 0.0

    manager_cls = get_reward_manager_cls("naive")
    manager = manager_cls(config=OmegaConf.create({}), tokenizer=tiny_tokenizer, compute_score=compute_score)
    data = make_reward_dataproto(
        tiny_tokenizer,
        prompt="Classify the image.",
        response="<think>hm</think><answer>Laysan Albatross</answer>",
        uid="u-1",
        data_source="cub200",
        ground_truth="Laysan Albatross",
        extra_info={"split": "val"},
    )
    result = await manager.run_single(data)
    assert result == {"reward_score": 1.0, "reward_extra_info": {"acc": 1.0}}
    assert seen["data_source"] == "cub200"
    assert seen["solution_str"] == "<think>hm</think><answer>Laysan Albatross</answer>"
    assert seen["extra_info"]["split"] == "val" and seen["extra_info"]["num_turns"] == 2


def test_ensure_offline_kit_reports_a_blocked_cache_slot(tmp_path):
    from verl_ext.testing.kit import OfflineKitError, ensure_offline_kit, kit_cache_key

    blocked = tmp_path / f"tiny-qwen25vl-{kit_cache_key()}"
    (blocked / "stray").mkdir(parents=True)
    with pytest.raises(OfflineKitError, match="remove that folder"):
        ensure_offline_kit(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [blocked.name]  # the staging folder is cleaned up

"""FineGrainedImageDataset through verl's own code path, on parquet made by a data_prep script.

Real parts only: a miniature CUB layout with real JPEGs, ``data_prep/cub.py``, verl's
``create_rl_dataset`` / ``get_dataset_class`` / ``collate_fn`` / ``process_multi_modal_info``
and the stock Qwen2.5-VL processor from the offline kit.
"""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf
from PIL import Image

from verl_ext.core.prompts import PROMPT_VARIANTS
from verl_ext.testing.layouts import build_cub

from data_prep_scripts import load_script as _load_script



@pytest.fixture(scope="module")
def cub_parquet(tmp_path_factory):
    """train.parquet and test.parquet of a miniature CUB, written by data_prep/cub.py."""
    from verl_ext.data_prep.cli import main

    root = tmp_path_factory.mktemp("cub")
    mini = build_cub(root / "raw", classes=3, train_per_class=2, test_per_class=1)
    assert main(_load_script("cub").SPEC, ["--root", str(root / "raw"), "--out", str(root / "out"), "--splits", "train", "test",
                                           "--no-progress", "--no-download"]) == 0
    return mini, root / "out" / "cub200" / "train.parquet", root / "out" / "cub200" / "test.parquet"


def _config(train: Path, val: Path, tmp_path: Path, **speciarl) -> OmegaConf:
    return OmegaConf.create(
        {
            "train_files": [str(train)],
            "val_files": [str(val)],
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": 1024,
            "filter_overlong_prompts": True,
            "filter_overlong_prompts_workers": 1,
            "return_raw_chat": True,
            "truncation": "error",
            "cache_dir": str(tmp_path / "verl_cache"),
            "custom_cls": {"path": "pkg://verl_ext.data.dataset", "name": "FineGrainedImageDataset"},
            "speciarl": speciarl,
        }
    )


def _create(files, config, offline_kit):
    from verl.trainer.ppo.utils import create_rl_dataset

    return create_rl_dataset(files, config, offline_kit.load_tokenizer(), offline_kit.load_processor())


def test_trainer_path_loads_collates_and_processes_images_like_the_rollout(cub_parquet, offline_kit, tmp_path):
    from verl.utils.dataset.rl_dataset import collate_fn, get_dataset_class

    from verl_ext.data.dataset import FineGrainedImageDataset

    mini, train, test = cub_parquet
    config = _config(train, test, tmp_path)
    dataset_cls = get_dataset_class(config)
    assert dataset_cls is FineGrainedImageDataset
    dataset = _create(config.train_files, config, offline_kit)
    assert len(dataset) == 6 and dataset.role == "train" and dataset.num_skipped_bad_images == 0

    batch = collate_fn([dataset[i] for i in range(4)])
    assert batch["dummy_tensor"].shape == (4, 1)
    assert [info["speciarl_role"] for info in batch["extra_info"]] == ["train"] * 4
    assert list(batch["reward_model"][0]) == ["style", "ground_truth"]
    assert batch["reward_model"][0]["ground_truth"] == mini.class_names[batch["extra_info"][0]["label_id"]]

    # The rollout: the selected class pulls PIL images out of raw_prompt, then the processor runs.
    messages = batch["raw_prompt"][0]
    assert [item["type"] for item in messages[0]["content"]] == ["image", "text"]
    assert messages[0]["content"][1]["text"] == PROMPT_VARIANTS["general"]
    images, videos, _ = asyncio.run(dataset_cls.process_multi_modal_info(messages, dataset.image_patch_size, config))
    assert len(images) == 1 and videos is None
    processor = offline_kit.load_processor()
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=images, return_tensors="pt")
    assert inputs["pixel_values"].shape[0] > 0 and inputs["image_grid_thw"].shape == (1, 3)

    # The image the rollout sees decodes from the source file's own bytes.
    source = mini.image_path(batch["extra_info"][0]["source_file"])
    original = np.asarray(Image.open(source).convert("RGB"))
    row = pq.read_table(train).slice(0, 1).to_pylist()[0]
    assert row["images"][0]["bytes"] == source.read_bytes()
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(row["images"][0]["bytes"])).convert("RGB")), original)


def test_validation_files_are_tagged_val(cub_parquet, offline_kit, tmp_path):
    _, train, test = cub_parquet
    config = _config(train, test, tmp_path)
    dataset = _create(config.val_files, config, offline_kit)
    assert dataset.role == "val" and dataset[0]["extra_info"]["speciarl_role"] == "val"


def test_same_files_for_train_and_val_are_refused(cub_parquet, offline_kit, tmp_path):
    from verl_ext.data.dataset import DatasetSettingsError

    _, train, _ = cub_parquet
    config = _config(train, train, tmp_path)
    with pytest.raises(DatasetSettingsError, match="same files"):
        _create(config.train_files, config, offline_kit)


def test_specific_and_custom_prompt_variants_replace_the_text(cub_parquet, offline_kit, tmp_path):
    _, train, test = cub_parquet
    dataset = _create([str(train)], _config(train, test, tmp_path, prompt_variant="specific"), offline_kit)
    content = dataset[0]["raw_prompt"][0]["content"]
    assert content[1]["text"].splitlines()[0] == "Classify the image, be specific."

    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("Name the bird species.\n", encoding="utf-8")
    dataset = _create([str(train)], _config(train, test, tmp_path, prompt_variant=f"file://{prompt_file}"), offline_kit)
    assert dataset[0]["raw_prompt"][0]["content"][1]["text"] == "Name the bird species."


def test_bad_settings_name_the_key(cub_parquet, offline_kit, tmp_path):
    from verl_ext.data.dataset import DatasetSettingsError

    _, train, test = cub_parquet
    for settings, key in (({"prompt_variant": "specfic"}, "prompt_variant"), ({"on_bad_image": "ignore"}, "on_bad_image"),
                          ({"prompt_variant": "Look at <image> now"}, "prompt_variant"), ({"colour": 1}, "colour")):
        with pytest.raises(DatasetSettingsError, match=f"data.speciarl.{key}"):
            _create([str(train)], _config(train, test, tmp_path, **settings), offline_kit)


def _with_broken_image(source: Path, target: Path, row: int) -> None:
    table = pq.read_table(source).to_pylist()
    table[row]["images"][0]["bytes"] = table[row]["images"][0]["bytes"][:200]  # truncated JPEG
    pq.write_table(pq.read_table(source).from_pylist(table, schema=pq.read_schema(source)), target)


def test_bad_image_fails_loudly_naming_row_and_file(cub_parquet, offline_kit, tmp_path):
    from verl_ext.data.dataset import BadImageRowError

    _, train, test = cub_parquet
    broken = tmp_path / "broken.parquet"
    _with_broken_image(train, broken, row=2)
    source_file = pq.read_table(train).to_pylist()[2]["extra_info"]["source_file"]
    with pytest.raises(BadImageRowError, match=rf"row 2 .*{source_file}"):
        _create([str(broken)], _config(broken, test, tmp_path), offline_kit)


def test_bad_image_is_skipped_and_counted_when_asked(cub_parquet, offline_kit, tmp_path, capsys):
    _, train, test = cub_parquet
    broken = tmp_path / "broken.parquet"
    _with_broken_image(train, broken, row=2)
    dataset = _create([str(broken)], _config(broken, test, tmp_path, on_bad_image="skip"), offline_kit)
    assert len(dataset) == 5 and dataset.num_skipped_bad_images == 1
    assert dataset.skipped_bad_images[0]["row"] == 2
    assert "1 rows skipped for bad images" in capsys.readouterr().out


def test_dataset_with_only_bad_images_fails_at_start_up(cub_parquet, offline_kit, tmp_path):
    from verl_ext.data.dataset import EmptyDatasetError

    _, _, test = cub_parquet
    table = pq.read_table(test).to_pylist()
    for row in table:
        row["images"][0]["bytes"] = b"not an image"
    broken = tmp_path / "all_broken.parquet"
    pq.write_table(pq.read_table(test).from_pylist(table, schema=pq.read_schema(test)), broken)
    with pytest.raises(EmptyDatasetError, match="all 3 rows had bad images"):
        _create([str(broken)], _config(test, broken, tmp_path, on_bad_image="skip"), offline_kit)


def test_overlong_prompts_are_dropped_counted_and_an_empty_result_fails(cub_parquet, offline_kit, tmp_path):
    from verl_ext.data.dataset import EmptyDatasetError

    _, train, test = cub_parquet
    config = _config(train, test, tmp_path)
    config.max_prompt_length = 8
    with pytest.raises(EmptyDatasetError, match="6 rows were longer than data.max_prompt_length=8"):
        _create(config.train_files, config, offline_kit)

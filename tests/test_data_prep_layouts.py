"""Each data_prep script on a miniature copy of its official layout: rows, labels, splits, bytes."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from verl_ext.core.prompts import build_prompt_messages
from verl_ext.data_prep.cli import main
from verl_ext.data_prep.writer import ROW_GROUP_ROWS
from verl_ext.testing import layouts

from data_prep_scripts import load_script


DATASETS = {
    # script: (builder, data_source)
    "cub": (layouts.build_cub, "cub200"),
    "flowers102": (layouts.build_flowers102, "flowers102"),
    "oxford_pets": (layouts.build_oxford_pets, "oxford_pets"),
    "food101": (layouts.build_food101, "food101"),
    "fgvc_aircraft": (layouts.build_fgvc_aircraft, "fgvc_aircraft"),
    "stanford_cars": (layouts.build_stanford_cars, "stanford_cars"),
}


@pytest.mark.parametrize("script", sorted(DATASETS))
def test_every_split_has_the_official_rows_labels_and_original_bytes(script, tmp_path):
    builder, data_source = DATASETS[script]
    mini = builder(tmp_path / "raw")
    assert main(load_script(script).SPEC, ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), "--no-progress",
                                           "--splits", *mini.splits]) == 0
    for split, expected in mini.splits.items():
        rows = pq.read_table(tmp_path / "out" / data_source / f"{split}.parquet").to_pylist()
        assert [(r["extra_info"]["source_file"], r["extra_info"]["label_id"]) for r in rows] == sorted(expected)
        for position, row in enumerate(rows):
            info = row["extra_info"]
            assert row["data_source"] == data_source
            assert row["prompt"] == build_prompt_messages("general")
            assert row["reward_model"]["ground_truth"] == info["class_name"] == mini.class_names[info["label_id"]]
            assert (info["split"], info["index"], info["split_definition"]) == (split, position, "official")
            assert row["images"][0]["bytes"] == mini.image_path(info["source_file"]).read_bytes()
            assert row["images"][0]["path"] == info["source_file"]


def test_cub_class_names_drop_the_prefix_and_underscores(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw")
    assert load_script("cub").read_layout(mini.folder).class_names[0] == "Black footed Albatross"


def test_aircraft_variant_names_keep_slashes_and_spaces(tmp_path):
    mini = layouts.build_fgvc_aircraft(tmp_path / "raw")
    assert load_script("fgvc_aircraft").read_layout(mini.folder).class_names == ["707-320", "F/A-18", "Falcon 2000"]


def test_flowers_names_come_from_the_shipped_table(tmp_path):
    from verl_ext.data_prep.layout import packaged_class_names

    table = packaged_class_names("flowers102")
    assert len(table) == 102 and table[0] == "pink primrose" and table[-1] == "blackberry lily"
    mini = layouts.build_flowers102(tmp_path / "raw")
    assert load_script("flowers102").read_layout(mini.folder).class_names == table[:3]


def test_row_groups_are_small_and_the_summary_is_saved(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw", classes=2, train_per_class=ROW_GROUP_ROWS + 3, test_per_class=1)
    assert main(load_script("cub").SPEC, ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                          "--splits", "train", "--no-progress"]) == 0
    output = tmp_path / "out" / "cub200" / "train.parquet"
    metadata = pq.ParquetFile(output).metadata
    assert metadata.num_rows == 2 * (ROW_GROUP_ROWS + 3)
    assert max(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) <= ROW_GROUP_ROWS
    summary = json.loads((tmp_path / "out" / "cub200" / "train.summary.json").read_text())
    assert summary["rows"] == metadata.num_rows and summary["classes"] == 2
    assert summary["split_definition"] == "official" and summary["skipped_count"] == 0
    assert summary["source_bytes"] == sum(mini.image_path(rel).stat().st_size for rel, _ in mini.splits["train"])
    assert not (tmp_path / "out" / "cub200" / "test.parquet").exists()


def test_max_pixels_downscales_only_larger_images(tmp_path):
    from PIL import Image

    mini = layouts.build_cub(tmp_path / "raw", classes=2, train_per_class=1, test_per_class=1)
    assert main(load_script("cub").SPEC, ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                          "--max-pixels", "600", "--splits", "train", "--no-progress"]) == 0
    rows = pq.read_table(tmp_path / "out" / "cub200" / "train.parquet").to_pylist()
    import io

    for row in rows:
        image = Image.open(io.BytesIO(row["images"][0]["bytes"]))
        assert image.width * image.height <= 600 and image.format == "JPEG"
        assert abs(image.width / image.height - 40 / 30) < 0.1
    assert json.loads((tmp_path / "out" / "cub200" / "train.summary.json").read_text())["downscaled"] == 2
    assert main(load_script("cub").SPEC, ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "big"),
                                          "--max-pixels", "5000", "--splits", "train", "--no-progress"]) == 0
    rows = pq.read_table(tmp_path / "big" / "cub200" / "train.parquet").to_pylist()
    assert all(r["images"][0]["bytes"] == mini.image_path(r["extra_info"]["source_file"]).read_bytes() for r in rows)

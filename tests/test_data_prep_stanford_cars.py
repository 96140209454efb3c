"""Stanford Cars from what users can download today: the Hugging Face parquet snapshot and the Kaggle mirrors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_ext.data_prep.cli import build_parser, main, run
from verl_ext.data_prep.errors import DataPrepError, LayoutError
from verl_ext.data_prep.hf_parquet import HubSnapshot
from verl_ext.testing import layouts
from verl_ext.testing.hf_snapshot import hf_schema

from data_prep_scripts import load_spec

QUIET = ["--no-progress", "--no-download"]


def convert(root: Path, out: Path, *extra: str) -> dict[str, list[dict]]:
    spec = load_spec("stanford_cars")
    run(spec, build_parser(spec).parse_args(["--root", str(root), "--out", str(out), "--splits", "train", "test",
                                             *QUIET, *extra]))
    written = {path.stem: path for path in (out / "stanford_cars").glob("*.parquet")}
    return {split: pq.read_table(path).to_pylist() for split, path in written.items()}


def without_stage(rows: dict[str, list[dict]]) -> dict[str, list[tuple]]:
    return {split: [(r["extra_info"]["source_file"], r["extra_info"]["index"], r["extra_info"]["label_id"],
                     r["reward_model"]["ground_truth"], r["images"][0]["bytes"]) for r in table] for split, table in rows.items()}


def test_snapshot_gives_the_same_rows_as_the_original_layout(tmp_path):
    """Same images, same order and index, the official names; the corruption splits are never read."""
    layouts.build_stanford_cars(tmp_path / "devkit", train_per_class=3, test_per_class=2)
    mini = layouts.build_stanford_cars_hf(tmp_path / "hf", train_per_class=3, test_per_class=2)
    assert sorted(p.name for p in (tmp_path / "hf" / "data").iterdir())[:2] == [
        "contrast-00000-of-00001.parquet", "gaussian_noise-00000-of-00001.parquet"]
    from_hf = convert(tmp_path / "hf", tmp_path / "out_hf")
    assert without_stage(from_hf) == without_stage(convert(tmp_path / "devkit", tmp_path / "out_devkit"))
    assert {r["reward_model"]["ground_truth"] for r in from_hf["test"]} == set(mini.class_names)
    assert from_hf["test"][0]["reward_model"]["ground_truth"] == "AM General Hummer SUV 2000"


def test_snapshot_rows_stored_by_class_are_decoded_once_per_row_group(tmp_path, monkeypatch):
    layouts.build_stanford_cars_hf(tmp_path / "hf", train_per_class=4, test_per_class=1)
    reads: list[tuple[str, int]] = []
    original = pq.ParquetFile.read_row_group

    def counting(self, index, columns=None, **kwargs):
        if columns == ["image.bytes"]:
            reads.append((str(self.metadata), index))
        return original(self, index, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counting)
    rows = convert(tmp_path / "hf", tmp_path / "out", "--splits", "train")
    groups = pq.ParquetFile(tmp_path / "hf" / "data" / "train-00000-of-00001.parquet").metadata.num_row_groups
    assert len(rows["train"]) == 12 and len(reads) == groups  # stored by class, written by name: one pass, spooled
    assert [r["extra_info"]["source_file"] for r in rows["train"]] == [f"cars_train/{i:05d}.jpg" for i in range(1, 13)]


def test_class_names_come_from_the_card_when_the_schema_has_none(tmp_path):
    mini = layouts.build_stanford_cars_hf(tmp_path / "hf", metadata=False)
    assert pq.read_schema(tmp_path / "hf" / "data" / "test-00000-of-00002.parquet").metadata is None
    spec = load_spec("stanford_cars")
    layout = spec.read_layout(tmp_path / "hf")
    assert layout.class_names == mini.class_names and "dataset card README.md" in layout.source_description


def test_snapshot_without_any_class_names_is_refused(tmp_path):
    layouts.build_stanford_cars_hf(tmp_path / "hf", metadata=False, card=False)
    with pytest.raises(LayoutError, match=r"no class names for 'label'.*README\.md"):
        convert(tmp_path / "hf", tmp_path / "out")


def test_snapshot_schema_is_the_one_datasets_writes(tmp_path):
    layouts.build_stanford_cars_hf(tmp_path / "hf")
    schema = pq.read_schema(tmp_path / "hf" / "data" / "train-00000-of-00001.parquet")
    assert str(schema.field("image").type) == "struct<bytes: binary, path: string>" and str(schema.field("label").type) == "int64"
    names = json.loads(schema.metadata[b"huggingface"])["info"]["features"]["label"]["names"]
    assert names == list(layouts.CARS_CLASSES[:3]) and schema.equals(hf_schema(names), check_metadata=True)


def test_incomplete_download_is_named(tmp_path):
    layouts.build_stanford_cars_hf(tmp_path / "hf")
    (tmp_path / "hf" / "data" / "test-00001-of-00002.parquet").unlink()
    with pytest.raises(LayoutError, match=r"split 'test' is incomplete, missing \['test-00001-of-00002\.parquet'\]"):
        convert(tmp_path / "hf", tmp_path / "out")


def test_label_outside_the_class_names_names_file_and_row(tmp_path):
    mini = layouts.build_stanford_cars_hf(tmp_path / "hf")
    path = tmp_path / "hf" / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(path)
    labels = table.column("label").to_pylist()
    labels[4] = 196
    pq.write_table(table.set_column(1, "label", [labels]).replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(LayoutError, match=rf"train-00000-of-00001\.parquet row 4: label 196 is not one of the "
                                          rf"{len(mini.class_names)} classes"):
        convert(tmp_path / "hf", tmp_path / "out")


def test_coop_split_applies_to_a_snapshot_that_kept_the_file_names(tmp_path):
    mini = layouts.build_stanford_cars_hf(tmp_path / "hf", train_per_class=3, test_per_class=1)
    train = sorted(rel for rel, _ in mini.splits["train"])
    layouts.write_coop_split(tmp_path / "hf" / "split_zhou_StanfordCars.json", mini,
                             {"train": train[:-3], "val": train[-3:], "test": [rel for rel, _ in mini.splits["test"]]})
    content = json.loads((tmp_path / "hf" / "split_zhou_StanfordCars.json").read_text())
    assert content["train"][0] == ["cars_train/00001.jpg", 0, "2000 AM General Hummer SUV"]  # CoOp's year-first name
    spec = load_spec("stanford_cars")
    run(spec, build_parser(spec).parse_args(["--root", str(tmp_path / "hf"), "--out", str(tmp_path / "out"),
                                             "--splits", "val", *QUIET]))
    val = pq.read_table(tmp_path / "out" / "stanford_cars" / "val.parquet").to_pylist()
    assert [r["extra_info"]["source_file"] for r in val] == sorted(train[-3:])
    assert {r["extra_info"]["split_definition"] for r in val} == {"coop"}


def test_coop_labels_catch_a_snapshot_whose_names_are_not_the_original_files(tmp_path):
    mini = layouts.build_stanford_cars_hf(tmp_path / "hf")
    entries = {"train": [], "val": [], "test": [mini.coop.entry(rel, label) for rel, label in mini.splits["test"]]}
    entries["test"][0][1] = (entries["test"][0][1] + 1) % 3  # what a renumbered snapshot would look like
    (tmp_path / "split.json").write_text(json.dumps(entries))
    with pytest.raises(LayoutError, match=r"test\[0\] \['cars_test/00001\.jpg', 1, .*: label 1 disagrees with the official label 0"):
        convert(tmp_path / "hf", tmp_path / "out", "--split-file", str(tmp_path / "split.json"))


def test_snapshot_without_the_file_names_converts_and_refuses_a_coop_split(tmp_path):
    mini = layouts.build_stanford_cars_hf(tmp_path / "hf", keep_names=False)
    rows = convert(tmp_path / "hf", tmp_path / "out")
    assert [(r["extra_info"]["source_file"], r["extra_info"]["label_id"]) for r in rows["test"]] == sorted(mini.splits["test"])
    assert rows["test"][0]["extra_info"]["source_file"] == "data/test-00000-of-00002.parquet#000000"
    (tmp_path / "split.json").write_text(json.dumps({"train": [], "val": [], "test": [["cars_test/00001.jpg", 0, "x"]]}))
    with pytest.raises(LayoutError, match=r"split\.json cannot be applied: the parquet column image\.path of split\(s\) "
                                          r"\['train', 'test'\] does not keep the original file names \(e\.g\. None\)"):
        convert(tmp_path / "hf", tmp_path / "out2", "--split-file", str(tmp_path / "split.json"))


def test_bad_image_in_a_snapshot_is_skipped_and_reported_with_its_row(tmp_path):
    layouts.build_stanford_cars_hf(tmp_path / "hf")
    path = tmp_path / "hf" / "data" / "train-00000-of-00001.parquet"
    table = pq.read_table(path).to_pylist()
    table[1]["image"]["bytes"] = b"\xff\xd8\xff truncated"
    schema = pq.read_schema(path)
    pq.write_table(pq.read_table(path).from_pylist(table, schema=schema), path, row_group_size=2)
    rows = convert(tmp_path / "hf", tmp_path / "out", "--skip-bad", "--splits", "train")
    report = json.loads((tmp_path / "out" / "stanford_cars" / "train.skipped.json").read_text())
    assert len(rows["train"]) == 5 and report["skipped_count"] == 1
    assert report["skipped"][0]["path"].endswith("train-00000-of-00001.parquet row 1 (cars_train/00004.jpg)")


def test_torchvision_layout_mirror_is_read(tmp_path):
    """rickyyyyyyy/torchvision-stanford-cars unpacks to stanford_cars/ in torchvision's layout."""
    mini = layouts.build_stanford_cars_torchvision(tmp_path / "kaggle")
    rows = convert(tmp_path / "kaggle", tmp_path / "out")
    assert [(r["extra_info"]["source_file"], r["extra_info"]["label_id"]) for r in rows["train"]] == sorted(mini.splits["train"])


def test_the_kaggle_copy_with_mismatched_annotations_is_refused(tmp_path):
    layouts.build_stanford_cars_kaggle_nested(tmp_path / "kaggle")
    with pytest.raises(LayoutError, match=r"jessicali9530/stanford-cars-dataset \(cars_train/cars_train/\): its \.mat "
                                          r"annotations are reported not to match its image files"):
        convert(tmp_path / "kaggle", tmp_path / "out")


def test_download_fetches_only_the_train_and_test_files_of_the_hub_dataset(tmp_path, monkeypatch, capsys):
    """The Hugging Face Hub cannot be reached here: a double of ``snapshot_download`` writes a miniature snapshot."""
    import huggingface_hub

    calls = []

    def snapshot_download(**kwargs):
        calls.append(kwargs)
        layouts.build_stanford_cars_hf(Path(kwargs["local_dir"]))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    assert main(load_spec("stanford_cars"), ["--no-progress"]) == 0
    assert calls == [{"repo_id": "tanganke/stanford_cars", "repo_type": "dataset",
                      "local_dir": str(tmp_path / "data" / "raw" / "stanford_cars"),
                      "allow_patterns": ["README.md", "data/train-*.parquet", "data/test-*.parquet"]}]
    assert pq.ParquetFile(tmp_path / "data" / "stanford_cars" / "test.parquet").metadata.num_rows == 3
    assert "splits not read: contrast, gaussian_noise" in capsys.readouterr().err


def test_hub_download_failure_is_a_clear_error(tmp_path, monkeypatch):
    import httpx
    import huggingface_hub

    def offline(**kwargs):
        raise httpx.ConnectError("no route to host")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DataPrepError, match="downloading the Hugging Face dataset tanganke/stanford_cars failed: no route"):
        HubSnapshot("tanganke/stanford_cars", ("README.md",))(tmp_path)

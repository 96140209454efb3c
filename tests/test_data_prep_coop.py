"""CoOp split files (``split_zhou_*.json``) through ``--split-file``; the split definition is recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.errors import LayoutError
from verl_ext.testing import layouts

from data_prep_scripts import load_spec


# script: (builder, data_source, CoOp image folder relative to the dataset folder)
COOP_DATASETS = {
    "flowers102": (layouts.build_flowers102, "flowers102", "jpg/"),
    "oxford_pets": (layouts.build_oxford_pets, "oxford_pets", "images/"),
    "food101": (layouts.build_food101, "food101", "images/"),
    "stanford_cars": (layouts.build_stanford_cars, "stanford_cars", ""),
}


def coop_file(mini, image_dir: str, path: Path) -> tuple[Path, dict[str, list[tuple[str, int]]]]:
    """A CoOp split unlike the official one: every class's first image -> test, the rest -> train/val."""
    everything = sorted({entry for rows in mini.splits.values() for entry in rows})
    expected: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    seen_class: dict[int, int] = {}
    for rel, label in everything:
        count = seen_class.get(label, 0)
        seen_class[label] = count + 1
        expected["test" if count == 0 else "train" if count % 2 else "val"].append((rel, label))
    entries = {split: [(rel[len(image_dir):], label, mini.class_names[label].lower()) for rel, label in rows]
               for split, rows in expected.items()}
    return layouts.write_coop_split(path, entries), expected


@pytest.mark.parametrize("script", sorted(COOP_DATASETS))
def test_coop_split_file_decides_membership_and_is_recorded(script, tmp_path, capsys):
    builder, data_source, image_dir = COOP_DATASETS[script]
    mini = builder(tmp_path / "raw", per_split=(2, 1, 2)) if script == "flowers102" else builder(tmp_path / "raw", test_per_class=2)
    split_file, expected = coop_file(mini, image_dir, tmp_path / "split_zhou_Test.json")
    assert main(load_spec(script), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                    "--split-file", str(split_file), "--no-progress"]) == 0
    for split, rows in expected.items():
        table = pq.read_table(tmp_path / "out" / data_source / f"{split}.parquet").to_pylist()
        assert [(r["extra_info"]["source_file"], r["extra_info"]["label_id"]) for r in table] == sorted(rows)
        assert {r["extra_info"]["split_definition"] for r in table} == {"coop"}
        # Names come from the official annotations, not from the CoOp file's lower-cased copy.
        assert [r["extra_info"]["class_name"] for r in table] == [mini.class_names[label] for _, label in sorted(rows)]
        summary = json.loads((tmp_path / "out" / data_source / f"{split}.summary.json").read_text())
        assert summary["split_definition"] == "coop"
        assert summary["split_definition_detail"]["split_file_sha256"] == hashlib.sha256(split_file.read_bytes()).hexdigest()
    captured = capsys.readouterr()
    assert "coop split definition" in captured.err and " coop " in captured.out


def _flowers_with_coop(tmp_path):
    mini = layouts.build_flowers102(tmp_path / "raw")
    split_file, _ = coop_file(mini, "jpg/", tmp_path / "split.json")
    return mini, split_file, json.loads(split_file.read_text())


def _run_flowers(tmp_path, content) -> None:
    from verl_ext.data_prep.cli import build_parser, run

    path = tmp_path / "edited.json"
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    spec = load_spec("flowers102")
    run(spec, build_parser(spec).parse_args(["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                             "--split-file", str(path), "--no-progress"]))


def test_coop_label_that_disagrees_with_the_official_label_is_an_error(tmp_path):
    _, _, content = _flowers_with_coop(tmp_path)
    content["test"][0][1] = (content["test"][0][1] + 1) % 3
    with pytest.raises(LayoutError, match=r"test\[0\]: label .* disagrees with the official label"):
        _run_flowers(tmp_path, content)


def test_coop_image_missing_from_the_official_annotations_is_an_id_mismatch(tmp_path):
    _, _, content = _flowers_with_coop(tmp_path)
    content["val"].append(["image_09999.jpg", 0, "pink primrose"])
    with pytest.raises(LayoutError, match=r"jpg/image_09999\.jpg is not in the official annotations \(id mismatch\)"):
        _run_flowers(tmp_path, content)


def test_coop_image_listed_twice_is_a_duplicate(tmp_path):
    _, _, content = _flowers_with_coop(tmp_path)
    content["train"].append(content["test"][0])
    with pytest.raises(LayoutError, match="duplicate id jpg/image_"):
        _run_flowers(tmp_path, content)


@pytest.mark.parametrize("content, message", [("{not json", "not valid JSON"), ({"train": []}, "expected a JSON object with keys")])
def test_malformed_coop_file_is_named(tmp_path, content, message):
    _flowers_with_coop(tmp_path)
    with pytest.raises(LayoutError, match=message):
        _run_flowers(tmp_path, content)


@pytest.mark.parametrize("script", ["cub", "fgvc_aircraft"])
def test_datasets_evaluated_on_official_splits_do_not_take_a_split_file(script, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(load_spec(script), ["--root", str(tmp_path), "--out", str(tmp_path), "--split-file", "x.json"])
    assert "unrecognized arguments: --split-file" in capsys.readouterr().err

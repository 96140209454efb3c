"""Bad input to the data_prep scripts: clear errors naming the file, or a counted, reported skip."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import scipy.io

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.errors import BadImageError, DataPrepError, LayoutError
from verl_ext.testing import layouts

from data_prep_scripts import load_script



def run(script: str, root: Path, out: Path, *extra: str) -> None:
    from verl_ext.data_prep.cli import build_parser, run as run_cli

    spec = load_script(script).SPEC
    run_cli(spec, build_parser(spec).parse_args(["--root", str(root), "--out", str(out), "--no-progress", "--no-download", *extra]))


def test_missing_annotation_file_is_named(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw")
    (mini.folder / "train_test_split.txt").unlink()
    with pytest.raises(LayoutError, match=r"missing .*train_test_split\.txt"):
        run("cub", tmp_path / "raw", tmp_path / "out")


def test_missing_layout_says_what_to_do(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(LayoutError, match=r"CUB_200_2011\.tgz.*Drop --no-download to fetch them"):
        run("cub", tmp_path / "empty", tmp_path / "out")


def test_id_mismatch_between_tables_is_reported(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw")
    lines = (mini.folder / "image_class_labels.txt").read_text().splitlines()
    (mini.folder / "image_class_labels.txt").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(LayoutError, match=r"id mismatch: 1 ids only in images\.txt \(e\.g\. \['9'\]\)"):
        run("cub", tmp_path / "raw", tmp_path / "out")


def test_duplicate_id_names_file_and_line(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw")
    with open(mini.folder / "images.txt", "a") as handle:
        handle.write("3 001.Black_footed_Albatross/again.jpg\n")
    with pytest.raises(LayoutError, match=r"images\.txt:10: duplicate id '3'"):
        run("cub", tmp_path / "raw", tmp_path / "out")


def test_image_listed_in_two_splits_is_a_duplicate(tmp_path):
    mini = layouts.build_fgvc_aircraft(tmp_path / "raw")
    test_file = mini.folder / "data" / "images_variant_test.txt"
    first = test_file.read_text().splitlines()[0]
    with open(test_file, "a") as handle:
        handle.write(first + "\n")
    with pytest.raises(LayoutError, match="duplicate image ids"):
        run("fgvc_aircraft", tmp_path / "raw", tmp_path / "out")


def test_empty_class_is_refused(tmp_path):
    mini = layouts.build_food101(tmp_path / "raw")
    test_file = mini.folder / "meta" / "test.txt"
    test_file.write_text("".join(f"{e}\n" for e in test_file.read_text().split() if not e.startswith("baklava/")))
    with pytest.raises(LayoutError, match=r"split 'test': 1 classes have no images \(e\.g\. \['baklava'\]\)"):
        run("food101", tmp_path / "raw", tmp_path / "out", "--splits", "test")


def test_unknown_class_in_annotations_is_refused(tmp_path):
    mini = layouts.build_fgvc_aircraft(tmp_path / "raw")
    with open(mini.folder / "data" / "images_variant_val.txt", "a") as handle:
        handle.write("0099999 Concorde\n")
    with pytest.raises(LayoutError, match=r"images_variant_val\.txt:4: variant 'Concorde'"):
        run("fgvc_aircraft", tmp_path / "raw", tmp_path / "out")


def test_mat_file_without_the_variable_is_named(tmp_path):
    mini = layouts.build_stanford_cars(tmp_path / "raw")
    scipy.io.savemat(mini.folder / "devkit" / "cars_meta.mat", {"names": ["x"]})
    with pytest.raises(LayoutError, match=r"cars_meta\.mat: missing MATLAB variable\(s\) \['class_names'\]"):
        run("stanford_cars", tmp_path / "raw", tmp_path / "out")


def test_pets_class_id_with_two_breeds_is_an_id_mismatch(tmp_path):
    mini = layouts.build_oxford_pets(tmp_path / "raw")
    with open(mini.folder / "annotations" / "test.txt", "a") as handle:
        handle.write("beagle_1 1 2 4\n")
    with pytest.raises(LayoutError, match="class id 1 is 'beagle' here but 'abyssinian' earlier"):
        run("oxford_pets", tmp_path / "raw", tmp_path / "out")


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_bad_image_fails_naming_the_file_and_leaves_no_output(tmp_path, damage):
    mini = layouts.build_cub(tmp_path / "raw")
    bad = mini.image_path(mini.splits["test"][1][0])
    if damage == "truncate":
        bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])
    elif damage == "garbage":
        bad.write_bytes(b"<html>not found</html>")
    else:
        bad.unlink()
    with pytest.raises(BadImageError, match=rf"bad image {bad}.*--skip-bad"):
        run("cub", tmp_path / "raw", tmp_path / "out", "--splits", "test")
    assert list((tmp_path / "out" / "cub200").glob("test.parquet*")) == []


def test_skip_bad_skips_counts_and_reports(tmp_path, capsys):
    mini = layouts.build_cub(tmp_path / "raw")
    bad_rel = mini.splits["train"][3][0]
    mini.image_path(bad_rel).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    run("cub", tmp_path / "raw", tmp_path / "out", "--splits", "train", "--skip-bad")
    rows = pq.read_table(tmp_path / "out" / "cub200" / "train.parquet").to_pylist()
    assert len(rows) == len(mini.splits["train"]) - 1
    assert bad_rel not in [row["extra_info"]["source_file"] for row in rows]
    report = json.loads((tmp_path / "out" / "cub200" / "train.skipped.json").read_text())
    assert report["skipped_count"] == 1 and report["skipped"][0]["source_file"] == bad_rel
    assert "cannot decode" in report["skipped"][0]["reason"]
    assert json.loads((tmp_path / "out" / "cub200" / "train.summary.json").read_text())["skipped_count"] == 1
    table = capsys.readouterr().out
    assert "cub200/train.parquet" in table and " 1 " in table.splitlines()[2]


def test_all_images_bad_is_an_error_even_with_skip_bad(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw", classes=1, train_per_class=1, test_per_class=1)
    for rel, _ in mini.splits["test"]:
        mini.image_path(rel).write_bytes(b"")
    with pytest.raises(DataPrepError, match="every image of split 'test' was skipped"):
        run("cub", tmp_path / "raw", tmp_path / "out", "--splits", "test", "--skip-bad")


def test_unknown_split_and_bad_numbers_are_refused(tmp_path):
    layouts.build_cub(tmp_path / "raw")
    with pytest.raises(DataPrepError, match=r"unknown split\(s\) \['val'\]"):
        run("cub", tmp_path / "raw", tmp_path / "out", "--splits", "val")
    with pytest.raises(DataPrepError, match="larger than the split"):
        run("cub", tmp_path / "raw", tmp_path / "out", "--subset", "100")
    with pytest.raises(DataPrepError, match="--max-pixels must be positive"):
        run("cub", tmp_path / "raw", tmp_path / "out", "--max-pixels", "0")


def test_main_returns_exit_status_2_with_the_message(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(load_script("food101").SPEC, ["--root", str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--no-download"]) == 2
    assert "error: Food-101 not found under" in capsys.readouterr().err

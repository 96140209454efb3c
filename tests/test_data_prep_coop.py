"""CoOp split files (``split_zhou_*.json``) in the format CoOp writes: membership, numbering, recording, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_ext.data_prep.cli import build_parser, main, run
from verl_ext.data_prep.errors import LayoutError
from verl_ext.testing import layouts

from data_prep_scripts import load_spec

# script: (builder, data_source)
COOP_DATASETS = {
    "flowers102": (layouts.build_flowers102, "flowers102"),
    "oxford_pets": (layouts.build_oxford_pets, "oxford_pets"),
    "food101": (layouts.build_food101, "food101"),
    "stanford_cars": (layouts.build_stanford_cars, "stanford_cars"),
}
ALL = ["--splits", "train", "val", "test", "--no-progress", "--no-download"]


def coop_assignment(mini) -> dict[str, list[tuple[str, int]]]:
    """A CoOp split unlike the official one: every class's first image -> test, the rest -> train/val."""
    everything = sorted({entry for rows in mini.splits.values() for entry in rows})
    expected: dict[str, list[tuple[str, int]]] = {"train": [], "val": [], "test": []}
    seen_class: dict[int, int] = {}
    for rel, label in everything:
        count = seen_class.get(label, 0)
        seen_class[label] = count + 1
        expected["test" if count == 0 else "train" if count % 2 else "val"].append((rel, label))
    return expected


def write_split(mini, path: Path) -> tuple[Path, dict[str, list[tuple[str, int]]]]:
    expected = coop_assignment(mini)
    return layouts.write_coop_split(path, mini, {s: [rel for rel, _ in rows] for s, rows in expected.items()}), expected


def rows_of(out: Path, data_source: str, split: str) -> list[dict]:
    return pq.read_table(out / data_source / f"{split}.parquet").to_pylist()


@pytest.mark.parametrize("script", sorted(COOP_DATASETS))
def test_coop_split_file_decides_membership_and_is_recorded(script, tmp_path, capsys):
    builder, data_source = COOP_DATASETS[script]
    mini = builder(tmp_path / "raw", per_split=(2, 1, 2)) if script == "flowers102" else builder(tmp_path / "raw", test_per_class=2)
    split_file, expected = write_split(mini, tmp_path / "split_zhou_Test.json")
    assert main(load_spec(script), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                    "--split-file", str(split_file), *ALL]) == 0
    for split, rows in expected.items():
        table = rows_of(tmp_path / "out", data_source, split)
        assert [(r["extra_info"]["source_file"], r["extra_info"]["label_id"]) for r in table] == sorted(rows)
        assert {r["extra_info"]["split_definition"] for r in table} == {"coop"}
        # Names come from the official annotations, not from the CoOp file's own spelling.
        assert [r["extra_info"]["class_name"] for r in table] == [mini.class_names[label] for _, label in sorted(rows)]
        summary = json.loads((tmp_path / "out" / data_source / f"{split}.summary.json").read_text())
        assert summary["split_definition"] == "coop"
        assert summary["split_definition_detail"]["split_file_sha256"] == hashlib.sha256(split_file.read_bytes()).hexdigest()
    captured = capsys.readouterr()
    assert "coop split definition" in captured.err and " coop " in captured.out


def test_fixture_is_written_the_way_coop_save_split_writes(tmp_path):
    """Dassl's write_json (what save_split calls): indent=4, separators (",", ": "), lists of 3 fields."""
    mini = layouts.build_oxford_pets(tmp_path / "raw")
    path, _ = write_split(mini, tmp_path / "split_zhou_OxfordPets.json")
    content = json.loads(path.read_text())
    assert path.read_text() == json.dumps(content, indent=4, separators=(",", ": "))
    assert content["test"][0] == ["Abyssinian_1.jpg", 0, "abyssinian"]  # CoOp: relative to images/, breed.lower()


def _food_with_real_entries(tmp_path):
    mini = layouts.build_food101(tmp_path / "raw", classes=18, train_per_class=2, test_per_class=1)
    # Real entries of split_zhou_Food101.json, and CoOp's numbering of them (sorted folder names).
    assignment = {split: [f"images/{name}/{ids[k]}.jpg" for name, ids in layouts.FOOD_REAL_IDS.items()]
                  for k, split in enumerate(("train", "val", "test"))}
    for rel, label in mini.splits["test"]:  # every class needs a test image
        if rel not in assignment["test"] and rel not in assignment["train"] and rel not in assignment["val"]:
            assignment["test"].append(rel)
    path = layouts.write_coop_split(tmp_path / "raw" / "food-101" / "split_zhou_Food101.json", mini, assignment)
    return mini, path, assignment


def test_food101_real_coop_file_with_its_own_numbering_is_accepted(tmp_path):
    mini, path, assignment = _food_with_real_entries(tmp_path)
    content = json.loads(path.read_text())
    assert ["cheese_plate/1355674.jpg", 16, "cheese_plate"] in content["test"]  # as in the real file
    assert ["cheesecake/2005548.jpg", 17, "cheesecake"] in content["test"]
    assert ["apple_pie/1214326.jpg", 0, "apple_pie"] in content["test"]
    # The file sits where CoOp keeps it (the dataset folder): it is used without --split-file.
    assert main(load_spec("food101"), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                       "--no-progress", "--no-download"]) == 0  # default output: the test split
    test = {r["extra_info"]["source_file"]: r for r in rows_of(tmp_path / "out", "food101", "test")}
    assert sorted(test) == sorted(assignment["test"])
    # Same image -> class as CoOp; label_id stays the official (classes.txt) numbering.
    plate, cake = test["images/cheese_plate/1355674.jpg"], test["images/cheesecake/2005548.jpg"]
    assert (plate["reward_model"]["ground_truth"], plate["extra_info"]["label_id"]) == ("cheese plate", 17)
    assert (cake["reward_model"]["ground_truth"], cake["extra_info"]["label_id"]) == ("cheesecake", 16)
    assert all(r["extra_info"]["split_definition"] == "coop" for r in test.values())


def test_food101_file_numbered_like_classes_txt_is_refused_naming_file_entry_and_why(tmp_path):
    _, path, _ = _food_with_real_entries(tmp_path)
    content = json.loads(path.read_text())
    position = content["test"].index(["cheese_plate/1355674.jpg", 16, "cheese_plate"])
    content["test"][position][1] = 17  # meta/classes.txt's number for cheese_plate
    path.write_text(json.dumps(content, indent=4))
    with pytest.raises(LayoutError) as error:
        main_run("food101", tmp_path, "--split-file", str(path))
    message = str(error.value)
    assert str(path) in message and f"test[{position}]" in message and "cheese_plate/1355674.jpg" in message
    assert "label 17 disagrees with CoOp's numbering of this dataset (16" in message and "sorted image folders" in message


def test_food101_entry_whose_class_name_is_not_its_folder_is_refused(tmp_path):
    _, path, _ = _food_with_real_entries(tmp_path)
    content = json.loads(path.read_text())
    content["train"][0][2] = "cheesecake"
    path.write_text(json.dumps(content))
    with pytest.raises(LayoutError, match=r"train\[0\] .*: class name 'cheesecake' is not the image's class folder 'apple_pie'"):
        main_run("food101", tmp_path, "--split-file", str(path))


def test_official_split_flag_ignores_a_coop_file_in_place(tmp_path):
    _food_with_real_entries(tmp_path)
    assert main(load_spec("food101"), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                       "--official-split", "--splits", "test", "--no-progress", "--no-download"]) == 0
    assert {r["extra_info"]["split_definition"] for r in rows_of(tmp_path / "out", "food101", "test")} == {"official"}


def test_without_the_file_the_official_split_is_used_and_the_paper_split_named(tmp_path, capsys):
    layouts.build_flowers102(tmp_path / "raw")
    assert main(load_spec("flowers102"), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"),
                                          "--no-progress", "--no-download"]) == 0
    assert (tmp_path / "out" / "flowers102" / "test.parquet").exists()  # the default output: the test split
    assert not (tmp_path / "out" / "flowers102" / "train.parquet").exists()
    assert "CoOp test split, not the official one; put split_zhou_OxfordFlowers.json" in capsys.readouterr().err


def main_run(script: str, tmp_path: Path, *extra: str) -> None:
    spec = load_spec(script)
    run(spec, build_parser(spec).parse_args(["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "out"), *ALL, *extra]))


def _flowers_with_coop(tmp_path):
    mini = layouts.build_flowers102(tmp_path / "raw")
    split_file, _ = write_split(mini, tmp_path / "split.json")
    return mini, split_file, json.loads(split_file.read_text())


def _run_flowers(tmp_path, content) -> None:
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(content) if not isinstance(content, str) else content)
    main_run("flowers102", tmp_path, "--split-file", str(path))


def test_coop_label_that_disagrees_with_the_official_label_is_an_error(tmp_path):
    _, _, content = _flowers_with_coop(tmp_path)
    content["test"][0][1] = (content["test"][0][1] + 1) % 3
    with pytest.raises(LayoutError, match=r"edited\.json, test\[0\] \['image_\d+\.jpg', .*\]: label .* disagrees with "
                                          r"the official label .*wrong split file for this dataset\?"):
        _run_flowers(tmp_path, content)


def test_split_file_for_another_dataset_is_an_id_mismatch(tmp_path):
    _, _, content = _flowers_with_coop(tmp_path)
    content["val"].append(["cheese_plate/1355674.jpg", 16, "cheese_plate"])  # a Food-101 entry
    with pytest.raises(LayoutError, match=r"val\[\d+\] .*: image jpg/cheese_plate/1355674\.jpg is not in the official "
                                          r"annotations \(id mismatch\)"):
        _run_flowers(tmp_path, content)


def test_coop_image_listed_twice_is_a_duplicate(tmp_path):
    _, _, content = _flowers_with_coop(tmp_path)
    content["train"].append(content["test"][0])
    with pytest.raises(LayoutError, match="duplicate id jpg/image_"):
        _run_flowers(tmp_path, content)


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ({"train": []}, "expected a JSON object with keys"),
    ({"train": [["image_00001.jpg", "0", "x"]], "val": [], "test": []}, r"train\[0\] .*expected \[image_path, label, class_name\]"),
])
def test_malformed_coop_file_is_named(tmp_path, content, message):
    _flowers_with_coop(tmp_path)
    with pytest.raises(LayoutError, match=message):
        _run_flowers(tmp_path, content)


@pytest.mark.parametrize("script", ["cub", "fgvc_aircraft"])
def test_datasets_evaluated_on_official_splits_do_not_take_a_split_file(script, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(load_spec(script), ["--root", str(tmp_path), "--out", str(tmp_path), "--split-file", "x.json"])
    assert "unrecognized arguments: --split-file" in capsys.readouterr().err

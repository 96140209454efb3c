"""``--subset N --seed S``: the same ids on every run, whatever the listing or annotation order."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.subset import select_subset
from verl_ext.testing import layouts

from data_prep_scripts import load_spec



def subset_ids(root: Path, out: Path, size: int, seed: int) -> list[str]:
    assert main(load_spec("cub"), ["--root", str(root), "--out", str(out), "--splits", "train", "--subset", str(size),
                             "--seed", str(seed), "--no-progress"]) == 0
    table = pq.read_table(out / "cub200" / f"train_sub{size}_seed{seed}.parquet").to_pylist()
    return [row["extra_info"]["source_file"] for row in table]


def test_subset_is_the_same_on_every_run_and_independent_of_annotation_order(tmp_path):
    mini = layouts.build_cub(tmp_path / "raw", classes=4, train_per_class=5, test_per_class=1)
    first = subset_ids(tmp_path / "raw", tmp_path / "a", 7, 42)
    assert subset_ids(tmp_path / "raw", tmp_path / "b", 7, 42) == first
    # Shuffle the lines of every annotation table: the same images must be chosen.
    for name in ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt"):
        lines = (mini.folder / name).read_text().splitlines()
        random.Random(1).shuffle(lines)
        (mini.folder / name).write_text("\n".join(lines) + "\n")
    assert subset_ids(tmp_path / "raw", tmp_path / "c", 7, 42) == first
    assert first == sorted(first) and len(set(first)) == 7
    assert subset_ids(tmp_path / "raw", tmp_path / "d", 7, 43) != first


def test_subset_rows_keep_their_full_split_index(tmp_path):
    layouts.build_cub(tmp_path / "raw", classes=2, train_per_class=5, test_per_class=1)
    main(load_spec("cub"), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "full"), "--splits", "train", "--no-progress"])
    full = {r["extra_info"]["source_file"]: r["extra_info"]["index"]
            for r in pq.read_table(tmp_path / "full" / "cub200" / "train.parquet").to_pylist()}
    main(load_spec("cub"), ["--root", str(tmp_path / "raw"), "--out", str(tmp_path / "sub"), "--splits", "train",
                      "--subset", "4", "--no-progress"])
    rows = pq.read_table(tmp_path / "sub" / "cub200" / "train_sub4_seed42.parquet").to_pylist()
    assert all(full[r["extra_info"]["source_file"]] == r["extra_info"]["index"] for r in rows)


@settings(max_examples=50, deadline=None)
@given(keys=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=40, unique=True), data=st.data())
def test_selection_depends_only_on_the_set_of_keys_and_the_seed(keys, data):
    size = data.draw(st.integers(1, len(keys)))
    seed = data.draw(st.integers(0, 2**31))
    chosen = {keys[i] for i in select_subset(keys, keys, size, seed)}
    shuffled = data.draw(st.permutations(keys))
    assert {shuffled[i] for i in select_subset(shuffled, shuffled, size, seed)} == chosen
    assert len(chosen) == size

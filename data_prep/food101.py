"""Food-101 -> verl parquet (out-of-domain evaluation).

Official source: ETH Zurich, ``food-101.tar.gz``. Layout of ``food-101/``:
``images/<class_name>/<id>.jpg``, ``meta/classes.txt`` (101 snake_case names, one a line),
``meta/train.txt`` and ``meta/test.txt`` (``<class_name>/<id>``, no extension). Class name:
``classes.txt`` with underscores turned into spaces ("apple pie"); ``label_id`` follows
``classes.txt`` (the official order, also Hugging Face ``ethz/food101``'s).

The paper evaluates on the CoOp test split (30,300 images; train 50,500, val 20,200):
``split_zhou_Food101.json`` in ``--root`` (or ``--split-file``). CoOp builds Food-101 with its
DTD-style ``read_and_split_data`` (``KaiyangZhou/CoOp``, ``datasets/dtd.py``), which numbers the
classes by the *sorted image folder names* and names them by the folder: ``cheese_plate`` is 16
and ``cheesecake`` 17, while ``classes.txt`` lists ``cheesecake`` first. The split file is
checked against that numbering; the rows keep the official ``label_id``.
"""

from __future__ import annotations

from pathlib import Path

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.layout import DatasetLayout, ImageRecord, read_lines, require_paths, underscores_to_spaces
from verl_ext.data_prep.spec import DatasetSpec

LISTS = {"train": "meta/train.txt", "test": "meta/test.txt"}


def read_layout(folder: Path) -> DatasetLayout:
    require_paths(folder, ("images", "meta/classes.txt", *LISTS.values()), "Food-101")
    classes = read_lines(folder / "meta/classes.txt")
    label_of = {name: label for label, name in enumerate(classes)}
    splits = {}
    for split, rel in LISTS.items():
        splits[split] = []
        for number, entry in enumerate(read_lines(folder / rel), start=1):
            class_folder = entry.split("/", 1)[0]
            if "/" not in entry or class_folder not in label_of:
                raise LayoutError(f"{folder / rel}:{number}: {entry!r} is not <class from classes.txt>/<id>")
            splits[split].append(ImageRecord(f"images/{entry}.jpg", label_of[class_folder]))
    return DatasetLayout(folder, [underscores_to_spaces(name) for name in classes], splits)


SPEC = DatasetSpec(
    data_source="food101",
    title="Food-101",
    folder_names=("food-101", ""),
    marker_paths=("meta/classes.txt", "images"),
    remote_files=(
        RemoteFile(
            "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
            "food-101.tar.gz",
            "md5:85eeb15f3717b99a5da872d97d918f87",
        ),
    ),
    official_splits=("train", "test"),
    read_layout=read_layout,
    class_name_source="meta/classes.txt, '_' -> ' '",
    coop_file_name="split_zhou_Food101.json",
    coop_image_dir="images",
    coop_numbering="sorted_folders",
    paper_needs_coop=True,
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

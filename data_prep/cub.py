"""CUB-200-2011 -> verl parquet (the SpeciaRL training set and the in-domain test set).

Official source: CaltechDATA record 65de6-vp158, ``CUB_200_2011.tgz``. Layout of the
extracted ``CUB_200_2011/`` folder: ``images/NNN.Class_Name/*.jpg``; ``images.txt``
(``<image_id> <relative path>``), ``image_class_labels.txt`` (``<image_id> <class_id>``),
``train_test_split.txt`` (``<image_id> <1=train, 0=test>``), ``classes.txt``
(``<class_id> NNN.Class_Name``); ids are 1-based. Class name: the folder name without the
``NNN.`` prefix, underscores turned into spaces ("Black footed Albatross").

``python data_prep/cub.py`` with no arguments does the paper's job: the training subset
(``train``, 3,000 images, seed 42) and the validation subset the recipes read during training
(``test``, 500 images, seed 42), i.e. ``<DATA_DIR>/cub200/train_sub3000_seed42.parquet`` and
``test_sub500_seed42.parquet``, downloading the archive to ``<DATA_DIR>/raw/cub200`` first if
it is missing. The full test split (5,794 images, the in-domain evaluation): ``--splits test``.
"""

from __future__ import annotations

import re
from pathlib import Path

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.layout import (
    DatasetLayout,
    ImageRecord,
    check_same_ids,
    parse_int,
    read_columns,
    require_paths,
    underscores_to_spaces,
    unique_mapping,
)
from verl_ext.data_prep.spec import DatasetSpec, PaperOutput

FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt", "images")
SPLIT_FLAG = {"1": "train", "0": "test"}


def clean_class_name(folder_name: str) -> str:
    """``001.Black_footed_Albatross`` -> ``Black footed Albatross``."""
    return underscores_to_spaces(re.sub(r"^\d+\.", "", folder_name))


def read_layout(folder: Path) -> DatasetLayout:
    require_paths(folder, FILES, "CUB-200-2011")
    table = {name: folder / name for name in FILES}
    images = unique_mapping(read_columns(table["images.txt"], 2, max_split=1), table["images.txt"])
    labels = unique_mapping(read_columns(table["image_class_labels.txt"], 2), table["image_class_labels.txt"])
    flags = unique_mapping(read_columns(table["train_test_split.txt"], 2), table["train_test_split.txt"])
    classes = unique_mapping(read_columns(table["classes.txt"], 2, max_split=1), table["classes.txt"])
    check_same_ids(images, "images.txt", labels, "image_class_labels.txt")
    check_same_ids(images, "images.txt", flags, "train_test_split.txt")
    class_ids = sorted(parse_int(key, f"{table['classes.txt']}") for key in classes)
    if class_ids != list(range(1, len(class_ids) + 1)):
        raise LayoutError(f"{table['classes.txt']}: class ids must be 1..{len(class_ids)} without gaps")
    class_names = [clean_class_name(classes[str(class_id)]) for class_id in class_ids]
    splits: dict[str, list[ImageRecord]] = {"train": [], "test": []}
    for image_id, rel in images.items():
        class_id = parse_int(labels[image_id], f"{table['image_class_labels.txt']} (image {image_id})")
        if not 1 <= class_id <= len(class_names):
            raise LayoutError(f"{table['image_class_labels.txt']}: image {image_id} has unknown class id {class_id}")
        if flags[image_id] not in SPLIT_FLAG:
            raise LayoutError(f"{table['train_test_split.txt']}: image {image_id} has flag {flags[image_id]!r}, expected 0 or 1")
        splits[SPLIT_FLAG[flags[image_id]]].append(ImageRecord(f"images/{rel}", class_id - 1))
    return DatasetLayout(folder, class_names, splits)


SPEC = DatasetSpec(
    data_source="cub200",
    title="CUB-200-2011",
    folder_names=("CUB_200_2011", ""),
    marker_paths=("images.txt", "classes.txt"),
    remote_files=(
        RemoteFile(
            "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz",
            "CUB_200_2011.tgz",
            "md5:97eceeb196236b17998738112f37df78",
        ),
    ),
    official_splits=("train", "test"),
    read_layout=read_layout,
    class_name_source="classes.txt folder names without the NNN. prefix, '_' -> ' '",
    paper_outputs=(PaperOutput("train", 3000), PaperOutput("test", 500)),
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

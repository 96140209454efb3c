"""Stanford Cars (Cars196) -> verl parquet (out-of-domain evaluation).

The Stanford host is gone (HTTP 404 since 2023; torchvision's ``StanfordCars`` says "The
original URL ... is broken"), so this script reads the forms users can get today:

1. **The Hugging Face dataset ``tanganke/stanford_cars``** (what the paper read), the default
   download: a snapshot folder with ``data/train-*.parquet`` (8,144 rows) and
   ``data/test-*.parquet`` (8,041 rows); ``image`` = ``{bytes, path}``, ``label`` = int64
   0..195, class names in the parquet schema metadata and the dataset card, equal to
   ``cars_meta.mat``'s ``class_names``. Its corruption splits (``contrast``,
   ``gaussian_noise``, ``impulse_noise``, ``jpeg_compression``, ``motion_blur``, ``pixelate``,
   ``spatter``) are neither downloaded nor read.
2. **torchvision's layout**, as in the Kaggle mirror ``rickyyyyyyy/torchvision-stanford-cars``
   that torchvision's docs link: ``stanford_cars/`` with ``cars_train/00001.jpg`` ...,
   ``cars_test/00001.jpg`` ... (numbering restarts), ``devkit/cars_meta.mat``
   (``class_names``), ``devkit/cars_train_annos.mat`` (struct array ``annotations``:
   ``bbox_x1..bbox_y2``, ``class`` 1-based, ``fname``) and ``cars_test_annos_withlabels.mat``.
   The original archives, extracted in one folder, give the same layout.

The Kaggle copy ``jessicali9530/stanford-cars-dataset`` is refused: its images sit in
``cars_train/cars_train/`` and users report that its ``.mat`` files do not match its image
files (torchvision issue 7545; OpenGVLab/CaFo issue 4), which would silently mislabel images.

Class name: ``class_names`` as written ("AM General Hummer SUV 2000"). CoOp:
``split_zhou_StanfordCars.json`` names files as ``cars_train/00001.jpg``, and CoOp's test split
is the official test. In a snapshot, ``image.path`` holds the base name ``datasets`` kept; when
every row of a split has a distinct ``NNNNN.jpg`` name it is taken as the original file name
(the CoOp labels are then checked against the parquet's labels, so a renumbered snapshot is
caught), otherwise a split file is refused with the reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.hf_parquet import HubSnapshot, find_split_files, read_snapshot
from verl_ext.data_prep.layout import DatasetLayout, ImageRecord, load_mat, require_paths
from verl_ext.data_prep.spec import DatasetSpec

SPLITS = ("train", "test")
DEVKIT = ("cars_train", "cars_test", "devkit/cars_meta.mat", "devkit/cars_train_annos.mat")
TEST_ANNOTATIONS = ("cars_test_annos_withlabels.mat", "devkit/cars_test_annos_withlabels.mat")
ORIGINAL_NAME = re.compile(r"^\d{5}\.jpg$")
HUB = HubSnapshot("tanganke/stanford_cars", ("README.md", "data/train-*.parquet", "data/test-*.parquet"))
STANFORD = "https://ai.stanford.edu/~jkrause/"


def _nested_kaggle_copy(folder: Path) -> bool:
    return any((folder / name / name).is_dir() for name in ("cars_train", "cars_test"))


def is_layout(folder: Path) -> bool:
    """A snapshot, the devkit layout, or the broken Kaggle copy (found so that it can be refused)."""
    return bool(find_split_files(folder)) or (folder / DEVKIT[2]).exists() or _nested_kaggle_copy(folder)


def _original_paths(split: str, names: Sequence[Optional[str]]) -> Optional[list[str]]:
    if len(set(names)) == len(names) and all(name and ORIGINAL_NAME.match(name) for name in names):
        return [f"cars_{split}/{name}" for name in names]
    return None


def _records(mat_path: Path, image_folder: str, classes: int) -> list[ImageRecord]:
    annotations = np.atleast_1d(load_mat(mat_path, ["annotations"])["annotations"])
    missing = {"class", "fname"} - set(annotations.dtype.names or ())
    if missing:
        raise LayoutError(f"{mat_path}: 'annotations' lacks the field(s) {sorted(missing)}")
    records = []
    for position, annotation in enumerate(annotations):
        class_id = int(annotation["class"])
        if not 1 <= class_id <= classes:
            raise LayoutError(f"{mat_path}: annotations[{position}] has class {class_id}, expected 1..{classes}")
        records.append(ImageRecord(f"{image_folder}/{annotation['fname']}", class_id - 1))
    return records


def read_layout(folder: Path) -> DatasetLayout:
    if _nested_kaggle_copy(folder):
        raise LayoutError(
            f"{folder} looks like the Kaggle copy jessicali9530/stanford-cars-dataset (cars_train/cars_train/): its "
            ".mat annotations are reported not to match its image files (torchvision issue 7545), so labels would be "
            "wrong. Use the Hugging Face snapshot of tanganke/stanford_cars (the default download, what the paper "
            "used) or the Kaggle mirror rickyyyyyyy/torchvision-stanford-cars (torchvision's layout)."
        )
    if find_split_files(folder):
        return read_snapshot(folder, SPLITS, _original_paths)
    require_paths(folder, DEVKIT, "Stanford Cars")
    test_annotations = next((folder / rel for rel in TEST_ANNOTATIONS if (folder / rel).exists()), None)
    if test_annotations is None:
        raise LayoutError(f"Stanford Cars: missing {folder / TEST_ANNOTATIONS[0]} (the test labels; the Kaggle mirror "
                          "rickyyyyyyy/torchvision-stanford-cars has it)")
    names = np.atleast_1d(load_mat(folder / "devkit/cars_meta.mat", ["class_names"])["class_names"])
    class_names = [str(name).strip() for name in names]
    splits = {
        "train": _records(folder / "devkit/cars_train_annos.mat", "cars_train", len(class_names)),
        "test": _records(test_annotations, "cars_test", len(class_names)),
    }
    return DatasetLayout(folder, class_names, splits, source_description="torchvision/devkit layout")


SPEC = DatasetSpec(
    data_source="stanford_cars",
    title="Stanford Cars",
    folder_names=("stanford_cars", "stanford-cars", ""),
    marker_paths=("data/test-00000-of-00001.parquet", "devkit/cars_meta.mat"),
    remote_files=(  # the original files: no longer downloadable, but checked when placed in --root
        RemoteFile(STANFORD + "car196/cars_train.tgz", "cars_train.tgz", "md5:065e5b463ae28d29e77c1b4b166cfe61"),
        RemoteFile(STANFORD + "car196/cars_test.tgz", "cars_test.tgz", "md5:4ce7ebf6a94d07f1952d94dd34c4d501"),
        RemoteFile(STANFORD + "cars/car_devkit.tgz", "car_devkit.tgz", "md5:c3b158d763b6e2245038c8ad08e45376"),
        RemoteFile(STANFORD + "car196/cars_test_annos_withlabels.mat", "cars_test_annos_withlabels.mat",
                   "md5:b0a2b23655a3edd16d84508592a98d10"),
    ),
    official_splits=SPLITS,
    read_layout=read_layout,
    class_name_source="the official class_names (cars_meta.mat, or the snapshot's ClassLabel names), as written",
    coop_file_name="split_zhou_StanfordCars.json",
    coop_image_dir="",
    is_layout=is_layout,
    fetch=HUB,
    download_note="the Stanford host is offline since 2023: the download is the Hugging Face snapshot "
    "tanganke/stanford_cars (train and test parquet files only)",
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

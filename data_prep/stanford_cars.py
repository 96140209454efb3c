"""Stanford Cars (Cars196) -> verl parquet (out-of-domain evaluation).

Original files: ``cars_train.tgz`` (``cars_train/00001.jpg`` ...), ``cars_test.tgz``
(``cars_test/00001.jpg`` ...; numbering restarts), ``car_devkit.tgz`` (``devkit/cars_meta.mat``
with ``class_names``; ``devkit/cars_train_annos.mat`` with the struct array ``annotations``:
``bbox_x1..bbox_y2``, ``class`` 1-based, ``fname``) and ``cars_test_annos_withlabels.mat``
(same, for the test images). Class name: ``class_names`` as written ("Audi S4 Sedan 2012").
The original host is offline since 2023, so ``--download`` usually fails; obtain the files
from a mirror that keeps these names. ``--split-file split_zhou_StanfordCars.json`` is accepted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.layout import DatasetLayout, ImageRecord, load_mat, require_paths
from verl_ext.data_prep.spec import DatasetSpec

TEST_ANNOTATIONS = ("cars_test_annos_withlabels.mat", "devkit/cars_test_annos_withlabels.mat")


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
    require_paths(folder, ("cars_train", "cars_test", "devkit/cars_meta.mat", "devkit/cars_train_annos.mat"), "Stanford Cars")
    test_annotations = next((folder / rel for rel in TEST_ANNOTATIONS if (folder / rel).exists()), None)
    if test_annotations is None:
        raise LayoutError(f"Stanford Cars: missing {folder / TEST_ANNOTATIONS[0]} (the test labels)")
    class_names = [str(name).strip() for name in np.atleast_1d(load_mat(folder / "devkit/cars_meta.mat", ["class_names"])["class_names"])]
    splits = {
        "train": _records(folder / "devkit/cars_train_annos.mat", "cars_train", len(class_names)),
        "test": _records(test_annotations, "cars_test", len(class_names)),
    }
    return DatasetLayout(folder, class_names, splits)


SPEC = DatasetSpec(
    data_source="stanford_cars",
    title="Stanford Cars",
    folder_names=("stanford_cars", "stanford-cars", ""),
    marker_paths=("devkit/cars_meta.mat", "cars_test"),
    remote_files=(
        RemoteFile("https://ai.stanford.edu/~jkrause/car196/cars_train.tgz", "cars_train.tgz", "md5:065e5b463ae28d29e77c1b4b166cfe61"),
        RemoteFile("https://ai.stanford.edu/~jkrause/car196/cars_test.tgz", "cars_test.tgz", "md5:4ce7ebf6a94d07f1952d94dd34c4d501"),
        RemoteFile("https://ai.stanford.edu/~jkrause/cars/car_devkit.tgz", "car_devkit.tgz", "md5:c3b158d763b6e2245038c8ad08e45376"),
        RemoteFile(
            "https://ai.stanford.edu/~jkrause/car196/cars_test_annos_withlabels.mat",
            "cars_test_annos_withlabels.mat",
            "md5:b0a2b23655a3edd16d84508592a98d10",
        ),
    ),
    official_splits=("train", "test"),
    read_layout=read_layout,
    class_name_source="devkit/cars_meta.mat class_names, as written",
    coop_file_name="split_zhou_StanfordCars.json",
    coop_image_dir="",
    download_note="the original Stanford host has been offline since 2023; place the files in --root yourself",
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

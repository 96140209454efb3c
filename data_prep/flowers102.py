"""Oxford Flowers102 -> verl parquet (out-of-domain evaluation).

Official source: https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ — ``102flowers.tgz``
(``jpg/image_00001.jpg`` ..., 5-digit 1-based ids), ``imagelabels.mat`` (``labels``: one
1-based class per image) and ``setid.mat`` (``trnid``, ``valid``, ``tstid``: 1-based ids).
Class names: the archive has none; a table shipped with the project
(``verl_ext/data_prep/class_names/flowers102.txt``), equal to CoOp's ``cat_to_name.json``.

The paper evaluates on the CoOp test split (2,463 images; train 4,093, val 1,633), not the
official one (6,149): ``split_zhou_OxfordFlowers.json`` in ``--root`` (or ``--split-file``).
CoOp's reader (``datasets/oxford_flowers.py``) labels an image ``imagelabels.mat``'s value minus
one, the same ``label_id`` as here; image paths are relative to ``jpg/``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.layout import DatasetLayout, ImageRecord, load_mat, packaged_class_names, require_paths
from verl_ext.data_prep.spec import DatasetSpec

URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
SETS = {"train": "trnid", "val": "valid", "test": "tstid"}


def read_layout(folder: Path) -> DatasetLayout:
    require_paths(folder, ("jpg", "imagelabels.mat", "setid.mat"), "Oxford Flowers102")
    table = packaged_class_names("flowers102")
    labels = np.atleast_1d(load_mat(folder / "imagelabels.mat", ["labels"])["labels"]).astype(int)
    setid = load_mat(folder / "setid.mat", list(SETS.values()))
    if labels.size == 0 or labels.min() < 1 or labels.max() > len(table):
        raise LayoutError(f"{folder / 'imagelabels.mat'}: labels must be 1..{len(table)}")
    # The labels define the classes (1..max); the real file uses all 102.
    class_names = table[: int(labels.max())]
    splits = {}
    for split, variable in SETS.items():
        ids = np.atleast_1d(setid[variable]).astype(int)
        bad = [int(i) for i in ids if not 1 <= i <= len(labels)]
        if bad:
            raise LayoutError(f"{folder / 'setid.mat'}: {variable} lists ids {bad[:5]} with no entry in imagelabels.mat")
        splits[split] = [ImageRecord(f"jpg/image_{i:05d}.jpg", int(labels[i - 1]) - 1) for i in ids]
    return DatasetLayout(folder, class_names, splits)


SPEC = DatasetSpec(
    data_source="flowers102",
    title="Oxford Flowers102",
    folder_names=("flowers-102", "flowers102", ""),
    marker_paths=("jpg", "imagelabels.mat", "setid.mat"),
    remote_files=(
        RemoteFile(URL + "102flowers.tgz", "102flowers.tgz", "md5:52808999861908f626f3c1f4e79d11fa"),
        RemoteFile(URL + "imagelabels.mat", "imagelabels.mat", "md5:e0620be6f572b9609742df49c70aed4d"),
        RemoteFile(URL + "setid.mat", "setid.mat", "md5:a5357ecc9cb78c4bef273ce3793fc85c"),
    ),
    official_splits=("train", "val", "test"),
    read_layout=read_layout,
    class_name_source="the shipped table class_names/flowers102.txt (CoOp's community list)",
    coop_file_name="split_zhou_OxfordFlowers.json",
    coop_image_dir="jpg",
    paper_needs_coop=True,
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

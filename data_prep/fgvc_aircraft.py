"""FGVC-Aircraft 2013b, variant level -> verl parquet (out-of-domain evaluation).

Official source: https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ —
``fgvc-aircraft-2013b.tar.gz``. Layout of ``fgvc-aircraft-2013b/data/``: ``images/<7-digit
id>.jpg``, ``variants.txt`` (100 names), ``images_variant_<split>.txt`` (``<id> <variant>``;
variant names hold spaces and ``/``, so lines are split on the first space only). Class
name: the variant name as written ("F/A-18", "737-700"). The paper uses the official test
split; there is no CoOp file for this dataset.
"""

from __future__ import annotations

from pathlib import Path

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.layout import (
    DatasetLayout,
    ImageRecord,
    read_columns,
    read_lines,
    require_paths,
    underscores_to_spaces,
)
from verl_ext.data_prep.spec import DatasetSpec

SPLITS = ("train", "val", "trainval", "test")


def read_layout(folder: Path) -> DatasetLayout:
    lists = {split: f"data/images_variant_{split}.txt" for split in SPLITS}
    require_paths(folder, ("data/images", "data/variants.txt", *lists.values()), "FGVC-Aircraft 2013b")
    variants = read_lines(folder / "data/variants.txt")
    label_of = {name: label for label, name in enumerate(variants)}
    splits = {}
    for split, rel in lists.items():
        splits[split] = []
        for number, (image_id, variant) in read_columns(folder / rel, 2, max_split=1):
            if variant not in label_of:
                raise LayoutError(f"{folder / rel}:{number}: variant {variant!r} is not in data/variants.txt")
            splits[split].append(ImageRecord(f"data/images/{image_id}.jpg", label_of[variant]))
    return DatasetLayout(folder, [underscores_to_spaces(name) for name in variants], splits)


SPEC = DatasetSpec(
    data_source="fgvc_aircraft",
    title="FGVC-Aircraft 2013b",
    folder_names=("fgvc-aircraft-2013b", ""),
    marker_paths=("data/variants.txt", "data/images"),
    remote_files=(
        # No checksum is published for this archive; it is used unverified.
        RemoteFile(
            "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",
            "fgvc-aircraft-2013b.tar.gz",
        ),
    ),
    official_splits=SPLITS,
    read_layout=read_layout,
    class_name_source="data/variants.txt (variant level), '_' -> ' '",
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

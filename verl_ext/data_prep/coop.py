"""Reading the CoOp split files (``split_zhou_<Name>.json``).

The paper evaluates Flowers102, Food-101, Oxford Pets and Stanford Cars on the splits of the
CoOp/CaSED line of work. CoOp writes such a file with ``OxfordPets.save_split``
(``KaiyangZhou/CoOp``, ``datasets/oxford_pets.py``) through Dassl's ``write_json``
(``json.dump(..., indent=4, separators=(",", ": "))``): a JSON object with the keys ``train``,
``val`` and ``test``, each a list of ``[impath, label, classname]``. ``impath`` is relative to
the folder the dataset's reader passes as ``path_prefix`` (``jpg/`` for Flowers, ``images/``
for Pets and Food-101, the dataset folder itself for Cars); ``label`` is 0-based.

The file only decides *which* images go into which split. Labels and class names still come
from the official annotations, so both split definitions name classes identically. Each entry
is checked against what CoOp's own reader gives that image, so a split file for another
dataset (or a damaged one) is refused, naming the file, the entry and why. How CoOp numbers
the classes differs per dataset (see :data:`NUMBERINGS`).
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Callable

from .errors import LayoutError
from .layout import DatasetLayout, ImageRecord

COOP_SPLITS = ("train", "val", "test")

#: ``official``: CoOp's label is the official class id made 0-based (Flowers ``label - 1`` from
#: imagelabels.mat, Pets ``CLASS-ID - 1``, Cars ``class - 1``), which is our ``label_id``.
#: ``sorted_folders``: CoOp numbers classes by the sorted names of the image folders (its
#: DTD-style ``read_and_split_data``, used for Food-101) and names them by the folder, so
#: Food-101's ``cheese_plate`` is 16 and ``cheesecake`` 17, the reverse of ``meta/classes.txt``.
NUMBERINGS = ("official", "sorted_folders")


def _load(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except FileNotFoundError:
        raise LayoutError(f"CoOp split file {path} does not exist") from None
    except json.JSONDecodeError as error:
        raise LayoutError(f"CoOp split file {path} is not valid JSON: {error}") from error
    if not isinstance(content, dict) or not all(key in content for key in COOP_SPLITS):
        raise LayoutError(f"CoOp split file {path}: expected a JSON object with keys {list(COOP_SPLITS)}")
    return content


def _class_folder(record: ImageRecord) -> str:
    return posixpath.basename(posixpath.dirname(record.rel_path))


def _checker(layout: DatasetLayout, numbering: str) -> Callable[[list, ImageRecord], str | None]:
    """A function that says why an entry disagrees with CoOp's reader for its image (None if it agrees)."""
    if numbering == "official":

        def check(entry: list, record: ImageRecord) -> str | None:
            if entry[1] == record.label_id:
                return None
            return (f"label {entry[1]!r} disagrees with the official label {record.label_id} "
                    f"({layout.class_names[record.label_id]!r}), which CoOp uses for this dataset")

        return check
    if numbering != "sorted_folders":
        raise ValueError(f"unknown CoOp numbering {numbering!r}; expected one of {NUMBERINGS}")
    folders = sorted({_class_folder(record) for records in layout.splits.values() for record in records})
    position = {folder: index for index, folder in enumerate(folders)}

    def check(entry: list, record: ImageRecord) -> str | None:
        folder = _class_folder(record)
        if entry[1] != position[folder]:
            return (f"label {entry[1]!r} disagrees with CoOp's numbering of this dataset ({position[folder]}: "
                    f"the place of the class folder {folder!r} among the sorted image folders)")
        if len(entry) > 2 and entry[2] != folder:
            return f"class name {entry[2]!r} is not the image's class folder {folder!r}"
        return None

    return check


def read_coop_splits(path: Path, layout: DatasetLayout, image_dir: str, numbering: str = "official") -> dict[str, list[ImageRecord]]:
    """Map every CoOp split to the layout's records (canonical order kept).

    ``image_dir`` is the folder, relative to the dataset folder, against which the CoOp image
    paths resolve (e.g. ``"jpg"`` for Flowers102, ``""`` for Stanford Cars); ``numbering`` is
    how CoOp labels this dataset (:data:`NUMBERINGS`).
    """
    if layout.coop_unavailable:
        raise LayoutError(f"CoOp split file {path} cannot be applied: {layout.coop_unavailable}")
    content = _load(path)
    check = _checker(layout, numbering)
    known = {record.rel_path: record for records in layout.splits.values() for record in records}
    seen: dict[str, str] = {}
    result: dict[str, list[ImageRecord]] = {}
    for split in COOP_SPLITS:
        entries = content[split]
        if not isinstance(entries, list):
            raise LayoutError(f"CoOp split file {path}: {split!r} must be a list")
        records = []
        for position, entry in enumerate(entries):
            where = f"CoOp split file {path}, {split}[{position}] {entry!r}"
            valid = isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str)
            if not valid or isinstance(entry[1], bool) or not isinstance(entry[1], int):
                raise LayoutError(f"{where}: expected [image_path, label, class_name]")
            rel_path = posixpath.normpath(posixpath.join(image_dir, entry[0].replace("\\", "/")))
            record = known.get(rel_path)
            if record is None:
                raise LayoutError(f"{where}: image {rel_path} is not in the official annotations (id mismatch)")
            if rel_path in seen:
                raise LayoutError(f"{where}: duplicate id {rel_path} (already in {seen[rel_path]!r})")
            seen[rel_path] = split
            problem = check(entry, record)
            if problem:
                raise LayoutError(f"{where}: {problem}; wrong split file for this dataset?")
            records.append(record)
        result[split] = sorted(records, key=lambda record: record.rel_path)
    return result

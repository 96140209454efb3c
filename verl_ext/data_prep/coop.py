"""Reading the CoOp split files (``split_zhou_<Name>.json``).

The paper evaluates Flowers102, Food-101, Oxford Pets and Stanford Cars on the splits of the
CoOp/CaSED line of work, not the official ones. Such a file is a JSON object with the keys
``train``, ``val`` and ``test``; each holds a list of ``[image_path, label, class_name]``
where ``image_path`` is relative to the dataset's image folder and ``label`` is 0-based.

The file only decides *which* images go into which split. Labels and class names still come
from the official annotations, so both split definitions name classes identically; a CoOp
label that disagrees with the official one is an error, not silently trusted.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

from .errors import LayoutError
from .layout import DatasetLayout, ImageRecord

COOP_SPLITS = ("train", "val", "test")


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


def read_coop_splits(path: Path, layout: DatasetLayout, image_dir: str) -> dict[str, list[ImageRecord]]:
    """Map every CoOp split to the layout's records (canonical order kept).

    ``image_dir`` is the folder, relative to the dataset folder, against which the CoOp image
    paths resolve (e.g. ``"jpg"`` for Flowers102, ``""`` for Stanford Cars).
    """
    content = _load(path)
    known = {record.rel_path: record for records in layout.splits.values() for record in records}
    seen: dict[str, str] = {}
    result: dict[str, list[ImageRecord]] = {}
    for split in COOP_SPLITS:
        entries = content[split]
        if not isinstance(entries, list):
            raise LayoutError(f"CoOp split file {path}: {split!r} must be a list")
        records = []
        for position, entry in enumerate(entries):
            where = f"CoOp split file {path}, {split}[{position}]"
            if not (isinstance(entry, list) and len(entry) >= 2 and isinstance(entry[0], str)):
                raise LayoutError(f"{where}: expected [image_path, label, class_name], got {entry!r}")
            rel_path = posixpath.normpath(posixpath.join(image_dir, entry[0].replace("\\", "/")))
            record = known.get(rel_path)
            if record is None:
                raise LayoutError(f"{where}: image {rel_path} is not in the official annotations (id mismatch)")
            if rel_path in seen:
                raise LayoutError(f"{where}: duplicate id {rel_path} (already in {seen[rel_path]!r})")
            seen[rel_path] = split
            if not isinstance(entry[1], int) or entry[1] != record.label_id:
                raise LayoutError(
                    f"{where}: label {entry[1]!r} for {rel_path} disagrees with the official label "
                    f"{record.label_id} ({layout.class_names[record.label_id]!r}); wrong split file for this dataset?"
                )
            records.append(record)
        result[split] = sorted(records, key=lambda record: record.rel_path)
    return result

"""Reading evaluation rows from parquet files in the data-prep schema, streaming.

Each row needs ``data_source``, ``reward_model.ground_truth`` and one image in ``images``
(``[{bytes, path}]``). Only metadata and a SHA-256 of the image bytes are kept in memory;
the bytes are read again, batch by batch, when the predict stage needs them, so a
30,000-image split does not sit in RAM.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import pyarrow.parquet as pq

_METADATA_COLUMNS = ["data_source", "reward_model", "extra_info"]
_BATCH_ROWS = 64


class EvalDataError(ValueError):
    """A parquet row the evaluation cannot use; the message names the file, row and field."""


@dataclass(frozen=True)
class EvalItem:
    """One image to classify: where it comes from, its ground truth and its content hash."""

    data_source: str
    source_file: str
    row: int
    index: Any
    ground_truth: str
    image_sha256: str


def _fail(path: Path, row: int, field: str, why: str) -> EvalDataError:
    return EvalDataError(f"{path}: row {row}: field {field!r}: {why}")


def _image_bytes(path: Path, row: int, images: Any) -> bytes:
    if not isinstance(images, (list, tuple)) or not images:
        raise _fail(path, row, "images", "expected a non-empty list of {bytes, path}")
    first = images[0]
    data = first.get("bytes") if isinstance(first, dict) else None
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise _fail(path, row, "images[0].bytes", "missing or empty image bytes")
    return bytes(data)


def _open(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise EvalDataError(f"{path}: no such parquet file")
    parquet = pq.ParquetFile(path)
    missing = [c for c in _METADATA_COLUMNS[:2] + ["images"] if c not in parquet.schema_arrow.names]
    if missing:
        raise EvalDataError(f"{path}: missing column(s) {missing}; expected the data_prep schema")
    return parquet


def _rows(path: Path, columns: list[str]) -> Iterator[tuple[int, dict]]:
    parquet = _open(path)
    columns = [c for c in columns if c in parquet.schema_arrow.names]
    row = 0
    for batch in parquet.iter_batches(batch_size=_BATCH_ROWS, columns=columns):
        for record in batch.to_pylist():
            yield row, record
            row += 1


def read_eval_items(path: str | Path) -> list[EvalItem]:
    """All rows of one parquet file as :class:`EvalItem`, validated, in file order."""
    path = Path(path)
    items = []
    for row, record in _rows(path, _METADATA_COLUMNS + ["images"]):
        source = record.get("data_source")
        if not isinstance(source, str) or not source:
            raise _fail(path, row, "data_source", "missing or empty")
        reward_model = record.get("reward_model")
        truth = reward_model.get("ground_truth") if isinstance(reward_model, dict) else None
        if not isinstance(truth, str) or not truth.strip():
            raise _fail(path, row, "reward_model.ground_truth", "missing or empty")
        extra = record.get("extra_info") if isinstance(record.get("extra_info"), dict) else {}
        digest = hashlib.sha256(_image_bytes(path, row, record.get("images"))).hexdigest()
        items.append(EvalItem(source, str(path), row, extra.get("index", row), truth.strip(), digest))
    if not items:
        raise EvalDataError(f"{path}: the file has no rows")
    return items


def iter_image_bytes(path: str | Path, rows: Optional[Iterable[int]] = None) -> Iterator[tuple[int, bytes]]:
    """(row, image bytes) for the wanted rows of one file (all rows when ``rows`` is None)."""
    path = Path(path)
    wanted = None if rows is None else set(rows)
    for row, record in _rows(path, ["images"]):
        if wanted is None or row in wanted:
            yield row, _image_bytes(path, row, record.get("images"))

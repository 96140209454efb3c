"""The streaming parquet writer and the row schema verl 0.9's ``RLHFDataset`` reads.

Rows are buffered only until a row group is full (by count or by bytes), then written with
``pyarrow.parquet.ParquetWriter``, so peak memory is bounded by one row group and does not
grow with the split. The file is written under a temporary name and renamed when complete:
an interrupted run never leaves a truncated parquet behind under the final name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

#: Rows per row group: a reader (HF datasets, pyarrow) can stream one group at a time.
ROW_GROUP_ROWS = 64
#: A row group is also closed once its images reach this many bytes (large-image datasets).
ROW_GROUP_BYTES = 16 << 20

ABILITY = "fine_grained_classification"
REWARD_STYLE = "model"  # judged by an LLM, not by a string rule

ROW_SCHEMA = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
        (
            "extra_info",
            pa.struct(
                [
                    ("split", pa.string()),
                    ("index", pa.int64()),
                    ("label_id", pa.int64()),
                    ("class_name", pa.string()),
                    ("source_file", pa.string()),
                    ("split_definition", pa.string()),
                ]
            ),
        ),
    ]
)


def build_row(
    *,
    data_source: str,
    prompt: list[dict],
    image_bytes: bytes,
    split: str,
    index: int,
    label_id: int,
    class_name: str,
    source_file: str,
    split_definition: str,
) -> dict[str, Any]:
    """One parquet row; ``ground_truth`` is the cleaned class name the judge sees."""
    return {
        "data_source": data_source,
        "prompt": prompt,
        "images": [{"bytes": image_bytes, "path": source_file}],
        "ability": ABILITY,
        "reward_model": {"style": REWARD_STYLE, "ground_truth": class_name},
        "extra_info": {
            "split": split,
            "index": index,
            "label_id": label_id,
            "class_name": class_name,
            "source_file": source_file,
            "split_definition": split_definition,
        },
    }


class StreamingParquetWriter:
    """Append rows one by one; they reach disk a small row group at a time.

    ``schema`` is the RL row schema unless a caller writes another table of image rows
    (the SFT parquet, ``sft.py``); rows must carry an ``images`` list of ``{bytes, path}``.
    """

    def __init__(
        self,
        path: Path,
        rows_per_group: int = ROW_GROUP_ROWS,
        bytes_per_group: int = ROW_GROUP_BYTES,
        schema: pa.Schema = ROW_SCHEMA,
    ):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = self.path.with_name(self.path.name + ".partial")
        self._schema = schema
        self._writer = pq.ParquetWriter(self._temporary, schema, compression="zstd")
        self._rows: list[dict] = []
        self._buffered_bytes = 0
        self._rows_per_group = rows_per_group
        self._bytes_per_group = bytes_per_group
        self.rows_written = 0

    def append(self, row: dict) -> None:
        self._rows.append(row)
        self._buffered_bytes += sum(len(image["bytes"]) for image in row["images"])
        if len(self._rows) >= self._rows_per_group or self._buffered_bytes >= self._bytes_per_group:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        table = pa.Table.from_pylist(self._rows, schema=self._schema)
        self._writer.write_table(table, row_group_size=len(self._rows))
        self.rows_written += len(self._rows)
        self._rows = []
        self._buffered_bytes = 0

    def close(self) -> None:
        """Write the last row group and move the file to its final name."""
        self._flush()
        self._writer.close()
        os.replace(self._temporary, self.path)

    def abort(self) -> None:
        """Drop the partial file (used when a run fails)."""
        self._writer.close()
        self._temporary.unlink(missing_ok=True)

    def __enter__(self) -> "StreamingParquetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

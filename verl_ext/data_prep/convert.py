"""One split from image records to a parquet file: read, check, (downscale), write.

Each image is read (through the layout's :class:`~verl_ext.data_prep.layout.ImageSource`),
checked and appended to the streaming writer before the next is read, so at most one row
group of images is in memory. A bad image stops the run with its file name, or, with
``skip_bad``, is left out and listed in the result (and the sidecar report).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from tqdm import tqdm

from ..core.prompts import build_prompt_messages
from .errors import BadImageError
from .images import downscale, inspect_image
from .layout import ImageRecord, ImageSource
from .writer import StreamingParquetWriter, build_row


@dataclass
class SplitResult:
    """What one written file holds; printed in the end summary and saved as JSON beside it."""

    data_source: str
    split: str
    split_definition: str
    output: str
    rows: int = 0
    classes: int = 0
    source_bytes: int = 0
    image_bytes_written: int = 0
    file_bytes: int = 0
    downscaled: int = 0
    skipped: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    subset: dict | None = None

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)


def convert_split(
    *,
    images: ImageSource,
    records: Sequence[tuple[int, ImageRecord]],
    class_names: Sequence[str],
    data_source: str,
    split: str,
    split_definition: str,
    output: Path,
    skip_bad: bool = False,
    max_pixels: int | None = None,
    progress: bool = True,
) -> SplitResult:
    """Write ``records`` (pairs of full-split index and record) to ``output``."""
    started = time.perf_counter()
    prompt = build_prompt_messages("general")
    result = SplitResult(data_source, split, split_definition, str(output))
    labels_written: set[int] = set()
    with StreamingParquetWriter(output) as writer:
        contents = images.read_all([record for _, record in records], progress)
        bar = tqdm(records, desc=f"{data_source}/{output.name}", unit="img", disable=not progress)
        for (index, record), data in zip(bar, contents):
            try:
                if isinstance(data, BadImageError):
                    raise data
                info = inspect_image(data, images.describe(record))
            except BadImageError as error:
                if not skip_bad:
                    raise
                result.skipped.append({"source_file": record.rel_path, "path": error.path, "reason": error.reason})
                bar.set_postfix(skipped=len(result.skipped))
                continue
            result.source_bytes += len(data)
            if max_pixels is not None:
                smaller = downscale(data, info, max_pixels)
                if smaller is not None:
                    data = smaller
                    result.downscaled += 1
            writer.append(
                build_row(
                    data_source=data_source,
                    prompt=prompt,
                    image_bytes=data,
                    split=split,
                    index=index,
                    label_id=record.label_id,
                    class_name=class_names[record.label_id],
                    source_file=record.rel_path,
                    split_definition=split_definition,
                )
            )
            result.image_bytes_written += len(data)
            labels_written.add(record.label_id)
    result.rows = writer.rows_written
    result.classes = len(labels_written)
    result.file_bytes = output.stat().st_size
    result.seconds = time.perf_counter() - started
    return result


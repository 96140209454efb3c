"""Write a Hugging Face image-classification dataset snapshot, as ``datasets`` lays it out on the hub.

``data/<split>-<shard:05d>-of-<count:05d>.parquet`` with the schema ``datasets`` itself
generates for ``Features({"image": Image(), "label": ClassLabel(names=...)})`` (so the
``huggingface`` schema metadata holding the class names is the real one), and a ``README.md``
dataset card whose front matter carries the same ``dataset_info``. Both can be left out to
test the fallbacks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

#: One row: the image bytes, the ``image.path`` value (``None`` when it was not kept), the label.
Row = tuple[bytes, Optional[str], int]


def hf_schema(class_names: Sequence[str], metadata: bool = True) -> pa.Schema:
    """The arrow schema ``datasets`` writes for an image + ClassLabel dataset."""
    from datasets import ClassLabel, Features, Image

    schema = Features({"image": Image(), "label": ClassLabel(names=list(class_names))}).arrow_schema
    return schema if metadata else schema.remove_metadata()


def dataset_card(class_names: Sequence[str], split_sizes: dict[str, int]) -> str:
    """A README.md whose front matter is the ``dataset_info`` (and ``configs``) the hub shows."""
    import yaml

    info = {
        "dataset_info": {
            "features": [
                {"name": "image", "dtype": "image"},
                {"name": "label", "dtype": {"class_label": {"names": {str(i): n for i, n in enumerate(class_names)}}}},
            ],
            "splits": [{"name": split, "num_examples": size} for split, size in split_sizes.items()],
        },
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": f"data/{split}-*"} for split in split_sizes]}],
    }
    return f"---\n{yaml.safe_dump(info, sort_keys=False)}---\n\n# Miniature snapshot for tests\n"


def write_hf_snapshot(
    folder: Path,
    splits: dict[str, list[Row]],
    class_names: Sequence[str],
    *,
    rows_per_group: int = 2,
    shards: Optional[dict[str, int]] = None,
    metadata: bool = True,
    card: bool = True,
) -> dict[str, list[Path]]:
    """Write every split as ``shards[split]`` (default 1) parquet files; returns the files per split."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    schema = hf_schema(class_names, metadata)
    written: dict[str, list[Path]] = {}
    for split, rows in splits.items():
        count = (shards or {}).get(split, 1)
        per_shard = -(-len(rows) // count)
        written[split] = []
        for shard in range(count):
            part = rows[shard * per_shard:(shard + 1) * per_shard]
            table = pa.Table.from_pylist(
                [{"image": {"bytes": data, "path": path}, "label": label} for data, path, label in part], schema=schema)
            path = folder / "data" / f"{split}-{shard:05d}-of-{count:05d}.parquet"
            pq.write_table(table, path, row_group_size=rows_per_group)
            written[split].append(path)
    if card:
        (folder / "README.md").write_text(dataset_card(class_names, {s: len(r) for s, r in splits.items()}), encoding="utf-8")
    return written

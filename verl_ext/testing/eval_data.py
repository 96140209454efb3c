"""Small parquet files in the data_prep schema with synthetic images, for tests, benchmarks and trying the CLI offline."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from verl_ext.core.prompts import build_prompt_messages


def write_eval_parquet(path: str | Path, data_source: str, ground_truths: Sequence[str], *, seed: int = 0,
                       split: str = "test") -> Path:
    """One row per ground truth with a distinct synthetic JPEG, as ``data_prep`` would write it."""
    import pandas as pd

    from verl_ext.testing.images import synthetic_jpeg

    rows = []
    for i, truth in enumerate(ground_truths):
        rows.append({
            "data_source": data_source,
            "prompt": build_prompt_messages(),
            "images": [{"bytes": synthetic_jpeg(seed * 100_003 + i, size=(64, 48)), "path": f"{i:05d}.jpg"}],
            "ability": "fine_grained_classification",
            "reward_model": {"style": "model", "ground_truth": truth},
            "extra_info": {"split": split, "index": i, "label_id": i, "class_name": truth,
                           "source_file": f"{i:05d}.jpg"},
        })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path, row_group_size=64)
    return path

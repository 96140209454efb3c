"""The deterministic ``--subset N --seed S`` selection.

Each record of the full split gets the score ``sha256(f"{seed}:{rel_path}")`` (the hex digest
read as a number); the ``N`` records with the smallest scores are kept, and written in the
split's canonical order. The choice therefore depends only on the seed and on the set of
image paths: not on the file-system listing order, the order of annotation lines, the
Python or NumPy version, or the other records present. The same arguments always give
the same ids, on every machine.
"""

from __future__ import annotations

import hashlib
from typing import Sequence, TypeVar

from .errors import DataPrepError

T = TypeVar("T")


def subset_score(seed: int, key: str) -> str:
    """The ranking score of one record (a fixed-length hex string; smaller is chosen first)."""
    return hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()


def select_subset(items: Sequence[T], keys: Sequence[str], size: int, seed: int) -> list[int]:
    """Positions (ascending) of the ``size`` items chosen for ``seed`` (see module doc)."""
    if size <= 0:
        raise DataPrepError(f"--subset must be a positive number, got {size}")
    if size > len(items):
        raise DataPrepError(f"--subset {size} is larger than the split ({len(items)} images)")
    ranked = sorted(range(len(items)), key=lambda position: (subset_score(seed, keys[position]), position))
    return sorted(ranked[:size])

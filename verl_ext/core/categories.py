"""The six judge categories and the orders the method puts on them.

The judge grades a prediction against the ground truth into
one of six categories, totally ordered from worst to best. Training ties *specific* with
*more specific*; evaluation (Best-of-N selection) keeps them apart.
"""

from __future__ import annotations

import enum
import re
from typing import Optional


class Category(enum.IntEnum):
    """A judge category; the integer value is the total order, worst (0) to best (5)."""

    WRONG = 0
    ABSTAIN = 1
    GENERIC = 2
    LESS_SPECIFIC = 3
    SPECIFIC = 4
    MORE_SPECIFIC = 5

    @property
    def label(self) -> str:
        """The exact label string the judge emits, e.g. ``"less specific"``."""
        return self.name.lower().replace("_", " ")

    @property
    def training_level(self) -> int:
        """Level used by the training reward: specific and more specific are merged."""
        return min(int(self), int(Category.SPECIFIC))

    @property
    def is_correct(self) -> bool:
        """Correct at any level of detail (generic, less specific, specific, more specific)."""
        return self >= Category.GENERIC

    @property
    def is_specific(self) -> bool:
        """Specific or more specific: the answer the method wants."""
        return self >= Category.SPECIFIC

    def __str__(self) -> str:  # pragma: no cover - convenience
        return self.label


#: The labels in the order the original judge service listed them for guided decoding.
CATEGORY_LABELS: tuple[str, ...] = tuple(c.label for c in Category)

_BY_LABEL = {c.label: c for c in Category}
_SEPARATORS = re.compile(r"[\s_\-]+")


class UnknownCategoryError(ValueError):
    """A judge reply that is not one of the six category labels."""


def parse_category(text: str) -> Category:
    """Parse a judge reply into a :class:`Category`.

    Tolerant of case, surrounding whitespace and quotes, a trailing period, and of
    ``less_specific`` / ``less-specific`` / ``less  specific`` spellings. Anything else
    raises :class:`UnknownCategoryError`: a reply outside the label set is a judge error,
    never a silent ``wrong``.
    """
    found = try_parse_category(text)
    if found is None:
        raise UnknownCategoryError(f"not a judge category: {text[:80]!r}")
    return found


def try_parse_category(text: Optional[str]) -> Optional[Category]:
    """Like :func:`parse_category` but returns ``None`` for an unknown reply."""
    if text is None:
        return None
    key = text.strip().strip("\"'`").strip().rstrip(".").strip()
    key = _SEPARATORS.sub(" ", key).lower()
    return _BY_LABEL.get(key)

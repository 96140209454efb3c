"""What the reward knows about one rollout once it has been parsed and judged."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Optional

from verl_ext.core.categories import Category


class GradeStatus(enum.Enum):
    """How far a rollout got: judged, unparsable, or the judge failed on it."""

    JUDGED = "judged"
    PARSE_FAILURE = "parse_failure"
    JUDGE_ERROR = "judge_error"


@dataclass(frozen=True)
class Grade:
    """The outcome for one rollout; ``category`` is set only when ``status`` is JUDGED."""

    status: GradeStatus
    category: Optional[Category] = None

    def __post_init__(self) -> None:
        if (self.status is GradeStatus.JUDGED) != (self.category is not None):
            raise ValueError(f"a {self.status.value} grade cannot have category {self.category!r}")

    @classmethod
    def judged(cls, category: Category) -> "Grade":
        return cls(GradeStatus.JUDGED, category)

    @classmethod
    def parse_failure(cls) -> "Grade":
        return cls(GradeStatus.PARSE_FAILURE)

    @classmethod
    def judge_error(cls) -> "Grade":
        return cls(GradeStatus.JUDGE_ERROR)

    @property
    def is_judged(self) -> bool:
        return self.status is GradeStatus.JUDGED

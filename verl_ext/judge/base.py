"""The small async interface between the reward manager (or the evaluator) and a judge.

Anything that grades a normalised (ground truth, prediction) pair implements :class:`Judge`:
the HTTP client for OpenAI-compatible servers, and the in-process rule-table test double
in ``verl_ext.testing``. Callers pass *normalised* strings (``core.answer.normalise_label``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Protocol, Sequence, runtime_checkable

from verl_ext.core.categories import Category


class JudgeUnavailableError(RuntimeError):
    """The judge stayed unreachable past its failure budget; the training step must fail."""


def check_answer_or_error(answer: object, error: Optional[str], what: str) -> None:
    """A verdict carries an answer or the error that says why there is none: never both, never neither."""
    if (answer is None) == (error is None):
        raise ValueError(f"a verdict has either {what} or an error, not both or neither")


@dataclass(frozen=True)
class Verdict:
    """The judge's answer for one pair: a category, or an error that says why there is none.

    ``source`` tells how the verdict was obtained (``"llm"``, ``"cache"``, ``"dedup"``,
    ``"short_circuit"``, ``"rule_table"``) and feeds the per-step judge metrics.
    """

    category: Optional[Category]
    error: Optional[str] = None
    source: str = "llm"

    def __post_init__(self) -> None:
        check_answer_or_error(self.category, self.error, "a category")

    @property
    def ok(self) -> bool:
        return self.category is not None


@runtime_checkable
class Judge(Protocol):
    """Grades pairs; one long-lived instance per process."""

    async def grade(self, ground_truth: str, prediction: str) -> Verdict:
        """Grade one pair. Raises :class:`JudgeUnavailableError` when the judge is down for good."""
        ...

    async def grade_many(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        """Grade several pairs concurrently, in order."""
        ...

    def pop_metrics(self) -> dict[str, float]:
        """Counters and latencies since the last call (``judge/requests``, ``judge/cache_hits`` …)."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

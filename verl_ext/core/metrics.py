"""Evaluation metrics: category shares, correctness, specificity and their harmonic mean.

The paper reports HM = 2·Spec·Corr / (Spec + Corr). It does not publish its definitions of
correctness and specificity, and the original code computes neither; we use the ones inferred
from its reported numbers and say so wherever they are reported:

* **correctness** = share of graded predictions judged generic, less specific, specific
  or more specific. Wrong, abstain and parse failures count as not correct.
* **specificity** = share of specific or more specific among the *correct* predictions.
* **HM** = harmonic mean of the two, 0 when both are 0.

Judge errors are left out of every denominator and reported as their own count, so an
outage never looks like a wrong answer.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade, GradeStatus


def harmonic_mean(a: float, b: float) -> float:
    """2ab / (a + b), defined as 0 when both are 0."""
    return 0.0 if a + b == 0 else 2.0 * a * b / (a + b)


@dataclass
class GradeTally:
    """Counts of grades, from which every reported share is derived."""

    categories: Counter = field(default_factory=Counter)
    parse_failures: int = 0
    judge_errors: int = 0

    def add(self, grade: Grade) -> None:
        if grade.status is GradeStatus.PARSE_FAILURE:
            self.parse_failures += 1
        elif grade.status is GradeStatus.JUDGE_ERROR:
            self.judge_errors += 1
        else:
            self.categories[grade.category] += 1

    @classmethod
    def of(cls, grades: Iterable[Grade]) -> "GradeTally":
        tally = cls()
        for grade in grades:
            tally.add(grade)
        return tally

    @property
    def graded(self) -> int:
        """Predictions that count in the denominators: judged ones plus parse failures."""
        return sum(self.categories.values()) + self.parse_failures

    @property
    def correct(self) -> int:
        return sum(n for c, n in self.categories.items() if c.is_correct)

    @property
    def specific(self) -> int:
        return sum(n for c, n in self.categories.items() if c.is_specific)

    @property
    def correctness(self) -> float:
        return self.correct / self.graded if self.graded else 0.0

    @property
    def specificity(self) -> float:
        return self.specific / self.correct if self.correct else 0.0

    @property
    def hm(self) -> float:
        return harmonic_mean(self.specificity, self.correctness)

    def shares(self) -> dict[str, float]:
        """Share of each category and of parse failures among graded predictions."""
        total = self.graded
        out = {c.label: (self.categories[c] / total if total else 0.0) for c in Category}
        out["parse failure"] = self.parse_failures / total if total else 0.0
        return out

    def summary(self) -> dict[str, float]:
        """Flat numeric summary: shares, correctness, specificity, HM and counts."""
        out: dict[str, float] = {f"share/{k}": v for k, v in self.shares().items()}
        out.update(
            correctness=self.correctness,
            specificity=self.specificity,
            hm=self.hm,
            parse_failure_rate=self.parse_failures / self.graded if self.graded else 0.0,
            n_graded=float(self.graded),
            n_judge_errors=float(self.judge_errors),
        )
        return out


def average_summaries(summaries: Mapping[str, Mapping[str, float]], members: Sequence[str]) -> dict[str, float]:
    """Unweighted mean over datasets of correctness, specificity, HM (averaged per dataset) and the shares."""
    present = [summaries[m] for m in members if m in summaries]
    if not present:
        return {}
    keys = ["correctness", "specificity", "hm"] + [k for k in present[0] if k.startswith("share/")]
    return {k: sum(s[k] for s in present) / len(present) for k in keys if all(k in s for s in present)}

"""Per-step counters of the reward: category shares, degraded paths and judge statistics.

verl 0.9's trainer logs ``reward_extra_info`` only for validation, so the reward keeps its
own per-step tally (in the group coordinator, which sees every rollout) and reports it as a
log line and a JSONL record per step.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Optional

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade, GradeStatus
from verl_ext.core.metrics import GradeTally

#: ``category`` codes in ``reward_extra_info``: 0..5 are :class:`Category` values.
PARSE_FAILURE_CODE = -1
JUDGE_ERROR_CODE = -2


def category_code(grade: Grade) -> int:
    """The number that stands for a grade in ``reward_extra_info["category"]``."""
    if grade.status is GradeStatus.PARSE_FAILURE:
        return PARSE_FAILURE_CODE
    if grade.status is GradeStatus.JUDGE_ERROR:
        return JUDGE_ERROR_CODE
    return int(grade.category)


def grade_from_code(code: int) -> Grade:
    if code == PARSE_FAILURE_CODE:
        return Grade.parse_failure()
    if code == JUDGE_ERROR_CODE:
        return Grade.judge_error()
    return Grade.judged(Category(code))


@dataclass
class StepTally:
    """Counts for one step, fed one rollout at a time."""

    grades: GradeTally = field(default_factory=GradeTally)
    by_source: dict[str, GradeTally] = field(default_factory=dict)
    rollouts: int = 0
    reward_sum: float = 0.0
    group_timeouts: int = 0
    judge: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    _p50_weighted: float = 0.0
    _p50_weight: float = 0.0

    def add(
        self, code: int, reward: float, timed_out: bool, judge: Optional[Mapping[str, float]] = None,
        data_source: Optional[str] = None,
    ) -> None:
        grade = grade_from_code(code)
        self.grades.add(grade)
        if data_source is not None:
            self.by_source.setdefault(data_source, GradeTally()).add(grade)
        self.rollouts += 1
        self.reward_sum += reward
        self.group_timeouts += int(timed_out)
        if judge:
            self.add_judge_window(judge)

    def add_judge_window(self, window: Mapping[str, float]) -> None:
        """Merge one worker's judge metrics for a short window.

        Counters add up. Percentiles do not, so the step's p50 is the request-weighted mean of
        the windows' p50s and its p95 the largest window p95: approximations, stated in the docs.
        """
        requests = float(window.get("judge/requests", 0.0))
        for key, value in window.items():
            if key.endswith("_p50_s"):
                if requests:
                    self._p50_weighted += value * requests
                    self._p50_weight += requests
                    self.judge[key] = self._p50_weighted / self._p50_weight
            elif key.endswith("_p95_s"):
                if requests:
                    self.judge[key] = max(self.judge.get(key, 0.0), value)
            else:
                self.judge[key] += value

    def summary(self, prefix: str = "speciarl") -> dict[str, float]:
        out = {f"{prefix}/{k.replace(' ', '_')}": v for k, v in self.grades.summary().items()}
        out[f"{prefix}/rollouts"] = float(self.rollouts)
        out[f"{prefix}/reward_mean"] = self.reward_sum / self.rollouts if self.rollouts else 0.0
        out[f"{prefix}/parse_failures"] = float(self.grades.parse_failures)
        out[f"{prefix}/judge_errors"] = float(self.grades.judge_errors)
        out[f"{prefix}/group_timeouts"] = float(self.group_timeouts)
        for source, tally in sorted(self.by_source.items()):
            # Per data source: what verl's validation metrics cannot derive from per-rollout means.
            out[f"{prefix}/{source}/correctness"] = tally.correctness
            out[f"{prefix}/{source}/specificity"] = tally.specificity
            out[f"{prefix}/{source}/hm"] = tally.hm
        out.update({k: float(v) for k, v in self.judge.items()})
        return out


class StepLedger:
    """The tallies of the steps still receiving rollouts, per role (``train`` / ``val``).

    A step is *closed* when the trainer says it is over (``close``; the SpeciaRL trainer mode
    does this at the end of every step and validation pass), or, without that trainer, when
    the first rollout of a later step of the same role arrives (``record`` returns the
    summaries closed that way). A closed step's tally is dropped: memory stays flat over a
    run of any length.
    """

    def __init__(self) -> None:
        self._tallies: dict[tuple[str, int], StepTally] = {}

    def record(
        self, role: str, step: int, data_source: str, code: int, reward: float, timed_out: bool,
        judge: Optional[Mapping[str, float]] = None,
    ) -> list[tuple[str, int, dict[str, float]]]:
        """Count one rollout; returns the (role, step, summary) of earlier steps this closes."""
        step = int(step)
        earlier = [key for key in sorted(self._tallies) if key[0] == role and key[1] < step]
        closed = [item for key in earlier if (item := self.close(*key)) is not None]
        self._tallies.setdefault((role, step), StepTally()).add(code, reward, timed_out, judge, data_source)
        return closed

    def summary(self, role: str, step: int) -> dict[str, float]:
        tally = self._tallies.get((role, int(step)))
        return tally.summary(f"speciarl/{role}") if tally else {}

    def close(self, role: str, step: int) -> Optional[tuple[str, int, dict[str, float]]]:
        """End a step: its summary, or ``None`` if no rollout of it was counted (or it is closed)."""
        tally = self._tallies.pop((role, int(step)), None)
        if tally is None:
            return None
        return role, int(step), tally.summary(f"speciarl/{role}")

    def close_all(self) -> list[tuple[str, int, dict[str, float]]]:
        return [item for key in sorted(self._tallies) if (item := self.close(*key)) is not None]

    @property
    def open_steps(self) -> list[tuple[str, int]]:
        return sorted(self._tallies)

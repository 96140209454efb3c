"""Per-step figures of the reward: correctness, specificity, HM, category shares, the
best-in-group signal, degraded paths and judge statistics, overall, per data source and per
dataset group.

verl 0.9's trainer logs ``reward_extra_info`` only for validation, and only as per-rollout
means, so the reward keeps its own per-step tally (in the group coordinator, which sees every
rollout). The SpeciaRL trainer mode hands each closed step's figures to verl's tracker.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, NamedTuple, Optional

from verl_ext.core.categories import Category
from verl_ext.core.datasets import DATASET_GROUPS
from verl_ext.core.grades import Grade, GradeStatus
from verl_ext.core.metrics import GradeTally, average_summaries

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


class RolloutRecord(NamedTuple):
    """What the reward reports about one scored rollout (small and picklable: it crosses Ray)."""

    role: str
    step: int
    data_source: str
    uid: str
    code: int
    reward: float
    timed_out: bool
    judge: Optional[Mapping[str, float]] = None  # the worker's judge window, about once a second
    worker: str = ""  # who popped that window: gauges are kept per worker


#: Judge values that are a state, not a count: the latest per worker, the largest over workers.
JUDGE_GAUGES = ("judge/memory_cache_size", "judge/breakers_open")


@dataclass
class _Group:
    rewards: list = field(default_factory=list)
    best_level: Optional[int] = None


@dataclass
class StepTally:
    """The figures of one step (or validation pass) of one role, fed one rollout at a time."""

    grades: GradeTally = field(default_factory=GradeTally)
    by_source: dict[str, GradeTally] = field(default_factory=dict)
    groups: dict[str, _Group] = field(default_factory=dict)
    rollouts: int = 0
    reward_sum: float = 0.0
    group_timeouts: int = 0
    judge: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    gauges: dict[str, dict[str, float]] = field(default_factory=dict)  # gauge -> worker -> latest
    _p50_weighted: float = 0.0
    _p50_weight: float = 0.0

    def add(self, record: RolloutRecord) -> None:
        grade = grade_from_code(record.code)
        self.grades.add(grade)
        self.by_source.setdefault(record.data_source, GradeTally()).add(grade)
        group = self.groups.setdefault(record.uid, _Group())
        group.rewards.append(record.reward)
        if grade.is_judged:
            level = grade.category.training_level
            group.best_level = level if group.best_level is None else max(group.best_level, level)
        self.rollouts += 1
        self.reward_sum += record.reward
        self.group_timeouts += int(record.timed_out)
        if record.judge:
            self.add_judge_window(record.judge, record.worker)

    def add_judge_window(self, window: Mapping[str, float], worker: str = "") -> None:
        """Merge one worker's judge metrics for a short window.

        Counters add up. Percentiles do not, so the step's p50 is the request-weighted mean of
        the windows' p50s and its p95 the largest window p95: approximations, stated in the docs.
        Gauges (cache size, breakers open) keep each worker's latest value.
        """
        requests = float(window.get("judge/requests", 0.0))
        for key, value in window.items():
            if key in JUDGE_GAUGES:
                self.gauges.setdefault(key, {})[worker] = float(value)
            elif key.endswith("_p50_s"):
                if requests:
                    self._p50_weighted += value * requests
                    self._p50_weight += requests
                    self.judge[key] = self._p50_weighted / self._p50_weight
            elif key.endswith("_p95_s"):
                if requests:
                    self.judge[key] = max(self.judge.get(key, 0.0), value)
            else:
                self.judge[key] += value

    def summary(self, prefix: str) -> dict[str, float]:
        """Every figure under ``prefix`` (``speciarl/<role>``); the keys are listed in docs/reward.md."""
        out = _grade_figures(prefix, self.grades)
        out[f"{prefix}/rollouts"] = float(self.rollouts)
        out[f"{prefix}/reward_mean"] = self.reward_sum / self.rollouts if self.rollouts else 0.0
        out[f"{prefix}/parse_failures"] = float(self.grades.parse_failures)
        out[f"{prefix}/judge_errors"] = float(self.grades.judge_errors)
        out[f"{prefix}/group_timeouts"] = float(self.group_timeouts)
        # The best-in-group signal, over groups of two or more (validation with n=1 has none).
        groups = [g for g in self.groups.values() if len(g.rewards) > 1]
        if groups:
            out[f"{prefix}/groups"] = float(len(groups))
            out[f"{prefix}/no_gradient_share"] = sum(len(set(g.rewards)) == 1 for g in groups) / len(groups)
            levels = [g.best_level for g in groups if g.best_level is not None]
            out[f"{prefix}/reference_level"] = sum(levels) / len(levels) if levels else 0.0
        summaries = {}
        for source, tally in sorted(self.by_source.items()):
            out.update(_grade_figures(f"{prefix}/{source}", tally))
            summaries[source] = tally.summary()
        for name, members in DATASET_GROUPS.items():
            mean = average_summaries(summaries, members)  # per dataset, as the evaluation averages
            if mean:
                out.update({f"{prefix}/group/{name}/{FIGURE_NAMES[k]}": mean[k] for k in FIGURE_NAMES})
        out.update({f"{prefix}/{k}": float(v) for k, v in self.judge.items()})
        for gauge, per_worker in self.gauges.items():
            out[f"{prefix}/{gauge}"] = max(per_worker.values())
        return out


#: GradeTally's names -> the names the training curves use (correct, specific among correct, HM).
FIGURE_NAMES = {"correctness": "correct", "specificity": "specific", "hm": "hm"}


def _grade_figures(prefix: str, tally: GradeTally) -> dict[str, float]:
    out = {f"{prefix}/{FIGURE_NAMES[k]}": getattr(tally, k) for k in FIGURE_NAMES}
    out.update({f"{prefix}/share/{label.replace(' ', '_')}": v for label, v in tally.shares().items()})
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

    def record(self, record: RolloutRecord) -> list[tuple[str, int, dict[str, float]]]:
        """Count one rollout; returns the (role, step, summary) of earlier steps this closes."""
        role, step = record.role, int(record.step)
        earlier = [key for key in sorted(self._tallies) if key[0] == role and key[1] < step]
        closed = [item for key in earlier if (item := self.close(*key)) is not None]
        self._tallies.setdefault((role, step), StepTally()).add(record)
        return closed

    def record_judge(self, role: str, step: int, window: Mapping[str, float], worker: str) -> None:
        self._tallies.setdefault((role, int(step)), StepTally()).add_judge_window(window, worker)

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

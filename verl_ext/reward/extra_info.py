"""``reward_extra_info``: the per-rollout values the reward hands back to verl.

verl builds arrays from the first rollout's keys, so every rollout must carry the same keys
(``EXTRA_INFO_KEYS``). verl logs their per-data-source means for validation; DAPO's dynamic
sampling filters groups on one of them (``algorithm.filter_groups.metric=score``); the
SpeciaRL trainer mode writes them into the training rollout dump.
"""

from __future__ import annotations

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade, GradeStatus

#: ``reward_extra_info`` keys, identical for every rollout.
EXTRA_INFO_KEYS = (
    "score", "category", "correct", "specific", "parse_ok", "judge_error",
    "group_size_seen", "group_timed_out",
    *(f"is_{c.label.replace(' ', '_')}" for c in Category),
)


def extra_info(grade: Grade, code: int, reward: float, group_size_seen: int, group_timed_out: bool) -> dict[str, float]:
    """The values of one rollout, in ``EXTRA_INFO_KEYS`` order."""
    category = grade.category
    info = {
        "score": float(reward),
        "category": float(code),
        "correct": float(bool(category is not None and category.is_correct)),
        "specific": float(bool(category is not None and category.is_specific)),
        "parse_ok": float(grade.status is not GradeStatus.PARSE_FAILURE),
        "judge_error": float(grade.status is GradeStatus.JUDGE_ERROR),
        "group_size_seen": float(group_size_seen),
        "group_timed_out": float(group_timed_out),
    }
    for c in Category:
        info[f"is_{c.label.replace(' ', '_')}"] = float(category is c)
    return info

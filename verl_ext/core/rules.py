"""Reward rules as pure functions over the grades of one group.

``best_in_group_rewards`` is the paper's rule (docs/reward.md): the best
judged category of the group sets a reference level c*; rollouts that reach it score 1,
the others 0; if every judged rollout is wrong, all score 0. Specific and more specific
are one level. Parse failures score -1, judge errors 0, and neither takes part in c*.

The static rules (the paper's RFT and graded baselines) grade each rollout alone. The
label-noise ablation perturbs a judged category before any rule sees it.
"""

from __future__ import annotations

import random
from typing import Mapping, Optional, Sequence

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade, GradeStatus

PARSE_FAILURE_REWARD = -1.0
JUDGE_ERROR_REWARD = 0.0

#: Static maps from the original code; ``binary`` is the paper's RFT baseline (``reward3``).
STATIC_REWARD_MAPS: dict[str, dict[Category, float]] = {
    "binary": {
        Category.MORE_SPECIFIC: 1.0, Category.SPECIFIC: 1.0, Category.LESS_SPECIFIC: 0.0,
        Category.GENERIC: 0.0, Category.ABSTAIN: 0.0, Category.WRONG: 0.0,
    },
    "scala1": {
        Category.MORE_SPECIFIC: 1.0, Category.SPECIFIC: 1.0, Category.LESS_SPECIFIC: 0.75,
        Category.GENERIC: 0.5, Category.ABSTAIN: 0.25, Category.WRONG: 0.0,
    },
    "scala2": {
        Category.MORE_SPECIFIC: 1.0, Category.SPECIFIC: 1.0, Category.LESS_SPECIFIC: 0.75,
        Category.GENERIC: 0.5, Category.ABSTAIN: 0.0, Category.WRONG: 0.0,
    },
    "scala3": {
        Category.MORE_SPECIFIC: 1.0, Category.SPECIFIC: 1.0, Category.LESS_SPECIFIC: 0.75,
        Category.GENERIC: 0.0, Category.ABSTAIN: 0.0, Category.WRONG: 0.0,
    },
}


def reference_level(grades: Sequence[Grade]) -> Optional[int]:
    """c*: the best training level among the judged grades, or ``None`` if none was judged."""
    levels = [g.category.training_level for g in grades if g.is_judged]
    return max(levels) if levels else None


def best_in_group_reward(grade: Grade, level: Optional[int]) -> float:
    """The reward of one rollout given its group's reference level ``level`` (c*)."""
    if grade.status is GradeStatus.PARSE_FAILURE:
        return PARSE_FAILURE_REWARD
    if grade.status is GradeStatus.JUDGE_ERROR:
        return JUDGE_ERROR_REWARD
    assert level is not None  # a judged grade is itself a candidate for c*
    if level == Category.WRONG.training_level:
        return 0.0
    return 1.0 if grade.category.training_level >= level else 0.0


def best_in_group_rewards(grades: Sequence[Grade]) -> list[float]:
    """The paper's rule applied to one whole group, in the order of ``grades``."""
    level = reference_level(grades)
    return [best_in_group_reward(g, level) for g in grades]


def reward_known_alone(grade: Grade) -> Optional[float]:
    """The best-in-group reward when it does not depend on the siblings, else ``None``.

    A parse failure (-1), a judge error (0), a wrong answer (0 whatever c* is) and a
    specific or more specific answer (1: nothing can beat it) need no siblings. Only
    abstain, generic and less specific answers must wait to learn c*.
    """
    if not grade.is_judged:
        return best_in_group_reward(grade, None)
    if grade.category is Category.WRONG:
        return 0.0
    if grade.category.is_specific:
        return 1.0
    return None


def static_reward(grade: Grade, reward_map: Mapping[Category, float]) -> float:
    """A per-rollout reward from a fixed map; parse failures -1, judge errors 0."""
    if grade.status is GradeStatus.PARSE_FAILURE:
        return PARSE_FAILURE_REWARD
    if grade.status is GradeStatus.JUDGE_ERROR:
        return JUDGE_ERROR_REWARD
    return float(reward_map[grade.category])


#: The ladder the noise ablation moves along; more specific is first mapped to specific.
_NOISE_LADDER = (Category.WRONG, Category.ABSTAIN, Category.GENERIC, Category.LESS_SPECIFIC, Category.SPECIFIC)


def perturb_category(category: Category, p: float, rng: random.Random) -> Category:
    """Label-noise ablation: with probability ``p`` move one step along the ladder.

    Interior categories move up or down with equal chance; specific (and more specific)
    can only move down, wrong only up. Without noise the category is returned unchanged,
    more specific included.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"noise probability must be in [0, 1], got {p}")
    if rng.random() >= p:
        return category
    position = _NOISE_LADDER.index(min(category, Category.SPECIFIC))
    if position == 0:
        step = 1
    elif position == len(_NOISE_LADDER) - 1:
        step = -1
    else:
        step = rng.choice((-1, 1))
    return _NOISE_LADDER[position + step]

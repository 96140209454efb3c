"""Best-of-N oracle selection: the best grade per image among N samples.

Best-of-N uses the ground truth (through the judge's grades) to pick, for each image, the
sample with the best *evaluation rank* (the paper's Best-of-64 upper bound). It is an upper
bound that measures what the model can produce when sampled, not a method one can deploy.

Evaluation ranks, lower is better: more specific 1, specific 2, less specific 3, generic 4,
abstain 5, wrong 6, parse failure 100, judge error 101. Unlike the training reward,
evaluation keeps *more specific* above *specific*. Ties go to the lowest sample index, so
the selection is deterministic.
"""

from __future__ import annotations

from typing import Sequence

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade, GradeStatus

#: Evaluation rank of each judged category (lower is better).
EVALUATION_RANK: dict[Category, int] = {
    Category.MORE_SPECIFIC: 1,
    Category.SPECIFIC: 2,
    Category.LESS_SPECIFIC: 3,
    Category.GENERIC: 4,
    Category.ABSTAIN: 5,
    Category.WRONG: 6,
}
PARSE_FAILURE_RANK = 100
JUDGE_ERROR_RANK = 101


def evaluation_rank(grade: Grade) -> int:
    """The evaluation rank of one grade; judged categories first, then failures."""
    if grade.status is GradeStatus.PARSE_FAILURE:
        return PARSE_FAILURE_RANK
    if grade.status is GradeStatus.JUDGE_ERROR:
        return JUDGE_ERROR_RANK
    return EVALUATION_RANK[grade.category]


def best_of_n_index(grades: Sequence[Grade]) -> int:
    """Index of the best-ranked grade among one image's samples; ties go to the lowest index."""
    if not grades:
        raise ValueError("best-of-N needs at least one sample per image")
    return min(range(len(grades)), key=lambda i: (evaluation_rank(grades[i]), i))


def best_of_n(grades: Sequence[Grade]) -> Grade:
    """The best grade among one image's samples (see :func:`best_of_n_index`)."""
    return grades[best_of_n_index(grades)]


def best_of_n_per_image(grades_per_image: Sequence[Sequence[Grade]]) -> list[Grade]:
    """One selected grade per image, in input order."""
    return [best_of_n(grades) for grades in grades_per_image]

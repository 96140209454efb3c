"""Correctness, specificity and HM from grade tallies (inferred paper definitions)."""

import pytest

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade
from verl_ext.core.metrics import GradeTally, average_summaries, harmonic_mean


def test_hand_computed_fixture():
    grades = (
        [Grade.judged(Category.SPECIFIC)] * 4
        + [Grade.judged(Category.MORE_SPECIFIC)]
        + [Grade.judged(Category.GENERIC)] * 2
        + [Grade.judged(Category.LESS_SPECIFIC)]
        + [Grade.judged(Category.WRONG)]
        + [Grade.judged(Category.ABSTAIN)]
        + [Grade.parse_failure()] * 2
        + [Grade.judge_error()] * 3
    )
    tally = GradeTally.of(grades)
    assert tally.graded == 12  # judge errors are left out
    assert tally.correctness == pytest.approx(8 / 12)
    assert tally.specificity == pytest.approx(5 / 8)
    assert tally.hm == pytest.approx(2 * (8 / 12) * (5 / 8) / (8 / 12 + 5 / 8))
    shares = tally.shares()
    assert shares["specific"] == pytest.approx(4 / 12)
    assert shares["parse failure"] == pytest.approx(2 / 12)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert tally.summary()["n_judge_errors"] == 3


def test_empty_tally_is_all_zero():
    summary = GradeTally().summary()
    assert summary["correctness"] == summary["specificity"] == summary["hm"] == 0.0


def test_harmonic_mean_edge_cases():
    assert harmonic_mean(0.0, 0.0) == 0.0
    assert harmonic_mean(1.0, 1.0) == 1.0
    assert harmonic_mean(0.742, 0.846) == pytest.approx(0.7906, abs=1e-4)


def test_group_average_is_unweighted_over_present_datasets():
    summaries = {"a": {"correctness": 1.0, "specificity": 0.5, "hm": 0.6}, "b": {"correctness": 0.5, "specificity": 0.5, "hm": 0.4}}
    avg = average_summaries(summaries, ["a", "b", "missing"])
    assert avg == pytest.approx({"correctness": 0.75, "specificity": 0.5, "hm": 0.5})
    assert average_summaries(summaries, ["missing"]) == {}

"""Best-of-N oracle selection (pure core)."""

from hypothesis import given
from hypothesis import strategies as st

from verl_ext.core.best_of_n import (
    JUDGE_ERROR_RANK,
    PARSE_FAILURE_RANK,
    best_of_n,
    best_of_n_index,
    best_of_n_per_image,
    evaluation_rank,
)
from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade

W, A, G, L, S, M = (Grade.judged(c) for c in Category)
PF, JE = Grade.parse_failure(), Grade.judge_error()

grades = st.one_of(st.sampled_from(list(Category)).map(Grade.judged), st.just(PF), st.just(JE))


def test_evaluation_order_puts_more_specific_above_specific_and_failures_last():
    ordered = [M, S, L, G, A, W, PF, JE]
    ranks = [evaluation_rank(g) for g in ordered]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)
    assert evaluation_rank(PF) == PARSE_FAILURE_RANK and evaluation_rank(JE) == JUDGE_ERROR_RANK


def test_more_specific_beats_an_earlier_specific():
    assert best_of_n_index([S, W, M, S]) == 2


def test_wrong_beats_parse_failure_and_judge_error():
    assert best_of_n([PF, JE, W]) == W


def test_ties_go_to_the_lowest_index():
    assert best_of_n_index([G, L, W, L]) == 1


def test_per_image_keeps_image_order():
    assert best_of_n_per_image([[W, G], [PF], [A, S]]) == [G, PF, S]


@given(st.lists(grades, min_size=1, max_size=12))
def test_selection_is_the_first_sample_with_the_minimum_rank(samples):
    index = best_of_n_index(samples)
    ranks = [evaluation_rank(g) for g in samples]
    assert ranks[index] == min(ranks)
    assert all(r > ranks[index] for r in ranks[:index])


def test_empty_sample_list_is_an_error():
    import pytest

    with pytest.raises(ValueError, match="at least one sample"):
        best_of_n_index([])

"""Reward rules of the pure core: best-in-group, static maps and label noise."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verl_ext.core.categories import Category
from verl_ext.core.grades import Grade
from verl_ext.core.rules import (
    STATIC_REWARD_MAPS,
    best_in_group_rewards,
    perturb_category,
    reference_level,
    reward_known_alone,
    static_reward,
)

S, MS, LS, G, A, W = (Category.SPECIFIC, Category.MORE_SPECIFIC, Category.LESS_SPECIFIC,
                      Category.GENERIC, Category.ABSTAIN, Category.WRONG)
J = Grade.judged
PF = Grade.parse_failure()
JE = Grade.judge_error()

grades = st.one_of(
    st.sampled_from(list(Category)).map(Grade.judged),
    st.just(PF),
    st.just(JE),
)
groups = st.lists(grades, min_size=1, max_size=16)


def test_paper_example_group():
    assert best_in_group_rewards([J(S), J(LS), J(W), PF]) == [1.0, 0.0, 0.0, -1.0]


def test_specific_and_more_specific_are_one_level():
    assert best_in_group_rewards([J(MS), J(S), J(LS)]) == [1.0, 1.0, 0.0]


def test_all_wrong_scores_zero_and_parse_failures_keep_minus_one():
    assert best_in_group_rewards([J(W), J(W), PF]) == [0.0, 0.0, -1.0]


def test_abstain_beats_wrong_when_best_is_abstain():
    assert best_in_group_rewards([J(A), J(W), J(A)]) == [1.0, 0.0, 1.0]


def test_generic_reference_level():
    assert best_in_group_rewards([J(G), J(A), J(W), J(G)]) == [1.0, 0.0, 0.0, 1.0]


def test_judge_error_takes_no_part_in_reference_level():
    assert reference_level([JE, J(G)]) == G.training_level
    assert best_in_group_rewards([JE, J(G), J(A)]) == [0.0, 1.0, 0.0]


def test_group_of_only_failures():
    assert best_in_group_rewards([PF, JE]) == [-1.0, 0.0]


@given(groups)
def test_rewards_are_in_minus_one_zero_one(group):
    assert set(best_in_group_rewards(group)) <= {-1.0, 0.0, 1.0}


@given(groups, st.randoms())
def test_rule_is_invariant_to_rollout_order(group, rnd):
    order = list(range(len(group)))
    rnd.shuffle(order)
    rewards = best_in_group_rewards(group)
    shuffled = best_in_group_rewards([group[i] for i in order])
    assert shuffled == [rewards[i] for i in order]


@given(groups)
def test_best_not_wrong_implies_a_reward_of_one(group):
    level = reference_level(group)
    if level is not None and level > W.training_level:
        assert 1.0 in best_in_group_rewards(group)


@given(st.sampled_from(list(Category)), st.integers(1, 12))
def test_same_category_gives_equal_rewards(category, n):
    assert len(set(best_in_group_rewards([J(category)] * n))) == 1


@given(groups)
def test_early_resolution_agrees_with_whole_group(group):
    final = best_in_group_rewards(group)
    for i, grade in enumerate(group):
        alone = reward_known_alone(grade)
        if alone is not None:
            assert alone == final[i]


def test_static_binary_map_is_rft_baseline():
    rewards = [static_reward(g, STATIC_REWARD_MAPS["binary"]) for g in (J(MS), J(S), J(LS), J(G), J(A), J(W), PF, JE)]
    assert rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0]


@pytest.mark.parametrize(
    "name,expected",
    [("scala1", [1, 1, 0.75, 0.5, 0.25, 0]), ("scala2", [1, 1, 0.75, 0.5, 0, 0]), ("scala3", [1, 1, 0.75, 0, 0, 0])],
)
def test_graded_maps(name, expected):
    order = (MS, S, LS, G, A, W)
    assert [static_reward(J(c), STATIC_REWARD_MAPS[name]) for c in order] == expected


def test_noise_zero_never_changes():
    rng = random.Random(0)
    assert all(perturb_category(c, 0.0, rng) is c for c in Category for _ in range(50))


def test_noise_moves_one_step_with_forced_ends():
    rng = random.Random(1)
    assert perturb_category(S, 1.0, rng) is LS
    assert perturb_category(MS, 1.0, rng) is LS
    assert perturb_category(W, 1.0, rng) is A
    for _ in range(50):
        assert perturb_category(G, 1.0, rng) in (A, LS)


def test_noise_is_seeded_and_rate_matches():
    first = [perturb_category(G, 0.25, random.Random(f"seed/{i}")) for i in range(4000)]
    again = [perturb_category(G, 0.25, random.Random(f"seed/{i}")) for i in range(4000)]
    assert first == again
    moved = sum(c is not G for c in first) / len(first)
    assert 0.22 < moved < 0.28


def test_noise_rejects_bad_probability():
    with pytest.raises(ValueError, match="probability"):
        perturb_category(G, 1.5, random.Random(0))

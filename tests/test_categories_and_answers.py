"""The pure core: category parsing, answer extraction and label normalisation."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from verl_ext.core.answer import MAX_ANSWER_CHARS, extract_answer, normalise_label
from verl_ext.core.categories import CATEGORY_LABELS, Category, UnknownCategoryError, parse_category, try_parse_category


def test_total_order_worst_to_best():
    assert list(Category) == sorted(Category)
    assert Category.WRONG < Category.ABSTAIN < Category.GENERIC < Category.LESS_SPECIFIC
    assert Category.LESS_SPECIFIC < Category.SPECIFIC < Category.MORE_SPECIFIC


def test_training_level_merges_specific_and_more_specific():
    assert Category.SPECIFIC.training_level == Category.MORE_SPECIFIC.training_level
    assert Category.LESS_SPECIFIC.training_level < Category.SPECIFIC.training_level


@pytest.mark.parametrize(
    "text,expected",
    [
        ("specific", Category.SPECIFIC),
        ("  More Specific \n", Category.MORE_SPECIFIC),
        ("LESS_SPECIFIC", Category.LESS_SPECIFIC),
        ("less-specific.", Category.LESS_SPECIFIC),
        ('"generic"', Category.GENERIC),
        ("Abstain", Category.ABSTAIN),
        ("wrong", Category.WRONG),
    ],
)
def test_parse_category_is_tolerant(text, expected):
    assert parse_category(text) is expected


@pytest.mark.parametrize("text", ["", "specificity", "correct", "the answer is specific", "very specific"])
def test_parse_category_rejects_other_text(text):
    assert try_parse_category(text) is None
    with pytest.raises(UnknownCategoryError):
        parse_category(text)


def test_labels_round_trip():
    assert [parse_category(label) for label in CATEGORY_LABELS] == list(Category)


@pytest.mark.parametrize(
    "response,expected",
    [
        ("<think>a bird</think><answer>Golden-winged Warbler</answer>", "Golden-winged Warbler"),
        ("<ANSWER>\n  Samoyed \n</Answer>", "Samoyed"),
        ("< answer >dog</ answer >", "dog"),
        ("<answer>first</answer> then <answer>second</answer>", "first"),
        ("<answer>None</answer>", "None"),
        ("<answer>Épervier d'Europe</answer>", "Épervier d'Europe"),
    ],
)
def test_extract_answer_takes_first_complete_tag(response, expected):
    assert extract_answer(response) == expected


@pytest.mark.parametrize(
    "response",
    [
        "no tags at all",
        "<answer>   </answer>",
        "<answer></answer>",
        "<think>long reasoning</think><answer>Black-footed Alba",  # truncated before </answer>
        "</answer>backwards<answer>",
        "<answer>" + "x" * (MAX_ANSWER_CHARS + 1) + "</answer>",
    ],
)
def test_extract_answer_parse_failures(response):
    assert extract_answer(response) is None


def test_extract_answer_handles_very_long_responses():
    response = "<think>" + "reasoning " * 50_000 + "</think><answer>Cardinal</answer>"
    assert extract_answer(response) == "Cardinal"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("F/A-18 Hornet", "f a-18 hornet"),
        ("Brewer's_Blackbird", "brewer s blackbird"),
        ("  Golden-winged   Warbler. ", "golden-winged warbler"),
        ("Boeing 737–800", "boeing 737–800"),  # en dash is Unicode Pd and survives
        ("Crème Brûlée!", "crème brûlée"),
        ("Cre\u0300me", "crème"),  # combining accent composes first
    ],
)
def test_normalise_label(text, expected):
    assert normalise_label(text) == expected


@given(st.text())
def test_normalise_is_idempotent_and_clean(text):
    once = normalise_label(text)
    assert normalise_label(once) == once
    assert once == once.strip() and "  " not in once
    assert once == once.lower()

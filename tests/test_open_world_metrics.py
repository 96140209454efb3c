"""Protocol 2's per-sample rules (``core.open_world``) on hand-checkable cases: TI, LI, CS concepts, means."""

import pytest

from verl_ext.core.open_world import (
    CONCEPT_SKIP, OpenWorldTally, average_open_world, concept_candidates, concept_similarity, llm_inclusion,
    open_world_prediction, text_inclusion,
)
from verl_ext.eval.open_world import parse_metrics


@pytest.mark.parametrize("reference, prediction, expected", [
    ("pink primrose", "This is a Pink Primrose.", 1.0),  # a full sentence, any case
    ("apple pie", "a slice of pie", 0.0),
    ("2012 Acura TL Sedan", "Acura TL sedan", 0.0),  # why very fine-grained TI is low
    ("can", "trash can", 1.0),  # no word boundaries
    ("sweet pea", "sweet peas", 1.0),
    ("sweet peas", "sweet pea", 0.0),
    ("707-320", "Boeing 707 320", 0.0),  # punctuation must match
    ("Crème Brûlée", "a CRÈME BRÛLÉE with berries", 1.0),  # unicode lower-casing
    ("creme brulee", "crème brûlée", 0.0),  # no accent folding
    ("crème brûlée", "cre\u0300me bru\u0302le\u0301e", 0.0),  # nor NFC normalisation, as in the reference
    ("pizza", "", 0.0),  # an empty prediction includes nothing
    ("  Pizza ", " pizza ", 1.0),  # both are stripped
])
def test_text_inclusion(reference, prediction, expected):
    assert text_inclusion(reference, prediction) == expected


def test_text_inclusion_refuses_an_empty_reference():
    with pytest.raises(ValueError, match="reference is empty"):
        text_inclusion(" ", "anything")


@pytest.mark.parametrize("reply, expected", [("1", 1.0), ("0", 0.0), (" 1", 0.0), ("1.", 0.0), ("1\n", 0.0),
                                             ("", 0.0), (None, 0.0), ("yes", 0.0)])
def test_llm_inclusion_scores_only_an_exact_one(reply, expected):
    assert llm_inclusion(reply) == expected


def test_concepts_of_a_full_sentence_drop_articles_and_photo_words():
    chunks = ["This", "a photo", "a pink primrose"]  # what a parser finds in the sentence
    assert concept_candidates("This is a photo of a pink primrose.", chunks, []) == [
        "pink primrose", "This is a photo of a pink primrose."]


def test_concepts_remove_one_prefix_skip_uninformative_ones_and_keep_the_prediction_as_written():
    prediction = "Its wings: The Boeing 737 of Lufthansa, seen by them"
    chunks = ["Its wings", "The Boeing 737", "Lufthansa", "them", "the the ship"]
    entities = ["Boeing", "Lufthansa", "737", "ONE", "Ten"]
    assert concept_candidates(prediction, chunks, entities) == [
        "wings", "boeing 737", "lufthansa", "the ship", "boeing", "737", prediction]
    assert {"one", "ten", "them", "this photo", "why"} <= CONCEPT_SKIP


def test_an_empty_prediction_has_no_concepts_and_no_concept_similarity():
    assert concept_candidates("", [], []) == [] and concept_candidates("   ", [], []) == []
    with pytest.raises(ValueError, match="no concepts"):
        concept_similarity([])


def test_unicode_concepts_are_lower_cased_but_otherwise_kept():
    assert concept_candidates("Une crème brûlée", ["Une crème brûlée"], ["Crème"]) == [
        "une crème brûlée", "crème", "Une crème brûlée"]


def test_concept_similarity_is_the_largest_cosine():
    assert concept_similarity([0.2, 0.9, -0.1]) == 0.9


@pytest.mark.parametrize("response, source, expected", [
    ("<think>hm</think><answer> pink primrose </answer>", "answer", "pink primrose"),
    ("<answer>  </answer>", "answer", None),  # an empty answer is a parse failure
    ("no tags at all", "answer", None),
    ("  A Photo of a rose. ", "response", "A Photo of a rose."),
    ("", "response", None),
])
def test_the_prediction_scored_is_the_answer_or_the_whole_response(response, source, expected):
    assert open_world_prediction(response, source) == expected


def test_means_count_parse_failures_as_zero_and_leave_li_errors_out_of_li_only():
    tally = OpenWorldTally()
    tally.add(1.0, 0.9, 1.0, 1.0)
    tally.add(0.0, 0.5, 0.7, None)  # its LI judge failed
    tally.add_parse_failure()
    summary = tally.summary()
    assert summary["ti"] == pytest.approx(1 / 3) and summary["ss"] == pytest.approx(1.4 / 3)
    assert summary["cs"] == pytest.approx(1.7 / 3) and summary["li"] == pytest.approx(1 / 2)
    assert (summary["n_samples"], summary["n_parse_failures"], summary["n_li_errors"]) == (3, 1, 1)
    assert set(OpenWorldTally().summary(["ti"])) == {"ti", "n_samples", "n_parse_failures", "n_li_errors"}


def test_group_averages_are_unweighted_over_datasets():
    per_dataset = {"food101": {"ti": 0.9, "ss": 0.5}, "flowers102": {"ti": 0.1, "ss": 0.3}}
    assert average_open_world(per_dataset, ["flowers102", "food101", "oxford_pets"]) == pytest.approx(
        {"ti": 0.5, "ss": 0.4})


def test_metrics_option_expands_owc_and_rejects_unknown_names():
    assert parse_metrics("judge,owc") == ("judge", "ti", "li", "ss", "cs")
    assert parse_metrics("cs, TI") == ("ti", "cs")
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        parse_metrics("judge,bleu")

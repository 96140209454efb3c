"""The open-world classification metrics of Conti et al. (ICCV 2025): the evaluation's protocol 2.

Each sample is scored on two strings, the **reference** (the dataset's class name) and the
**prediction**; no synonyms, class list or hierarchy. The definitions follow the public
``lmms-owc`` code (``altndrr/lmms-owc`` at commit ``a992d2d6``: ``src/data/metrics/_instance.py``,
``_group.py`` and ``src/data/pipelines/text/_text.py``), re-written here as plain functions:

* **TI**, text inclusion: 1 if the stripped, lower-cased reference is a substring of the
  stripped, lower-cased prediction, else 0. No word boundaries and no other normalisation
  ("sweet pea" is in "sweet peas"; punctuation must match).
* **LI**, LLM inclusion: an LLM is asked whether the prediction describes or includes the
  reference; the score is 1 only when its reply is exactly ``"1"`` (``" 1"`` and ``"1."`` are 0).
* **SS**, semantic similarity: the cosine of the sentence embeddings of the reference and the
  whole prediction.
* **CS**, concept similarity: the largest cosine between the reference and the *concepts* of
  the prediction (:func:`concept_candidates`), the whole prediction among them, so CS >= SS.

A dataset's score is the mean over its samples (a fraction; tables show x100). What is ours,
not the reference's: a prediction that failed to parse (no ``<answer>``, or an empty one)
scores 0 on all four metrics and is counted; a sample whose LI judge failed is left out of
the LI mean only, and counted. The embedding and parsing models are run by the I/O layer
(``verl_ext.eval.open_world``); this module only does the arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Sequence

from verl_ext.core.answer import extract_answer

#: At most one of these is removed from the start of a concept (the first that matches).
CONCEPT_PREFIXES = ("a ", "an ", "the ", "his ", "her ", "its ", "their ")

#: Concepts that say nothing about the class: numbers, articles, photo words, pronouns, question words.
CONCEPT_SKIP = frozenset(
    [str(n) for n in range(1, 11)]
    + ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    + ["*", "a", "the", "image", "object", "photo", "type", "this photo"]
    + ["it", "they", "them", "that", "this", "those", "some"]
    + ["which", "who", "whom", "whose", "where", "when", "what", "why", "how"]
)


def open_world_prediction(response: str, source: str = "answer") -> Optional[str]:
    """The text protocol 2 scores: the ``<answer>`` content, or the whole response; None = parse failure.

    >>> open_world_prediction("<think>a bird</think><answer> Laysan Albatross </answer>")
    'Laysan Albatross'
    >>> open_world_prediction("<think>a bird</think> no tags", "response")
    '<think>a bird</think> no tags'
    >>> open_world_prediction("   ", "response") is None
    True
    """
    if source == "answer":
        return extract_answer(response)
    if source == "response":
        return response.strip() or None
    raise ValueError(f"prediction source must be 'answer' or 'response', got {source!r}")


def text_inclusion(reference: str, prediction: str) -> float:
    """TI of one sample: 1.0 when the reference occurs in the prediction, ignoring case.

    >>> text_inclusion("pink primrose", "This is a Pink Primrose.")
    1.0
    >>> text_inclusion("apple pie", "a slice of pie")
    0.0
    >>> text_inclusion("2012 Acura TL Sedan", "Acura TL sedan")
    0.0
    """
    if not reference.strip():
        raise ValueError("text_inclusion: the reference is empty")
    return 1.0 if reference.strip().lower() in prediction.strip().lower() else 0.0


def llm_inclusion(reply: Optional[str]) -> float:
    """LI of one sample from the judge's reply: 1.0 only for exactly ``"1"``.

    >>> [llm_inclusion(r) for r in ("1", "0", " 1", "1.", "Yes")]
    [1.0, 0.0, 0.0, 0.0, 0.0]
    """
    return 1.0 if reply == "1" else 0.0


def _concept(text: str) -> Optional[str]:
    concept = text.lower()
    for prefix in CONCEPT_PREFIXES:
        if concept.startswith(prefix):
            concept = concept[len(prefix):]
            break
    return None if concept in CONCEPT_SKIP or not concept.strip() else concept


def concept_candidates(prediction: str, noun_chunks: Iterable[str], entities: Iterable[str]) -> list[str]:
    """The concepts CS compares with the reference, in order, without repeats.

    Every noun chunk, then every named entity of the prediction (both as a parser found them),
    lower-cased, with one leading article or possessive removed and the uninformative ones
    (:data:`CONCEPT_SKIP`) dropped; then the whole prediction as written. An empty prediction
    has no concepts.

    >>> concept_candidates("This is a photo of a pink primrose.", ["This", "a photo", "a pink primrose"], [])
    ['pink primrose', 'This is a photo of a pink primrose.']
    """
    concepts: list[str] = []
    for text in [*noun_chunks, *entities]:
        concept = _concept(text)
        if concept is not None and concept not in concepts:
            concepts.append(concept)
    if prediction.strip() and prediction not in concepts:
        concepts.append(prediction)
    return concepts


def concept_similarity(similarities: Sequence[float]) -> float:
    """CS of one sample: the largest reference-concept cosine (the whole prediction is a concept).

    >>> concept_similarity([0.42, 0.91, 0.37])
    0.91
    """
    if not similarities:
        raise ValueError("concept_similarity: no concepts (an empty prediction scores as a parse failure)")
    return max(similarities)


METRICS = ("ti", "li", "ss", "cs")


@dataclass
class OpenWorldTally:
    """Sums of the per-sample scores of one dataset; parse failures add zeros and are counted."""

    n: int = 0
    parse_failures: int = 0
    li_errors: int = 0
    ti: float = 0.0
    ss: float = 0.0
    cs: float = 0.0
    li: float = 0.0

    def add(self, ti: float, ss: float, cs: float, li: Optional[float]) -> None:
        """One parsed sample; ``li=None`` when its LI judge failed (or LI was not asked)."""
        self.n += 1
        self.ti, self.ss, self.cs = self.ti + ti, self.ss + ss, self.cs + cs
        if li is None:
            self.li_errors += 1
        else:
            self.li += li

    def add_parse_failure(self) -> None:
        self.n += 1
        self.parse_failures += 1

    def summary(self, metrics: Sequence[str] = METRICS) -> dict[str, float]:
        """Means of the ``metrics`` asked over the samples (LI over those with a score) and the counts.

        >>> tally = OpenWorldTally()
        >>> tally.add(1.0, 0.8, 0.9, 1.0); tally.add_parse_failure()
        >>> tally.summary()
        {'ti': 0.5, 'li': 0.5, 'ss': 0.4, 'cs': 0.45, 'n_samples': 2.0, 'n_parse_failures': 1.0, 'n_li_errors': 0.0}
        """
        scored = self.n - self.li_errors
        means = {"ti": self.ti / self.n if self.n else 0.0, "li": self.li / scored if scored else 0.0,
                 "ss": self.ss / self.n if self.n else 0.0, "cs": self.cs / self.n if self.n else 0.0}
        out = {m: means[m] for m in METRICS if m in metrics}
        out.update(n_samples=float(self.n), n_parse_failures=float(self.parse_failures),
                   n_li_errors=float(self.li_errors if "li" in metrics else 0))
        return out


def average_open_world(summaries: Mapping[str, Mapping[str, float]], members: Sequence[str]) -> dict[str, float]:
    """Unweighted mean over the group's datasets present, metric by metric (as for protocol 1)."""
    present = [summaries[m] for m in members if m in summaries]
    if not present:
        return {}
    return {k: sum(s[k] for s in present) / len(present) for k in METRICS if all(k in s for s in present)}

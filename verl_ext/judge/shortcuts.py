"""Verdicts that need no LLM: an exact match is specific, a refusal is abstain.

Both rules act on *normalised* strings (``core.answer.normalise_label``), so "Golden-winged
Warbler" and "golden winged-warbler"… are compared after punctuation and case are gone. They
are deterministic and free, and every use is counted in ``judge/short_circuits``.
"""

from __future__ import annotations

from typing import Optional

from verl_ext.core.categories import Category

#: Normalised predictions that decline to answer (apostrophes have become spaces).
ABSTAIN_ANSWERS = frozenset(
    {
        "",
        "none",
        "no",
        "n a",
        "na",
        "null",
        "nothing",
        "unknown",
        "unsure",
        "not sure",
        "i m not sure",
        "i am not sure",
        "no idea",
        "idk",
        "i don t know",
        "i do not know",
        "don t know",
        "do not know",
        "dont know",
        "i dont know",
        "cannot tell",
        "can t tell",
        "cant tell",
        "i cannot tell",
        "i can t tell",
        "cannot determine",
        "can t determine",
        "cannot be determined",
        "cannot identify",
        "can t identify",
        "unidentifiable",
        "undetermined",
        "not applicable",
        "none of the above",
    }
)


def short_circuit(ground_truth: str, prediction: str) -> Optional[Category]:
    """The category of a normalised pair when it is certain without a judge, else ``None``.

    A refusal is checked first, so a ground truth that happens to read "none" still makes a
    "none" prediction an abstention rather than a match.
    """
    if prediction in ABSTAIN_ANSWERS:
        return Category.ABSTAIN
    if prediction == ground_truth:
        return Category.SPECIFIC
    return None

"""Answer extraction and label normalisation.

The policy writes its label inside ``<answer>…</answer>``. The reward reads only that
content, as the paper's reward does; a missing, empty or truncated answer is a
parse failure and scores -1.

Normalisation before judging, applied to both the prediction and the ground truth:

1. every character that is not a Unicode letter, a Unicode digit or a dash
   (Unicode category ``Pd``) becomes a space;
2. the text is lower-cased;
3. runs of whitespace collapse to one space, and the ends are stripped.

So ``"F/A-18 Hornet"`` becomes ``"f a-18 hornet"`` and ``"Brewer's_Blackbird"`` becomes
``"brewer s blackbird"``. Two strings that normalise to the same text are the same answer,
which is also what the judge cache and in-flight dedup key on.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Optional

_ANSWER = re.compile(r"<\s*answer\s*>(.*?)<\s*/\s*answer\s*>", re.IGNORECASE | re.DOTALL)

#: Answers longer than this (after normalisation) are treated as parse failures: a label is
#: a few words, and a runaway generation inside the tags is not one.
MAX_ANSWER_CHARS = 512


def extract_answer(response: str) -> Optional[str]:
    """Return the stripped content of the first complete ``<answer>`` tag, or ``None``.

    ``None`` means a parse failure: no tag, an unclosed (truncated) tag, or a tag whose
    content is empty or only whitespace, or longer than :data:`MAX_ANSWER_CHARS`.
    Tag names are matched case-insensitively and may contain inner whitespace.
    """
    match = _ANSWER.search(response)
    if match is None:
        return None
    content = match.group(1).strip()
    if not content or len(content) > MAX_ANSWER_CHARS:
        return None
    return content


def _keep(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in ("L", "N") or category == "Pd"


def normalise_label(text: str) -> str:
    """Normalise a label for judging and caching (see the module docstring).

    The text is first put in Unicode NFC form, so that a letter written with a combining
    accent counts as the same letter as its precomposed form.
    """
    kept = "".join(ch if _keep(ch) else " " for ch in unicodedata.normalize("NFC", text))
    return " ".join(kept.lower().split())

"""The judge prompt: a system rubric for the six categories and a one-pair user message.

Written in our own words from the SpeciaRL paper's description of the six categories and of
its judge (docs/judge.md has both). The
user message carries the normalised pair as a single JSON line, so any server (or the
scriptable test server) can read it back with :func:`parse_pair_from_user_message`.

:data:`PROMPT_VERSION` is part of every cache key: change it whenever the wording, the
examples or the message layout change, so that old verdicts are never reused for a new prompt.
"""

from __future__ import annotations

import json
from typing import Optional

from verl_ext.core.categories import CATEGORY_LABELS

#: Bump on any change to the text below (it keys the persistent cache).
PROMPT_VERSION = "speciarl-single-v1"

_RUBRIC = """\
You grade answers of an image classifier. You receive one JSON object with two fields:
"ground_truth", the true class name of the image, and "prediction", the classifier's answer.
Both are lower-case and stripped of punctuation. Decide how the prediction relates to the
ground truth and reply with exactly one of these category labels:

specific - the prediction names the same class as the ground truth: the same name, a
  spelling variant, or a true synonym; a common name and its scientific name count as the same.
  Examples: prediction "panthera leo" for ground truth "lion"; "passiflora" for "passion flower";
  "mallard duck" for "mallard".

less specific - the prediction is correct but names a close parent of the ground truth, one
  level or so above it: its genus, family, model family or product line.
  Examples: "warbler" for "golden-winged warbler"; "boeing 707" for "707-320";
  "tern" for "arctic tern".

generic - the prediction is correct but names a far broader class, several levels above
  the ground truth.
  Examples: "dog" for "samoyed"; "commercial airliner" for "757-200"; "flower" for "moon orchid".

more specific - the prediction is correct and names a subtype or an instance below the
  ground truth.
  Examples: "samoyed" for "dog"; "golden-winged warbler" for "warbler";
  "737-800" for "boeing 737".

wrong - the prediction is incorrect: a different class, a sibling class, something
  unrelated, contradictory or malformed text, or a hedge that lists several options.
  Examples: "cat" for "dog"; "blue-winged warbler" for "golden-winged warbler";
  "b1rd" for "bird"; "robin or cardinal" for "bird"; "prototype" for "boeing 717".

abstain - the prediction declines to answer.
  Examples: "none" for "lion"; "i don t know" for "arctic tern"; "cannot tell" for "707-320".

Reply with the label only, with no explanation and no punctuation."""

_INSTRUCTION = "Classify the following pair by the rules:"


def system_prompt() -> str:
    """The rubric sent as the system message."""
    return _RUBRIC


def user_message(ground_truth: str, prediction: str) -> str:
    """The user message: a short instruction, then the pair as one JSON line."""
    pair = json.dumps({"ground_truth": ground_truth, "prediction": prediction}, ensure_ascii=False)
    return f"{_INSTRUCTION}\n{pair}"


def build_messages(ground_truth: str, prediction: str) -> list[dict[str, str]]:
    """The chat messages for one (normalised) pair."""
    return [
        {"role": "system", "content": system_prompt()},
        {"role": "user", "content": user_message(ground_truth, prediction)},
    ]


def parse_pair_from_user_message(text: str) -> Optional[tuple[str, str]]:
    """Read ``(ground_truth, prediction)`` back from a user message built by :func:`user_message`.

    Returns ``None`` when no line holds a JSON object with both string fields. Used by the
    scriptable test server, and handy to inspect logged requests.
    """
    for line in reversed(text.splitlines()):
        line = line.strip()
        if not (line.startswith("{") and line.endswith("}")):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            gt, pred = obj.get("ground_truth"), obj.get("prediction")
            if isinstance(gt, str) and isinstance(pred, str):
                return gt, pred
    return None


#: The labels in the order the original service offered them for guided decoding.
CHOICE_ORDER: tuple[str, ...] = ("specific", "less specific", "generic", "more specific", "wrong", "abstain")

assert sorted(CHOICE_ORDER) == sorted(CATEGORY_LABELS)  # internal consistency, not user input

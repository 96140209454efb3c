"""What the scripted judge reads and writes: OpenAI chat bodies, replies, fault draws.

Kept apart from the server (``verl_ext.testing.judge_server``) so the HTTP life cycle and the
wire format can each be read on one screen. Test-only, like the server.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

from aiohttp import web

from verl_ext.core.answer import normalise_label
from verl_ext.core.categories import CATEGORY_LABELS, Category, try_parse_category
from verl_ext.judge.prompt import parse_pair_from_user_message

Label = Union[str, Category]
RuleTable = Union[Mapping[tuple[str, str], Label], Callable[[str, str], Label]]
InclusionRule = Callable[[str, str], str]


def substring_inclusion(reference: str, prediction: str) -> str:
    """The default inclusion rule: "1" when the reference occurs in the prediction (case ignored)."""
    return "1" if reference.lower() in prediction.lower() else "0"

FAULT_KINDS = ("ok", "5xx", "429", "hang", "garbage", "garbage_body", "drop")
GARBAGE_TEXTS = (
    "Sure! Looking at the two names, I would say they are somewhat related.",
    "As an AI language model I cannot classify this.",
    "specific or less specific",
    "{\"category\": \"very specific\"}",
)


@dataclass
class FaultRates:
    """Per-request fault probabilities; they are drawn in this order and must sum to <= 1."""

    error_5xx: float = 0.0
    rate_limit_429: float = 0.0
    hang: float = 0.0
    garbage: float = 0.0
    drop: float = 0.0

    def __post_init__(self) -> None:
        for name in ("error_5xx", "rate_limit_429", "hang", "garbage", "drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FaultRates.{name} must be in [0, 1], got {value}")
        if self.total() > 1.0 + 1e-9:
            raise ValueError(f"FaultRates must sum to <= 1, got {self.total()}")

    def total(self) -> float:
        return self.error_5xx + self.rate_limit_429 + self.hang + self.garbage + self.drop

    def draw(self, rng: random.Random) -> str:
        u = rng.random()
        for kind, p in (
            ("5xx", self.error_5xx),
            ("429", self.rate_limit_429),
            ("hang", self.hang),
            ("garbage", self.garbage),
            ("drop", self.drop),
        ):
            if u < p:
                return kind
            u -= p
        return "ok"


def label_of(value: Label) -> Category:
    if isinstance(value, Category):
        return value
    found = try_parse_category(str(value))
    if found is None:
        raise ValueError(f"rule table label {value!r} is not one of {CATEGORY_LABELS}")
    return found


def user_text(body: dict[str, Any]) -> Optional[str]:
    """The text of the last user message (OpenAI content parts joined)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # OpenAI content parts
                content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
            return content if isinstance(content, str) else None
    return None


def pair_from_body(body: dict[str, Any]) -> Optional[tuple[str, str]]:
    content = user_text(body)
    pair = parse_pair_from_user_message(content) if content is not None else None
    return (normalise_label(pair[0]), normalise_label(pair[1])) if pair is not None else None


def offered_choices(body: dict[str, Any]) -> Optional[list[str]]:
    structured = body.get("structured_outputs")
    if isinstance(structured, dict) and isinstance(structured.get("choice"), list):
        return [str(c) for c in structured["choice"]]
    if isinstance(body.get("guided_choice"), list):
        return [str(c) for c in body["guided_choice"]]
    return None


def completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-scripted-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 1, "total_tokens": 1},
    }


def unauthorised() -> web.Response:
    return web.json_response({"error": {"message": "missing or wrong API key"}}, status=401)


def format_label(body: dict[str, Any], label: str) -> str:
    """The reply text for ``label`` in the shape the request asked for (choice list, JSON schema, text)."""
    choices = offered_choices(body)
    if choices is not None and label not in choices:
        label = choices[0]
    response_format = body.get("response_format") or {}
    if isinstance(response_format, dict) and response_format.get("type") in ("json_schema", "json_object"):
        return json.dumps({"category": label})
    return label

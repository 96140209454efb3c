"""The OpenAI chat-completions request we send, and the strict reading of the reply.

Whatever constraint was requested, the reply is validated here: a server may silently ignore
a field it does not know (llama.cpp ignores vLLM's ``structured_outputs``), so a reply is
accepted only when it maps to exactly one of the six labels. :func:`response_text` sorts the
responses that carry no reply into one of three failures, which the client's retry loop
treats apart.
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional

import httpx

from verl_ext.core.categories import CATEGORY_LABELS, Category, try_parse_category
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.prompt import CHOICE_ORDER, build_messages

CATEGORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"category": {"type": "string", "enum": list(CHOICE_ORDER)}},
    "required": ["category"],
    "additionalProperties": False,
}

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
# Longest labels first so "less specific" is not also read as "specific".
_LABEL_SEARCH = re.compile(
    r"\b(" + "|".join(sorted((re.escape(l).replace(r"\ ", r"[\s_-]+") for l in CATEGORY_LABELS), key=len, reverse=True)) + r")\b",
    re.IGNORECASE,
)


class RetryableFailure(Exception):
    """A failure worth retrying: the endpoint is unhealthy (connection, timeout, 5xx, 429).

    ``metric`` names the ``judge/`` counter it goes to."""

    def __init__(self, reason: str, metric: str, retry_after_s: Optional[float] = None) -> None:
        super().__init__(reason)
        self.metric = metric
        self.retry_after_s = retry_after_s


class RejectedRequest(Exception):
    """A reply that retrying cannot fix (401, 403, 404, 400…): the configuration is wrong."""

    def __init__(self, reason: str, metric: Optional[str] = None) -> None:
        super().__init__(reason)
        self.metric = metric


class MalformedReply(Exception):
    """The server answered, but not with an answer to the question (e.g. not one of the six labels)."""


def request_body(config: JudgeConfig, model: str, ground_truth: str, prediction: str) -> dict[str, Any]:
    """The JSON body of one ``/chat/completions`` request for a normalised pair."""
    body: dict[str, Any] = {
        "model": model,
        "messages": build_messages(ground_truth, prediction),
        "temperature": 0,
        "max_tokens": config.reply_token_limit,
    }
    if config.send_chat_template_kwargs:
        body["chat_template_kwargs"] = {"enable_thinking": bool(config.enable_thinking)}
    if config.constraint == "choice":
        body["structured_outputs"] = {"choice": list(CHOICE_ORDER)}
    elif config.constraint == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "judge_category", "strict": True, "schema": CATEGORY_SCHEMA},
        }
    return body


def reply_text(payload: Any) -> Optional[str]:
    """The assistant text of a chat-completions response body, or ``None`` if it has none."""
    if not isinstance(payload, dict):
        return None
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    return content if isinstance(content, str) else None


def parse_reply(text: Optional[str], tolerant: bool = False) -> Optional[Category]:
    """The category in a reply, or ``None`` when it is not exactly one label.

    Accepted: a bare label (case, quotes, a final period tolerated), or a JSON object
    ``{"category": label}`` (also inside a code fence), after dropping a ``<think>`` block.
    With ``tolerant`` (the ``text`` constraint) a free-text reply that mentions exactly one
    distinct label is accepted too.
    """
    if text is None:
        return None
    text = _THINK.sub("", text).strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    if text.startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            value = obj.get("category")
            return try_parse_category(value) if isinstance(value, str) else None
    found = try_parse_category(text)
    if found is not None or not tolerant:
        return found
    mentioned = {try_parse_category(m.group(1)) for m in _LABEL_SEARCH.finditer(text)}
    mentioned.discard(None)
    return mentioned.pop() if len(mentioned) == 1 else None


def response_text(response: httpx.Response) -> Optional[str]:
    """The assistant text of a chat-completions response (``None`` when it has none), or the
    failure the response is (see the classes above); the judge task reads the text."""
    status = response.status_code
    if status == 429:
        raise RetryableFailure("HTTP 429 (rate limited)", "http_429", _retry_after(response))
    if status >= 500 or status == 408:
        raise RetryableFailure(f"HTTP {status}", "http_5xx")
    if status >= 400:
        raise RejectedRequest(f"HTTP {status}: {response.text[:200]}", "http_4xx")
    try:
        return reply_text(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise MalformedReply(f"body is not JSON: {response.text[:80]!r}") from None


def _retry_after(response: httpx.Response) -> Optional[float]:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

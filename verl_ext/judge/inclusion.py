"""LLM inclusion (LI): the judge task of protocol 2 of the evaluation.

An LLM reads the prediction and the reference and replies ``"1"`` when the prediction
describes or includes the reference (or a synonym), ``"0"`` otherwise; only an exact ``"1"``
scores 1 (``core.open_world.llm_inclusion``). The request reproduces the reference
implementation of Conti et al. (``altndrr/lmms-owc`` at ``a992d2d6``, which runs
Llama-3.2-3B-Instruct through transformers): one user message and no system message, filled
with (prediction, reference) in that order; the question line never changes, whatever prompt
the policy saw; greedy decoding with at most 16 new tokens; no output constraint, because a
constrained reply could not be anything but "1" or "0" and would then score differently. The
template is that implementation's measurement instrument and is reproduced word for word so
that LI stays comparable; pairs are sent as they are (stripped, not normalised).

The task has its own prompt version, so its answers never mix with category verdicts in a
shared sqlite cache, and the same HTTP client (retries, dedup, caches, budget) serves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from verl_ext.core.open_world import llm_inclusion
from verl_ext.judge.base import check_answer_or_error
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.task import JudgeTask, Pair

PROMPT_TEMPLATE = (
    "You are a model that determines whether an answer is a good reply to a question given also its target value."
    "\n\nThis is the question: What type of object is in this photo?\nThis is the answer: {prediction}\n"
    "This is the target value: {reference}\n\nIf the answer describes the target, reply positively. If the "
    "answer includes the target value or a synonym of it, reply positively. If the target is generic but it is "
    'related to the answer, reply positively. Reply only with "1" if yes, or "0" if no.'
)

#: Reply token limit of the reference implementation.
MAX_NEW_TOKENS = 16

_PAIR_IN_MESSAGE = re.compile(
    r"This is the answer: (?P<prediction>.*)\nThis is the target value: (?P<reference>.*?)\n\nIf the answer describes",
    re.DOTALL,
)


@dataclass(frozen=True)
class InclusionVerdict:
    """The LI judge's answer for one pair: ``score`` 1.0 or 0.0, or an error that says why there is none."""

    score: Optional[float]
    error: Optional[str] = None
    source: str = "llm"

    def __post_init__(self) -> None:
        check_answer_or_error(self.score, self.error, "a score")

    @property
    def ok(self) -> bool:
        return self.score is not None


def user_message(reference: str, prediction: str) -> str:
    """The one user message of an LI request."""
    return PROMPT_TEMPLATE.format(prediction=prediction, reference=reference)


def parse_pair_from_message(text: str) -> Optional[tuple[str, str]]:
    """``(reference, prediction)`` read back from :func:`user_message` (for test servers and logs)."""
    match = _PAIR_IN_MESSAGE.search(text)
    return (match["reference"], match["prediction"]) if match else None


class InclusionTask(JudgeTask):
    """LLM inclusion: a reply that is exactly "1" scores 1, any other reply 0."""

    name = "owc-inclusion-v1"
    modules = ("verl_ext.judge.inclusion", "verl_ext.core.open_world")

    def pair(self, reference: str, prediction: str) -> Pair:
        return reference.strip(), prediction.strip()

    def request_body(self, config: JudgeConfig, model: str, pair: Pair) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": user_message(*pair)}],
            "temperature": 0,
            "max_tokens": config.max_tokens or MAX_NEW_TOKENS,
        }
        if config.send_chat_template_kwargs:
            body["chat_template_kwargs"] = {"enable_thinking": bool(config.enable_thinking)}
        return body

    def read_reply(self, text: Optional[str], config: JudgeConfig) -> Optional[float]:
        return None if text is None else llm_inclusion(text)

    def cache_key(self, config: JudgeConfig) -> str:
        return f"{super().cache_key(config)}|max_tokens={config.max_tokens or MAX_NEW_TOKENS}"

    def encode(self, answer: float) -> str:
        return "1" if answer else "0"

    def decode(self, text: str) -> Optional[float]:
        return {"1": 1.0, "0": 0.0}.get(text)

    def verdict(self, answer: Optional[float], error: Optional[str], source: str) -> InclusionVerdict:
        return InclusionVerdict(answer, error, source)


#: The task of the LI metric.
INCLUSION = InclusionTask()

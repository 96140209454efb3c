"""What a judge is asked about one pair, and how its reply is read.

The HTTP client's machinery (short-circuits, LRU and sqlite caches, in-flight dedup, retries,
failover, circuit breakers, the failure budget) is the same whatever the question; a
:class:`JudgeTask` holds only the parts that differ. Two tasks exist:

- :data:`GRADING` (here): the six specificity categories, for the reward and protocol 1 of
  the evaluation;
- ``judge.inclusion.INCLUSION``: whether a prediction includes the reference (LLM inclusion,
  LI, in protocol 2 of the evaluation).

Each task names its own prompt version, which is part of every sqlite cache key, so the two
never read each other's answers even when they share a cache file.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from typing import Any, Optional

from verl_ext.core.answer import normalise_label
from verl_ext.core.categories import Category, try_parse_category
from verl_ext.judge.base import Verdict
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.prompt import PROMPT_VERSION
from verl_ext.judge.protocol import parse_reply, request_body
from verl_ext.judge.shortcuts import short_circuit

Pair = tuple[str, str]

# Labels repeat a lot within a step (N rollouts, several images per class); normalising is
# per-character Unicode work, so remember recent results.
_normalise = functools.lru_cache(maxsize=65_536)(normalise_label)


class JudgeTask(ABC):
    """The question a judge answers about a (reference, prediction) pair."""

    #: The prompt version: part of the sqlite cache key. Change it with the prompt.
    name: str
    #: The modules whose code decides this task's answers (prompt, reply parsing, shortcuts);
    #: the evaluation keys its judge caches on their source.
    modules: tuple[str, ...]

    @abstractmethod
    def pair(self, reference: str, prediction: str) -> Pair:
        """The pair as the judge sees it (also the key of the caches and of in-flight dedup)."""

    def shortcut(self, pair: Pair) -> Optional[Any]:
        """An answer that needs no LLM, or ``None``."""
        return None

    @abstractmethod
    def request_body(self, config: JudgeConfig, model: str, pair: Pair) -> dict[str, Any]:
        """The JSON body of the ``/chat/completions`` request."""

    @abstractmethod
    def read_reply(self, text: Optional[str], config: JudgeConfig) -> Optional[Any]:
        """The answer in the reply's text, or ``None`` when the reply is malformed (it is retried once)."""

    def cache_key(self, config: JudgeConfig) -> str:
        """The sqlite cache's prompt key: the prompt version plus the settings that change answers."""
        return f"{self.name}|thinking={int(config.enable_thinking)}"

    @abstractmethod
    def encode(self, answer: Any) -> str:
        """An answer as stored in the sqlite cache."""

    @abstractmethod
    def decode(self, text: str) -> Optional[Any]:
        """A stored answer, or ``None`` if it is not one this task gives."""

    @abstractmethod
    def verdict(self, answer: Optional[Any], error: Optional[str], source: str) -> Any:
        """What ``grade`` returns: the answer, or the error that says why there is none."""


class GradingTask(JudgeTask):
    """The six specificity categories (``judge.prompt``); pairs are normalised first."""

    name = PROMPT_VERSION
    modules = ("verl_ext.judge.task", "verl_ext.judge.prompt", "verl_ext.judge.protocol", "verl_ext.judge.shortcuts",
               "verl_ext.core.answer", "verl_ext.core.categories")

    def pair(self, reference: str, prediction: str) -> Pair:
        return _normalise(reference), _normalise(prediction)

    def shortcut(self, pair: Pair) -> Optional[Category]:
        return short_circuit(*pair)

    def request_body(self, config: JudgeConfig, model: str, pair: Pair) -> dict[str, Any]:
        return request_body(config, model, *pair)

    def read_reply(self, text: Optional[str], config: JudgeConfig) -> Optional[Category]:
        return parse_reply(text, tolerant=config.constraint == "text")

    def encode(self, answer: Category) -> str:
        return answer.label

    def decode(self, text: str) -> Optional[Category]:
        return try_parse_category(text)

    def verdict(self, answer: Optional[Category], error: Optional[str], source: str) -> Verdict:
        return Verdict(answer, error, source=source)


#: The task of the reward and of protocol 1.
GRADING = GradingTask()

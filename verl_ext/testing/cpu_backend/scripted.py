"""Scripted answer texts for the CPU rollout: real generation, then a known answer.

The offline kit's model has random weights, so it never writes an ``<answer>``: every reward
would be -1 and every GRPO advantage 0, which tests nothing downstream of the rollout. The
CPU rollout therefore always runs the model's real ``generate`` (so generation, weight sync
and the token path are exercised), and then, for most requests, replaces the text with one
drawn from a list the run is given (class names, a family name, "bird", "None", ...). What
the reward sees is then a realistic mix of wrong, generic, specific and abstaining answers.

Each prompt (its token ids and image bytes) is given a mode, seeded: a share of prompts gives
all its siblings one label (a uniform group, advantage 0), a share keeps the model's own text
for all of them (parse failures, -1), and the rest walk, per replica, through a seeded order
of the labels, so siblings served by one replica get different labels (verl's request ids are
random, so they cannot seed anything). The mode depends on the prompt alone, so which images
show which behaviour is the same on every run with the same data and seed, however requests are
spread over replicas; with one replica the labels repeat exactly too. Tests read the rollout
dump and check the reward of every rollout against the offline rule.
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from verl_ext.core.prompts import policy_response

#: The key under ``actor_rollout_ref.rollout.custom`` that holds these settings.
CUSTOM_KEY = "cpu_backend"


def scripted_response(label: str) -> str:
    """The text of a scripted rollout: the policy's format with a fixed reasoning line."""
    return policy_response("scripted", label)


@dataclass(frozen=True)
class ScriptSettings:
    """``actor_rollout_ref.rollout.custom.cpu_backend``: what the CPU rollout answers.

    ``answers``: labels to draw from (empty: keep every model output); ``raw_share``: share
    of prompts whose rollouts keep the model's own text (a parse failure with random weights);
    ``uniform_share``: share of prompts whose siblings all get the same answer;
    ``log_dir``: where the rollout servers and adapters write their JSONL logs (weight syncs
    with checksums, requests served).
    """

    answers: tuple[str, ...] = ()
    raw_share: float = 0.2
    uniform_share: float = 0.25
    seed: int = 0
    log_dir: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("raw_share", "uniform_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"actor_rollout_ref.rollout.custom.{CUSTOM_KEY}.{name} must be in [0, 1], got {value}")
        if self.raw_share + self.uniform_share > 1.0:
            raise ValueError(
                f"actor_rollout_ref.rollout.custom.{CUSTOM_KEY}: raw_share + uniform_share must be <= 1, "
                f"got {self.raw_share} + {self.uniform_share}"
            )

    @classmethod
    def from_rollout_config(cls, rollout_config: Any) -> "ScriptSettings":
        custom = getattr(rollout_config, "custom", None) or {}
        raw = dict(custom.get(CUSTOM_KEY) or {})
        answers_file = raw.pop("answers_file", None)
        answers = list(raw.pop("answers", None) or [])
        if answers_file:
            answers += json.loads(Path(answers_file).read_text(encoding="utf-8"))
        known = {"raw_share", "uniform_share", "seed", "log_dir"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(
                f"unknown key(s) under actor_rollout_ref.rollout.custom.{CUSTOM_KEY}: {', '.join(unknown)}; "
                f"known: answers, answers_file, {', '.join(sorted(known))}"
            )
        return cls(answers=tuple(str(a) for a in answers), **raw)


@dataclass
class AnswerScript:
    """Chooses, per request, whether to keep the model's text or which scripted label to send.

    One per rollout replica (``replica`` is its rank): it counts the visits of each prompt, so
    the labels of a prompt's varied siblings follow an order, not chance."""

    settings: ScriptSettings
    replica: int = 0
    _visits: collections.Counter = field(default_factory=collections.Counter, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # generate runs in threads

    @staticmethod
    def prompt_key(prompt_ids: Sequence[int], images: Sequence[Any]) -> str:
        digest = hashlib.sha256(json.dumps(list(map(int, prompt_ids))).encode())
        for image in images or ():
            digest.update(image.tobytes() if hasattr(image, "tobytes") else repr(image).encode())
        return digest.hexdigest()[:16]

    def mode(self, prompt_ids: Sequence[int], images: Sequence[Any]) -> str:
        """``uniform``, ``raw`` or ``varied``: what this prompt's rollouts get (seeded, per prompt)."""
        draw = random.Random(f"{self.settings.seed}/{self.prompt_key(prompt_ids, images)}").random()
        if draw < self.settings.uniform_share:
            return "uniform"
        if draw < self.settings.uniform_share + self.settings.raw_share:
            return "raw"
        return "varied"

    def choose(self, prompt_ids: Sequence[int], images: Sequence[Any]) -> Optional[str]:
        """The scripted label for this request, or ``None`` to keep the model's own text."""
        answers = self.settings.answers
        if not answers:
            return None
        mode = self.mode(prompt_ids, images)
        key = self.prompt_key(prompt_ids, images)
        if mode == "raw":
            return None
        if mode == "uniform":
            return random.Random(f"{self.settings.seed}/{key}/uniform").choice(answers)
        with self._lock:
            visit = self._visits[key]
            self._visits[key] += 1
        order = random.Random(f"{self.settings.seed}/{key}/{self.replica}").sample(answers, len(answers))
        return order[visit % len(order)]

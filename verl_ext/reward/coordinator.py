"""One Ray actor that hosts the :class:`GroupBook` and the per-step tallies for all workers.

Why a separate actor: siblings of a group land on different reward-loop workers (verl picks
one at random per trajectory), so their meeting point must be shared. The actor is created
with a very high ``max_concurrency`` so that waiting reports never queue behind its own cap;
the reward-loop workers' own cap (Ray's default of 1000 per async actor) is handled by the
manager's early resolution and by the start-up capacity check (see docs/architecture.md).

When only one reward-loop worker exists, the manager uses an in-process book instead and
never talks to Ray (``LocalCoordinator``), which is also what the unit tests use.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Mapping, Optional

from verl_ext.reward.group_book import GroupBook, GroupView
from verl_ext.reward.step_metrics import StepTally

logger = logging.getLogger(__name__)

#: Far above any realistic number of in-flight rollouts (256 prompts x 15 rollouts = 3,840).
COORDINATOR_MAX_CONCURRENCY = 100_000


class LocalCoordinator:
    """Group book and step tallies in the calling process (no Ray)."""

    def __init__(self, metrics_path: Optional[str] = None) -> None:
        self.book = GroupBook()
        self.tallies: dict[tuple[str, int], StepTally] = {}
        self.metrics_path = metrics_path
        self._last_key: Optional[tuple[str, int]] = None
        self._fatal: Optional[str] = None

    async def report(self, uid: str, session_id: int, size: int, level: Optional[int], wait: bool, timeout_s: float) -> GroupView:
        return await self.book.report(uid, session_id, size, level, wait, timeout_s)

    def record(self, role: str, step: int, code: int, reward: float, timed_out: bool, judge: Optional[Mapping[str, float]] = None) -> None:
        key = (role, int(step))
        if self._last_key is not None and key != self._last_key and self._last_key in self.tallies:
            self._flush(self._last_key)
        self._last_key = key
        self.tallies.setdefault(key, StepTally()).add(code, reward, timed_out, judge)

    def step_metrics(self, role: str, step: int) -> dict[str, float]:
        tally = self.tallies.get((role, int(step)))
        return tally.summary(f"speciarl/{role}") if tally else {}

    def stats(self) -> dict[str, int]:
        return {
            "waiting": self.book.waiting,
            "max_waiting": self.book.max_waiting,
            "timeouts": self.book.timeouts,
            "open_groups": self.book.open_groups,
        }

    def set_fatal(self, message: str) -> None:
        self._fatal = self._fatal or message

    def fatal(self) -> Optional[str]:
        return self._fatal

    def _flush(self, key: tuple[str, int]) -> None:
        role, step = key
        summary = self.step_metrics(role, step)
        brief = {k.rsplit("/", 1)[-1]: round(v, 4) for k, v in summary.items() if not k.startswith("judge/")}
        logger.warning("[speciarl] %s step %d: %s", role, step, brief)
        if self.metrics_path:
            os.makedirs(os.path.dirname(os.path.abspath(self.metrics_path)), exist_ok=True)
            with open(self.metrics_path, "a", encoding="utf-8") as sink:
                sink.write(json.dumps({"time": time.time(), "role": role, "step": step, **summary}) + "\n")


def get_ray_coordinator(name: str, metrics_path: Optional[str] = None) -> Any:
    """The named coordinator actor of this Ray job, created on first use by any worker."""
    import ray

    actor_cls = ray.remote(LocalCoordinator)
    return actor_cls.options(
        name=name,
        get_if_exists=True,
        max_concurrency=COORDINATOR_MAX_CONCURRENCY,
        num_cpus=0,
    ).remote(metrics_path)


class RayCoordinatorClient:
    """Async facade over the coordinator actor with the same methods as LocalCoordinator."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    async def report(self, uid: str, session_id: int, size: int, level: Optional[int], wait: bool, timeout_s: float) -> GroupView:
        return await self._handle.report.remote(uid, session_id, size, level, wait, timeout_s)

    def record(self, role: str, step: int, code: int, reward: float, timed_out: bool, judge: Optional[Mapping[str, float]] = None) -> None:
        self._handle.record.remote(role, step, code, reward, timed_out, judge)  # fire and forget

    async def step_metrics(self, role: str, step: int) -> dict[str, float]:
        return await self._handle.step_metrics.remote(role, step)

    async def stats(self) -> dict[str, int]:
        return await self._handle.stats.remote()

    def set_fatal(self, message: str) -> None:
        self._handle.set_fatal.remote(message)

    async def fatal(self) -> Optional[str]:
        return await self._handle.fatal.remote()

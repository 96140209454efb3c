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

import atexit
import json
import logging
import os
import time
from typing import Any, Mapping, Optional

from verl_ext.reward.group_book import GroupBook, GroupView
from verl_ext.reward.step_metrics import StepTally

logger = logging.getLogger(__name__)

#: A group that lost a session (verl drops failed sessions) never completes; once nobody
#: waits on it and it is this old, it is forgotten so the book does not grow all run long.
STALE_GROUP_S = 3600.0

#: Far above any realistic number of in-flight rollouts (256 prompts x 15 rollouts = 3,840).
COORDINATOR_MAX_CONCURRENCY = 100_000


class LocalCoordinator:
    """Group book and step tallies in the calling process (no Ray)."""

    def __init__(self, metrics_path: Optional[str] = None, stale_after_s: float = STALE_GROUP_S) -> None:
        self.book = GroupBook()
        self.stale_after_s = stale_after_s
        self.tallies: dict[tuple[str, int], StepTally] = {}
        self.metrics_path = metrics_path
        self._open_step: dict[str, int] = {}  # role -> step still being tallied
        self._fatal: Optional[str] = None
        atexit.register(self.flush_open_steps)  # the last step has no next step to close it

    async def report(self, uid: str, session_id: int, size: int, level: Optional[int], wait: bool, timeout_s: float) -> GroupView:
        return await self.book.report(uid, session_id, size, level, wait, timeout_s)

    def notify(self, uid: str, session_id: int, size: int, level: Optional[int]) -> None:
        """A sibling whose reward is already decided: record its level for the others."""
        self.book.arrive(uid, session_id, size, level)

    def record_many(self, records: list) -> None:
        for record in records:
            self.record(*record)

    def record(
        self, role: str, step: int, data_source: str, code: int, reward: float, timed_out: bool,
        judge: Optional[Mapping[str, float]] = None,
    ) -> None:
        step = int(step)
        previous = self._open_step.get(role)
        if previous is not None and step > previous:
            self._flush((role, previous))  # the first record of a new step closes the last one
        if previous is None or step > previous:
            self._open_step[role] = step
        self.tallies.setdefault((role, step), StepTally()).add(code, reward, timed_out, judge, data_source)

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

    def flush_open_steps(self) -> None:
        """Report the steps still being tallied (at shutdown)."""
        for role, step in list(self._open_step.items()):
            self._flush((role, step))
        self._open_step.clear()

    def _flush(self, key: tuple[str, int]) -> None:
        self.book.evict_stale(self.stale_after_s)  # once per step: cheap, and often enough
        role, step = key
        summary = self.step_metrics(role, step)
        # speciarl/<role>/<name>: the overall figures; per data source and judge keys go to the file
        overall = f"speciarl/{role}/"
        brief = {
            k[len(overall):]: round(v, 4)
            for k, v in summary.items()
            if k.startswith(overall) and (k.count("/") == 2 or k.startswith(overall + "share/"))
        }
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
    """Async facade over the coordinator actor with the same methods as LocalCoordinator.

    Only a rollout that must wait costs a round trip. Sibling notices are fire-and-forget
    (Ray keeps the order of calls from one caller, so a notice is never overtaken by a later
    report from the same worker), and metric records are sent in batches.
    """

    FLUSH_EVERY = 64
    FLUSH_AFTER_S = 0.5

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._records: list[tuple] = []
        self._flush_timer: Any = None

    async def report(self, uid: str, session_id: int, size: int, level: Optional[int], wait: bool, timeout_s: float) -> GroupView:
        return await self._handle.report.remote(uid, session_id, size, level, wait, timeout_s)

    def notify(self, uid: str, session_id: int, size: int, level: Optional[int]) -> None:
        self._handle.notify.remote(uid, session_id, size, level)

    def record(
        self, role: str, step: int, data_source: str, code: int, reward: float, timed_out: bool,
        judge: Optional[Mapping[str, float]] = None,
    ) -> None:
        self._records.append((role, step, data_source, code, reward, timed_out, judge))
        if len(self._records) >= self.FLUSH_EVERY:
            self.flush()
        elif self._flush_timer is None:
            import asyncio

            self._flush_timer = asyncio.get_running_loop().call_later(self.FLUSH_AFTER_S, self.flush)

    def flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._records:
            records, self._records = self._records, []
            self._handle.record_many.remote(records)

    async def step_metrics(self, role: str, step: int) -> dict[str, float]:
        return await self._handle.step_metrics.remote(role, step)

    async def stats(self) -> dict[str, int]:
        return await self._handle.stats.remote()

    def set_fatal(self, message: str) -> None:
        self._handle.set_fatal.remote(message)

    async def fatal(self) -> Optional[str]:
        return await self._handle.fatal.remote()

"""Where the rollouts of a step meet: the group book, the step ledger and the outage flag.

Why one place: siblings of a group land on different reward-loop workers (verl picks one at
random per trajectory), so their meeting point must be shared, and so must the per-step
figures. With several workers this is one Ray actor (``get_ray_coordinator``), created with a
very high ``max_concurrency`` so that waiting reports never queue behind its own cap; with
one worker it is an in-process object and no Ray call is made (``LocalCoordinator``, which
the unit tests use too). ``RayCoordinatorClient`` gives the workers the same methods over
Ray.

What lives where: group state in ``group_book.py``, step tallies in ``step_metrics.py``,
the log line and JSONL record in ``metrics_sink.py``; this class only routes between them.
"""

from __future__ import annotations

import asyncio
import atexit
from typing import Any, Mapping, Optional

from verl_ext.reward.group_book import GroupBook, GroupView
from verl_ext.reward.metrics_sink import StepMetricsSink
from verl_ext.reward.step_metrics import RolloutRecord, StepLedger

#: A group that lost a session (verl drops failed sessions) never completes; once nobody
#: waits on it and it is this old, it is forgotten so the book does not grow all run long.
STALE_GROUP_S = 3600.0

#: Far above any realistic number of in-flight rollouts (256 prompts x 15 rollouts = 3,840).
COORDINATOR_MAX_CONCURRENCY = 100_000


class CoordinatorFailure(RuntimeError):
    """The judge was declared down while a rollout waited for its siblings."""


class LocalCoordinator:
    """Group book, step ledger and outage flag in the calling process (no Ray)."""

    def __init__(self, metrics_path: Optional[str] = None, stale_after_s: float = STALE_GROUP_S) -> None:
        self.book = GroupBook()
        self.ledger = StepLedger()
        self.sink = StepMetricsSink(metrics_path)
        self.stale_after_s = stale_after_s
        self._fatal: Optional[str] = None
        # Without the SpeciaRL trainer mode nobody closes the last step; best effort at exit
        # (atexit does not run when Ray kills an actor, which is why the trainer mode exists).
        atexit.register(self.close_all)

    # ---- groups
    async def report(self, uid: str, session_id: int, size: int, level: Optional[int], wait: bool, timeout_s: float) -> GroupView:
        return await self.book.report(uid, session_id, size, level, wait, timeout_s)

    def notify(self, uid: str, session_id: int, size: int, level: Optional[int]) -> None:
        """A sibling whose reward is already decided: record its level for the others."""
        self.book.arrive(uid, session_id, size, level)

    # ---- step figures
    def record_many(self, records: list[RolloutRecord]) -> None:
        for record in records:
            self.record(record)

    def record(self, record: RolloutRecord) -> None:
        for closed in self.ledger.record(record):
            self._write(*closed)

    def record_judge(self, role: str, step: int, window: Mapping[str, float], worker: str) -> None:
        """A worker's judge figures that belong to a step but to no particular rollout."""
        self.ledger.record_judge(role, step, window, worker)

    def step_metrics(self, role: str, step: int) -> dict[str, float]:
        """The figures of a step still open (empty once it is closed)."""
        return self.ledger.summary(role, step)

    async def drain(self) -> None:
        """Nothing is buffered in-process (the same API as ``RayCoordinatorClient``)."""

    async def close_step(self, role: str, step: int) -> dict[str, float]:
        """End a step: write its figures once and return them (empty if it had no rollout)."""
        closed = self.ledger.close(role, step)
        if closed is None:
            return {}
        role, step, figures = closed
        # How many rollouts waited for their group at once, at most, during this step.
        figures[f"speciarl/{role}/waiting_max"] = float(self.book.max_waiting)
        self.book.max_waiting = self.book.waiting
        self._write(role, step, figures)
        return figures

    def close_all(self) -> None:
        for closed in self.ledger.close_all():
            self._write(*closed)

    def _write(self, role: str, step: int, summary: dict[str, float]) -> None:
        self.book.evict_stale(self.stale_after_s)  # once per step: cheap, and often enough
        self.sink.write(role, step, summary)

    # ---- outage
    async def set_fatal(self, message: str) -> None:
        """The judge is down for good: release every waiting rollout with the message."""
        self._fatal = self._fatal or message
        self.book.fail(CoordinatorFailure(self._fatal))

    async def fatal(self) -> Optional[str]:
        return self._fatal


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
    report from the same worker), and metric records are sent in batches; ``drain`` waits
    until every batch sent so far has been counted, which the trainer does before it closes
    a step.
    """

    FLUSH_EVERY = 64
    FLUSH_AFTER_S = 0.5

    def __init__(self, handle: Any) -> None:
        self._handle = handle
        self._records: list[RolloutRecord] = []
        self._flush_timer: Any = None
        self._in_flight: set[asyncio.Future] = set()

    async def report(self, uid: str, session_id: int, size: int, level: Optional[int], wait: bool, timeout_s: float) -> GroupView:
        return await self._handle.report.remote(uid, session_id, size, level, wait, timeout_s)

    def notify(self, uid: str, session_id: int, size: int, level: Optional[int]) -> None:
        self._handle.notify.remote(uid, session_id, size, level)

    def record(self, record: RolloutRecord) -> None:
        self._records.append(record)
        if len(self._records) >= self.FLUSH_EVERY:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self.FLUSH_AFTER_S, self.flush)

    def record_judge(self, role: str, step: int, window: Mapping[str, float], worker: str) -> None:
        self.flush()  # the records before it first: the same caller's calls stay in order
        self._track(self._handle.record_judge.remote(role, step, window, worker))

    def _track(self, ref: Any) -> None:
        sent = asyncio.ensure_future(ref)
        self._in_flight.add(sent)
        sent.add_done_callback(self._in_flight.discard)

    def flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._records:
            records, self._records = self._records, []
            self._track(self._handle.record_many.remote(records))

    async def drain(self) -> None:
        """Send what is buffered and wait until the coordinator has counted all of it."""
        self.flush()
        if self._in_flight:
            await asyncio.gather(*self._in_flight)

    async def step_metrics(self, role: str, step: int) -> dict[str, float]:
        return await self._handle.step_metrics.remote(role, step)

    async def close_step(self, role: str, step: int) -> dict[str, float]:
        return await self._handle.close_step.remote(role, step)

    async def set_fatal(self, message: str) -> None:
        await self._handle.set_fatal.remote(message)

    async def fatal(self) -> Optional[str]:
        return await self._handle.fatal.remote()

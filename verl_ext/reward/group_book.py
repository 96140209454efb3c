"""Where rollouts of one prompt meet: the group state behind the best-in-group reward.

verl 0.9 scores one trajectory at a time, on a randomly chosen reward-loop worker, so the
siblings of a GRPO group (same ``uid``) arrive one by one in different processes. Each
arrival *reports* its training level here (``None`` for a parse failure or judge error)
and, if its reward still depends on the siblings, *waits* until the group decides it:

* the group is complete (``size`` distinct sessions reported) → the final c* is known;
* a sibling better than the waiter arrives → the waiter's reward is 0 whatever comes next;
* ``timeout_s`` passes → the waiter gets the best level seen so far, flagged as timed out;
* the book is failed (the judge is down for good) → every waiter, and every later report
  that would wait, raises the failure: nothing waits for siblings that cannot be graded.

The book is plain asyncio and knows nothing about Ray; ``coordinator.py`` hosts one book in
a single Ray actor so that every worker sees every sibling.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class GroupView:
    """What a reporter learns: the best level seen, how many sessions, and why it returned."""

    best_level: Optional[int]
    seen: int
    complete: bool
    timed_out: bool = False


@dataclass
class _Waiter:
    level: int
    future: asyncio.Future


@dataclass
class _Group:
    size: int
    levels: dict[int, Optional[int]] = field(default_factory=dict)  # session_id -> level
    waiters: list[_Waiter] = field(default_factory=list)
    created: float = field(default_factory=time.monotonic)

    @property
    def best_level(self) -> Optional[int]:
        judged = [lv for lv in self.levels.values() if lv is not None]
        return max(judged) if judged else None

    @property
    def complete(self) -> bool:
        return len(self.levels) >= self.size

    def view(self, timed_out: bool = False) -> GroupView:
        return GroupView(self.best_level, len(self.levels), self.complete, timed_out)


class GroupBook:
    """Group state for best-in-group rewards, keyed by verl's ``uid``."""

    def __init__(self, finished_memory: int = 200_000) -> None:
        self._groups: dict[str, _Group] = {}
        # Groups already decided, kept so that a late duplicate report returns at once.
        self._finished: OrderedDict[str, GroupView] = OrderedDict()
        self._finished_memory = finished_memory
        self.timeouts = 0
        self.max_waiting = 0
        self.failure: Optional[BaseException] = None

    @property
    def waiting(self) -> int:
        return sum(len(g.waiters) for g in self._groups.values())

    @property
    def open_groups(self) -> int:
        return len(self._groups)

    def arrive(self, uid: str, session_id: int, size: int, level: Optional[int]) -> GroupView:
        """Record one session's level without waiting (its reward does not need the group)."""
        group = self._record(uid, session_id, size, level)
        return group.view() if group is not None else self._finished[uid]

    async def report(
        self,
        uid: str,
        session_id: int,
        size: int,
        level: Optional[int],
        wait: bool,
        timeout_s: float,
    ) -> GroupView:
        """Record one session's level; if ``wait``, return once the group decides its reward."""
        group = self._record(uid, session_id, size, level)
        if group is None:
            return self._finished[uid]
        if not wait or group.complete or level is None:
            return group.view()
        if self.failure is not None:
            raise self.failure
        best = group.best_level
        if best is not None and best > level:
            return group.view()
        waiter = _Waiter(level, asyncio.get_running_loop().create_future())
        group.waiters.append(waiter)
        self.max_waiting = max(self.max_waiting, self.waiting)
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout_s)
        except asyncio.TimeoutError:
            self.timeouts += 1
            if waiter in group.waiters:
                group.waiters.remove(waiter)
            return group.view(timed_out=True)

    def _record(self, uid: str, session_id: int, size: int, level: Optional[int]) -> Optional[_Group]:
        """Store the level; ``None`` if the group was already decided (a late duplicate)."""
        if size < 1:
            raise ValueError(f"group size must be >= 1, got {size}")
        if uid in self._finished:
            return None
        group = self._groups.get(uid)
        if group is None:
            group = self._groups[uid] = _Group(size=size)
        elif group.size != size:
            raise ValueError(f"group {uid} reported with size {size} but was opened with size {group.size}")
        group.levels[int(session_id)] = level
        self._wake(uid, group)
        return group

    def _wake(self, uid: str, group: _Group) -> None:
        view = group.view()
        best = view.best_level
        still = []
        for waiter in group.waiters:
            if view.complete or (best is not None and best > waiter.level):
                if not waiter.future.done():
                    waiter.future.set_result(view)
            else:
                still.append(waiter)
        group.waiters = still
        if view.complete and not still:
            del self._groups[uid]
            self._finished[uid] = view
            while len(self._finished) > self._finished_memory:
                self._finished.popitem(last=False)

    def fail(self, failure: BaseException) -> None:
        """Release every waiter with ``failure``, and refuse to wait from now on."""
        self.failure = self.failure or failure
        for group in self._groups.values():
            for waiter in group.waiters:
                if not waiter.future.done():
                    waiter.future.set_exception(self.failure)
            group.waiters = []

    def evict_stale(self, older_than_s: float) -> int:
        """Forget incomplete groups with no waiter that are older than ``older_than_s``."""
        now = time.monotonic()
        stale = [u for u, g in self._groups.items() if not g.waiters and now - g.created > older_than_s]
        for uid in stale:
            del self._groups[uid]
        return len(stale)

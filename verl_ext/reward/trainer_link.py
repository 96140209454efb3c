"""What the SpeciaRL trainer mode asks of verl's reward-loop workers, between two steps.

The trainer holds the handles of verl's ``RewardLoopWorker`` actors but cannot add methods
to them; Ray's ``__ray_call__`` runs a function on an actor instance instead. These
functions find the ``speciarl`` manager inside a worker (``worker.reward_manager``) and:

* ``judge_outage``: report the judge outage the worker saw, if any;
* ``close_step``: wait until the worker's buffered per-rollout records are counted, then end
  the step, so that its figures are complete, written once, and handed to the tracker.

Ray runs a synchronous ``__ray_call__`` function in a thread of an async actor, not on its
event loop, so coroutines are handed to the loop the manager scores on.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional, Sequence

#: How long the trainer waits for a worker to drain its records before failing loudly.
DRAIN_TIMEOUT_S = 120.0


def _manager(worker: Any) -> Any:
    from verl_ext.reward.manager import SpeciaRLRewardManager

    manager = getattr(worker, "reward_manager", None)
    return manager if isinstance(manager, SpeciaRLRewardManager) else None


def judge_outage(worker: Any) -> Optional[str]:
    manager = _manager(worker)
    return manager.outage() if manager is not None else None


def _on_scoring_loop(worker: Any, method: str, *args: Any) -> Any:
    """Run ``manager.<method>(*args)`` on the loop the worker's manager scores on."""
    manager = _manager(worker)
    if manager is None or manager.scoring_loop is None:
        return None  # not our reward, or this worker scored nothing yet: nothing to count
    coroutine = getattr(manager, method)(*args)
    return asyncio.run_coroutine_threadsafe(coroutine, manager.scoring_loop).result(DRAIN_TIMEOUT_S)


def drain_records(worker: Any, role: str, step: int) -> None:
    _on_scoring_loop(worker, "drain_records", role, step)


def close_step(worker: Any, role: str, step: int) -> dict[str, float]:
    return _on_scoring_loop(worker, "close_step", role, step) or {}


def close_on_all(handles: Sequence[Any], role: str, step: int) -> dict[str, float]:
    """Count every worker's records first, then end the step: its figures (empty if none).

    With several workers the step lives in one shared coordinator, so the first worker to
    close it gets the figures and the others get nothing; with one worker it is in-process.
    """
    import ray

    ray.get([handle.__ray_call__.remote(drain_records, role, step) for handle in handles])
    figures: dict[str, float] = {}
    for part in ray.get([handle.__ray_call__.remote(close_step, role, step) for handle in handles]):
        figures.update(part)
    return figures


def outage_on_any(handles: Sequence[Any]) -> Optional[str]:
    import ray

    return next((message for message in ray.get([h.__ray_call__.remote(judge_outage) for h in handles]) if message), None)

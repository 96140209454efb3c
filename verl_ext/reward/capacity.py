"""How many reward-loop workers a run needs so that rollouts waiting for siblings cannot deadlock.

Pure arithmetic over the trainer config (no verl import), shared by the reward manager, which
refuses bad settings when it is built, and the recipes' dry run, which refuses them before a
cluster job starts.
"""

from __future__ import annotations

import math
from typing import Any

from verl_ext.reward.config import SpeciaRLConfigError

#: Ray's default cap on concurrent calls of one async actor (a reward-loop worker).
RAY_ASYNC_ACTOR_CAP = 1000

def rollouts_in_flight(config: Any) -> tuple[int, int, int]:
    """(rollouts, prompts, n): the most rollouts of a training step that can await rewards at once.

    verl 0.9's V1 trainer keeps one train batch in flight, or, with DAPO's dynamic sampling,
    up to ``algorithm.filter_groups.max_inflight_gen_batches`` train batches (and ignores
    ``data.gen_batch_size`` then); the legacy trainer samples ``data.gen_batch_size`` prompts.
    """
    data = config.data
    prompts = int(data.get("gen_batch_size") or data.train_batch_size)
    filter_groups = config.get("algorithm", {}).get("filter_groups", {}) or {}
    if filter_groups.get("enable"):
        inflight = int(filter_groups.get("max_inflight_gen_batches", 1) or 1)
        prompts = max(prompts, inflight * int(data.train_batch_size))
    n = int(config.actor_rollout_ref.rollout.n)
    return prompts * n, prompts, n


def check_worker_capacity(config: Any) -> None:
    """Refuse settings under which waiting rollouts could fill a worker's Ray concurrency cap.

    Every rollout of a step may be in flight at once, spread at random over
    ``reward.num_workers`` workers. If one worker could receive more than Ray's cap while
    its calls wait for siblings queued behind that cap, the step would deadlock until the
    group timeout. We require the expected load per worker plus six standard deviations to
    stay under the cap, which verl's default of 8 workers satisfies for the paper's
    256 x 10 rollouts (320 per worker).
    """
    workers = int(config.reward.get("num_workers", 1) or 1)
    if workers <= 1:
        return  # one worker uses the in-process book; nothing waits across processes
    in_flight, batch, n = rollouts_in_flight(config)
    p = 1.0 / workers
    worst = in_flight * p + 6.0 * math.sqrt(in_flight * p * (1 - p))
    if worst > RAY_ASYNC_ACTOR_CAP:
        needed = workers
        while True:
            needed += 1
            q = 1.0 / needed
            if in_flight * q + 6.0 * math.sqrt(in_flight * q * (1 - q)) <= RAY_ASYNC_ACTOR_CAP:
                break
        raise SpeciaRLConfigError(
            f"reward.num_workers={workers} is too few for {in_flight} rollouts in flight per step "
            f"({batch} prompts x n {n}): a worker could hold more than Ray's "
            f"{RAY_ASYNC_ACTOR_CAP} concurrent calls while rollouts wait for their group. "
            f"Set reward.num_workers>={needed} (or reward.num_workers=1)."
        )

"""Split the visible GPUs of one node between training and a local judge.

Why a rule at all: verl 0.9's V1 trainer pads every step's batch with no-op samples up to a
multiple of lcm(data-parallel size, ppo_mini_batch_size x n). The paper's 128 x 10 = 1,280
responses per mini-batch split evenly over 4 or 8 GPUs but not over 6, where the padding
would add half a mini-batch of wasted work. The rollout's tensor-parallel size must also
divide the training GPU count. So training takes the largest GPU count that satisfies both,
and the local judge gets every GPU left over (as extra vLLM data-parallel replicas).

CLI (used by ``recipes/common.sh``; prints one line ``TRAIN_N TRAIN_IDS JUDGE_IDS JUDGE_DP``)::

    python -m verl_ext.recipes.gpu_plan --visible 0,1,2,3,4,5,6,7 --local-judge \
        --judge-tp 2 --rollout-tp 2 --mini-batch-responses 1280
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from verl_ext.judge.config import URLS_ENV
from verl_ext.recipes.errors import RecipeError


@dataclass(frozen=True)
class GpuPlan:
    """Which device ids train and which serve the judge (ids as CUDA_VISIBLE_DEVICES names them)."""

    train: tuple[str, ...]
    judge: tuple[str, ...]
    judge_dp: int

    def as_line(self) -> str:
        judge = ",".join(self.judge) or "-"
        return f"{len(self.train)} {','.join(self.train)} {judge} {self.judge_dp}"


#: the config keys behind the split's inputs, for messages
ROLLOUT_TP_KEY = "actor_rollout_ref.rollout.tensor_model_parallel_size"
MINI_BATCH_KEYS = "actor_rollout_ref.actor.ppo_mini_batch_size x actor_rollout_ref.rollout.n"

def _fits(count: int, rollout_tp: int, mini_batch_responses: int) -> bool:
    return count > 0 and count % rollout_tp == 0 and mini_batch_responses % count == 0


def plan_gpus(
    visible: Sequence[str],
    *,
    local_judge: bool,
    judge_tp: int,
    rollout_tp: int,
    mini_batch_responses: int,
    train_gpus: Optional[int] = None,
) -> GpuPlan:
    """Choose the training GPUs (first ids) and the judge GPUs (the rest)."""
    for name, value in (("JUDGE_TP", judge_tp), ("ROLLOUT_TP", rollout_tp), ("mini-batch responses", mini_batch_responses)):
        if value < 1:
            raise RecipeError(f"{name} must be >= 1, got {value}")
    visible = tuple(visible)
    if not visible:
        raise RecipeError("no GPU visible: nvidia-smi lists none (or CUDA_VISIBLE_DEVICES is empty); training needs GPUs")
    reserved = judge_tp if local_judge else 0
    available = len(visible) - reserved
    if available < rollout_tp:
        need = reserved + rollout_tp
        where = f" ({judge_tp} for the local judge + {rollout_tp} for one rollout replica)" if local_judge else ""
        hint = f" or set {URLS_ENV} to use a judge running elsewhere" if local_judge else ""
        raise RecipeError(f"too few GPUs: {len(visible)} visible, at least {need} needed{where}{hint}")
    if train_gpus is not None:
        if train_gpus > available:
            raise RecipeError(f"TRAIN_GPUS={train_gpus} but only {available} GPUs are free for training")
        if not _fits(train_gpus, rollout_tp, mini_batch_responses):
            raise RecipeError(
                f"TRAIN_GPUS={train_gpus} must be a multiple of {ROLLOUT_TP_KEY}={rollout_tp} and divide "
                f"{MINI_BATCH_KEYS} = {mini_batch_responses} responses"
            )
        count = train_gpus
    else:
        fitting = [c for c in range(available, 0, -1) if _fits(c, rollout_tp, mini_batch_responses)]
        if not fitting:
            raise RecipeError(
                f"no training GPU count <= {available} is a multiple of {ROLLOUT_TP_KEY}={rollout_tp} and divides "
                f"{mini_batch_responses} responses per mini-batch ({MINI_BATCH_KEYS}); set TRAIN_GPUS or change them"
            )
        count = fitting[0]
    train = visible[:count]
    judge = visible[count:] if local_judge else ()
    judge_dp = len(judge) // judge_tp if local_judge else 0
    return GpuPlan(train=train, judge=judge[: judge_dp * judge_tp], judge_dp=judge_dp)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visible", required=True, help="comma-separated device ids, e.g. 0,1,2,3")
    parser.add_argument("--local-judge", action="store_true", help="reserve GPUs for a judge on this node")
    parser.add_argument("--judge-tp", type=int, default=2)
    parser.add_argument("--rollout-tp", type=int, default=2)
    parser.add_argument("--mini-batch-responses", type=int, required=True)
    parser.add_argument("--train-gpus", type=int, default=None)
    args = parser.parse_args(argv)
    visible = [v.strip() for v in args.visible.split(",") if v.strip()]
    try:
        plan = plan_gpus(
            visible,
            local_judge=args.local_judge,
            judge_tp=args.judge_tp,
            rollout_tp=args.rollout_tp,
            mini_batch_responses=args.mini_batch_responses,
            train_gpus=args.train_gpus,
        )
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plan.as_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())

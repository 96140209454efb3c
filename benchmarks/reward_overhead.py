"""Per-rollout overhead of the `speciarl` reward manager, without judge latency.

Scores the same rollouts with (a) our manager, using an instant in-process rule-table judge
(a stand-in for the LLM judge, so that only decoding, answer parsing, grouping and
bookkeeping are measured), and (b) verl's built-in `naive` reward-loop manager with a
trivial `compute_score`. Both run `run_single` for every rollout concurrently on one event
loop, as a reward-loop worker does. Runs alternate, and the best of the repeats counts.

    python benchmarks/reward_overhead.py [--quick] [--prompts 256 --n 10] [--ray]

`--ray` also measures our manager with the cross-worker group coordinator in a Ray actor
(what runs when reward.num_workers > 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
import uuid

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

LABELS = ["golden winged warbler", "warbler", "bird", "none", "cardinal"]
GT = "Golden-winged Warbler"
TABLE = [[GT, "golden winged warbler", "specific"], [GT, "warbler", "less specific"], [GT, "bird", "generic"],
         [GT, "none", "abstain"], [GT, "cardinal", "wrong"]]
THINK = ("The bird has a yellow crown and yellow wing bars on grey wings, a black throat and a black mask "
         "through the eye. Those marks point to a wood warbler rather than a vireo. ")


def build_rollouts(tokenizer, prompts: int, n: int, seed: int = 0):
    from verl_ext.testing.dataproto import make_reward_dataproto

    rng = random.Random(seed)
    out = []
    for g in range(prompts):
        uid = str(uuid.uuid4())
        for s in range(n):
            answer = rng.choice(LABELS)
            text = f"<think>{THINK * rng.randint(2, 6)}</think><answer>{answer}</answer>"
            if rng.random() < 0.03:
                text = text.replace("</answer>", "")  # truncated: parse failure
            out.append(make_reward_dataproto(
                tokenizer, prompt="Classify the image.", response=text, uid=uid, session_id=s, data_source="cub200",
                ground_truth=GT, extra_info={"speciarl_role": "train", "split": "train", "index": g}, global_steps=1,
            ))
    random.Random(seed + 1).shuffle(out)
    return out


def make_config(n: int, workers: int, coordinator: str = "speciarl_bench"):
    from omegaconf import OmegaConf

    return OmegaConf.create({
        "reward": {"num_workers": workers, "speciarl": {
            "judge": {"impl": "verl_ext.testing.rule_judge:from_settings", "table": TABLE},
            "coordinator_name": coordinator,
        }},
        "actor_rollout_ref": {"rollout": {"n": n, "val_kwargs": {"n": 1}}},
        "data": {"train_batch_size": 256, "gen_batch_size": None, "max_response_length": 2048},
    })


def _with_new_uids(rollouts, salt: str):
    """The same rollouts, each group under a new uid (groups stay intact)."""
    import numpy as np

    for proto in rollouts:
        base = str(proto.non_tensor_batch["uid"][0]).split("#")[0]
        proto.non_tensor_batch["uid"] = np.array([f"{base}#{salt}"])
    return rollouts


async def score_all(manager, rollouts) -> float:
    started = time.perf_counter()
    await asyncio.gather(*(manager.run_single(r) for r in rollouts))
    return time.perf_counter() - started


def trivial_compute_score(data_source, solution_str, ground_truth, extra_info=None, **_):
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run (< 1 minute)")
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", action="store_true", help="also measure the Ray group coordinator")
    args = parser.parse_args()
    if args.quick:
        args.prompts, args.repeats = 64, 2

    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    from verl_ext.reward.manager import SpeciaRLRewardManager
    from verl_ext.testing.kit import ensure_offline_kit

    kit = ensure_offline_kit(os.environ.get("VERL_EXT_KIT_CACHE") or tempfile.mkdtemp(prefix="kit-"))
    tokenizer = kit.tokenizer
    total = args.prompts * args.n
    print(f"building {total} rollouts ({args.prompts} prompts x {args.n}) per repeat ...", flush=True)
    batches = [build_rollouts(tokenizer, args.prompts, args.n, seed=r) for r in range(args.repeats)]

    async def measure(workers: int, tag: str) -> tuple[list[float], list[float]]:
        # verl's managers bind the running event loop at construction, so build them inside it.
        naive = NaiveRewardManager(config=make_config(args.n, 1), tokenizer=tokenizer, compute_score=trivial_compute_score)
        ours_times, naive_times = [], []
        for repeat, rollouts in enumerate(batches):
            # Fresh uids each run, so that no group is already decided by an earlier run.
            fresh = _with_new_uids(rollouts, f"{tag}-{repeat}")
            ours = SpeciaRLRewardManager(config=make_config(args.n, workers, f"bench_{tag}_{repeat}"),
                                         tokenizer=tokenizer, compute_score=None)
            naive_times.append(await score_all(naive, fresh))
            ours_times.append(await score_all(ours, fresh))
            print(f"[{tag}] repeat {repeat}: ours {total / ours_times[-1]:.0f}/s  naive {total / naive_times[-1]:.0f}/s",
                  flush=True)
        return ours_times, naive_times

    ours_times, naive_times = asyncio.run(measure(1, "local"))
    ours_rate, naive_rate = total / min(ours_times), total / min(naive_times)
    extra = ""
    if args.ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray_times, _ = asyncio.run(measure(8, "ray"))
        ray.shutdown()
        extra = f" ours_ray_rollouts_per_s={total / min(ray_times):.0f}"
        print(f"ours with the Ray coordinator: {total / min(ray_times):.0f} rollouts/s")

    print(f"\n{'manager':<28}{'rollouts/s':>12}{'us/rollout':>12}")
    print(f"{'speciarl (in-process book)':<28}{ours_rate:>12.0f}{1e6 / ours_rate:>12.1f}")
    print(f"{'naive (trivial score)':<28}{naive_rate:>12.0f}{1e6 / naive_rate:>12.1f}")
    print(f"ratio ours/naive = {ours_rate / naive_rate:.2f} (goal >= 0.5)")
    print(f"RESULT ratio_vs_naive={ours_rate / naive_rate:.2f} ours_rollouts_per_s={ours_rate:.0f} "
          f"naive_rollouts_per_s={naive_rate:.0f} rollouts={total}{extra}")


if __name__ == "__main__":
    sys.exit(main())

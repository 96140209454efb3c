"""Judge + score stages of the evaluation on a Food-101-sized run, against the scriptable judge server.

Workload: 30,300 predictions (Food-101's test split: 101 classes x 300 images, one greedy
answer each), drawn from a skewed distribution like a real model's: most answers repeat the
class name or one of a few parent/generic/confused labels, a few are one-off variants, some
abstain and some fail to parse. The server (127.0.0.1) answers every request after a fixed
latency and serves at most ``--capacity`` requests at once, like a judge behind vLLM.

Compared in one run:
  (i)  sequential: one request per parsed prediction, each awaited before the next, no
       dedup/cache/short-circuits (what a per-sample evaluation loop does). On the full
       workload this would take minutes, so a sample of ``--sequential-sample`` predictions
       is timed and the rate is extrapolated to all parsed predictions (said in the output).
  (ii) ours: ``verl_ext.eval.pipeline.judge_and_score`` through the real judge client
       (dedup, short-circuits, concurrency), writing metrics.json, the report and the plots.
       A rerun of the same stages (everything cached on disk) is timed too.

Ends with: RESULT requests=... seconds=... speedup_vs_sequential=... (plus the absolute figures).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

import httpx

from verl_ext.core.answer import extract_answer, normalise_label
from verl_ext.eval.items import EvalItem
from verl_ext.eval.pipeline import judge_and_score
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.protocol import request_body
from verl_ext.testing.judge_server import ScriptableJudgeServer

ADJECTIVES = ["homemade", "grilled", "fried", "baked", "spicy", "classic", "fresh", "crispy", "creamy", "stuffed",
              "roasted", "steamed", "mini", "vegan", "traditional", "sweet", "savory", "smoked", "glazed", "rustic"]
GENERIC = ["food", "dish", "meal", "dessert", "snack"]


def make_workload(n_classes: int, per_class: int, seed: int) -> tuple[list[EvalItem], dict[str, list[str]]]:
    """Items and one response each; per class: 2 parents, 3 confusers, rare one-off variants."""
    rng = random.Random(seed)
    classes = [f"dish {i:03d}" for i in range(n_classes)]
    items, responses = [], {}
    for c, truth in enumerate(classes):
        parents = [f"family {c % 17}", f"{truth.split()[0]} style {c % 5}"]
        confusers = rng.sample([x for x in classes if x != truth], 3)
        for k in range(per_class):
            u = rng.random()
            if u < 0.45:
                answer = truth
            elif u < 0.60:
                answer = rng.choice(parents)
            elif u < 0.70:
                answer = rng.choice(GENERIC)
            elif u < 0.85:
                answer = rng.choice(confusers)
            elif u < 0.90:
                answer = f"{rng.choice(ADJECTIVES)} {truth}"
            elif u < 0.95:
                answer = "None"
            else:
                answer = None  # a parse failure
            sha = f"{c:03d}-{k:04d}"
            items.append(EvalItem("food101", "synthetic", len(items), len(items), truth, sha))
            text = "<think>...</think>" + (f"<answer>{answer}</answer>" if answer is not None else "no answer tag")
            responses[sha] = [text]
    return items, responses


def rule(gt: str, pred: str) -> str:
    """The server's grading rule (stands in for a judge LLM)."""
    if pred.endswith(gt):
        return "more specific" if pred != gt else "specific"
    if pred.startswith("family") or " style " in pred:
        return "less specific"
    if pred in GENERIC:
        return "generic"
    return "wrong"


async def sequential(url: str, pairs: list[tuple[str, str]]) -> float:
    """Time one request per pair, awaited one after another."""
    config = JudgeConfig(urls=(url,), model="scripted-judge")
    async with httpx.AsyncClient(timeout=30) as http:
        started = time.perf_counter()
        for gt, pred in pairs:
            reply = await http.post(f"{url}/chat/completions", json=request_body(config, "scripted-judge", gt, pred))
            reply.raise_for_status()
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the workload (< 1 minute)")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64, help="judge client max_concurrency")
    parser.add_argument("--sequential-sample", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    per_class = 30 if args.quick else 300
    sample = args.sequential_sample or (150 if args.quick else 500)

    items, responses = make_workload(101, per_class, args.seed)
    parsed = [(normalise_label(i.ground_truth), normalise_label(a)) for i in items
              if (a := extract_answer(responses[i.image_sha256][0])) is not None]
    unique = len(set(parsed))
    print(f"workload: {len(items)} predictions, {len(parsed)} parsed, {unique} distinct pairs; "
          f"server latency {args.latency_ms:g} ms, capacity {args.capacity}")

    with ScriptableJudgeServer(rule, latency_s=args.latency_ms / 1000, capacity=args.capacity).start_in_thread() as server:
        seq_sample = parsed[:sample]
        seq_seconds = asyncio.run(sequential(server.url, seq_sample))
        seq_estimate = seq_seconds / len(seq_sample) * len(parsed)
        print(f"(i) sequential: {len(seq_sample)} requests in {seq_seconds:.2f} s, measured on a sample and "
              f"extrapolated to all {len(parsed)} parsed predictions: {seq_estimate:.1f} s")

        server.reset_stats()
        settings = {"urls": [server.url], "model": "scripted-judge", "max_concurrency": args.concurrency,
                    "on_failure": "degrade"}
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "run"
            started = time.perf_counter()
            metrics, judged = judge_and_score(items, responses, n=1, judge=None, judge_settings=settings, out=out,
                                              method="bench", progress=False)
            seconds = time.perf_counter() - started
            requests = server.stats["requests"]
            started = time.perf_counter()
            judge_and_score(items, responses, n=1, judge=None, judge_settings=settings, out=out, method="bench",
                            progress=False)
            rerun = time.perf_counter() - started
            rerun_requests = server.stats["requests"] - requests
    food = metrics["datasets"]["food101"]["samples"]
    if not metrics["complete"]:
        print(f"ERROR: {metrics['n_judge_errors']} judge errors", file=sys.stderr)
        return 1
    print(f"(ii) ours: {requests} requests for {unique} distinct pairs (the rest short-circuited, "
          f"deduplicated or parse failures) in {seconds:.2f} s including metrics.json, report and plots; "
          f"rerun from cache {rerun:.2f} s with {rerun_requests} requests")
    print(f"metrics: correctness {food['correctness']:.3f}, specificity {food['specificity']:.3f}, HM {food['hm']:.3f}")
    speedup = seq_estimate / seconds
    print(f"RESULT requests={requests} seconds={seconds:.2f} speedup_vs_sequential={speedup:.1f} "
          f"predictions={len(items)} distinct_pairs={unique} sequential_requests={len(parsed)} "
          f"sequential_seconds_est={seq_estimate:.1f} sequential_sampled={len(seq_sample)} "
          f"rerun_seconds={rerun:.2f} rerun_requests={rerun_requests}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

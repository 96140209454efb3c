"""The fault test: 10,000 judgements through a faulty judge; none lost, duplicated or silently zeroed.

The judge is the scriptable OpenAI-compatible server on 127.0.0.1 (a rule-table test double
for a vLLM judge, which cannot run on CPU), injecting 30% HTTP 5xx, 10% garbage replies and
one restart mid-run; or, in the outage test, going down for good.
"""

from __future__ import annotations

import asyncio
import collections
import zlib

import pytest

from verl_ext.core.answer import normalise_label
from verl_ext.core.categories import Category
from verl_ext.judge.base import JudgeUnavailableError
from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.shortcuts import short_circuit
from verl_ext.testing.judge_server import FaultRates, ScriptableJudgeServer

IMAGES, ROLLOUTS = 1_000, 10


def rule(gt: str, pred: str) -> Category:
    """The server's grade: a fixed pseudo-random category per pair."""
    return Category(zlib.crc32(f"{gt}|{pred}".encode()) % 6)


def workload() -> list[tuple[str, str]]:
    """10,000 (gt, prediction) pairs shaped like a step: 1,000 images of 200 species (several
    images per class, as in a real dataset), each with 10 rollouts that mix exact matches and
    refusals (short-circuits), a genus shared by the species' images, and unique guesses."""
    pairs = []
    for image in range(IMAGES):
        species = image % 200
        gt = f"Species {species}"
        for rollout in range(ROLLOUTS):
            kind = (image * 7 + rollout) % 10
            if kind == 0:
                pred = gt.upper()  # exact match after normalisation
            elif kind == 1:
                pred = "I don't know"
            elif kind <= 6:
                pred = f"Genus {species % 50}"  # repeated within and across images
            else:
                pred = f"guess {image}-{rollout}"  # unique
            pairs.append((gt, pred))
    return pairs


def expected(gt: str, pred: str) -> Category:
    gt, pred = normalise_label(gt), normalise_label(pred)
    return short_circuit(gt, pred) or rule(gt, pred)


def config(url: str, **overrides) -> JudgeConfig:
    settings = dict(
        urls=(url,),
        model="scripted-judge",
        max_concurrency=64,
        timeout_s=5.0,
        max_retries=8,
        backoff_base_s=0.002,
        backoff_max_s=0.02,
        breaker_failures=8,
        breaker_cooldown_s=0.02,
        failure_budget_s=30.0,
    )
    settings.update(overrides)
    return JudgeConfig(**settings)


async def _restart_after(server: ScriptableJudgeServer, requests: int, down_s: float) -> None:
    while server.stats["requests"] < requests:
        await asyncio.sleep(0.005)
    await server.restart(down_s=down_s)


async def test_ten_thousand_judgements_survive_5xx_garbage_and_a_restart():
    pairs = workload()
    server = ScriptableJudgeServer(rule, faults=FaultRates(error_5xx=0.3, garbage=0.1), seed=7)
    async with server:
        client = OpenAIJudgeClient(config(server.url))  # on_failure="fail": an outage would raise
        restart = asyncio.create_task(_restart_after(server, requests=2_000, down_s=0.2))
        verdicts = await client.grade_many(pairs)
        await restart
        metrics = client.pop_metrics()
        await client.aclose()

    assert len(verdicts) == len(pairs)
    errors = [v for v in verdicts if not v.ok]
    for (gt, pred), verdict in zip(pairs, verdicts):
        if verdict.ok:
            assert verdict.category is expected(gt, pred), (gt, pred, verdict)
        else:  # explicit, never a silent "wrong"
            assert verdict.error.startswith(("malformed judge reply", "gave up after")), verdict
    sources = collections.Counter(v.source for v in verdicts)
    assert metrics["judge/judgements"] == len(pairs)
    assert metrics["judge/errors"] == len(errors)
    assert sources["short_circuit"] == metrics["judge/short_circuits"] == 2 * IMAGES
    assert sources["cache"] == metrics["judge/cache_hits"]
    assert sources["dedup"] == metrics["judge/dedup_hits"]
    leader_ok = sum(1 for v in verdicts if v.ok and v.source == "llm")
    assert leader_ok == metrics["judge/llm_verdicts"]
    unique_llm_pairs = {(normalise_label(g), normalise_label(p)) for g, p in pairs} - {
        (normalise_label(g), normalise_label(p)) for g, p in pairs if short_circuit(normalise_label(g), normalise_label(p))
    }
    # Every pair the LLM had to judge reached the server; none of the short-circuited did.
    assert set(server.pair_counts) <= unique_llm_pairs
    errored_pairs = {(normalise_label(g), normalise_label(p)) for (g, p), v in zip(pairs, verdicts) if not v.ok}
    assert len(errored_pairs) <= 0.04 * len(unique_llm_pairs)  # two garbage replies in a row: ~2%
    assert server.stats["restarts"] == 1
    assert metrics["judge/connection_errors"] > 0  # requests hit the restart
    assert metrics["judge/http_5xx"] > 0.2 * metrics["judge/requests"]
    assert metrics["judge/retries"] > 0 and metrics["judge/malformed"] > 0


@pytest.mark.parametrize("on_failure", ["degrade", "fail"])
async def test_ten_thousand_judgements_when_the_judge_goes_down_for_good(on_failure):
    pairs = workload()
    server = ScriptableJudgeServer(rule, faults=FaultRates(error_5xx=0.3), seed=3)
    async with server:
        client = OpenAIJudgeClient(config(server.url, failure_budget_s=0.5, on_failure=on_failure))

        async def stop_after(requests: int) -> None:
            while server.stats["requests"] < requests:
                await asyncio.sleep(0.005)
            await server.stop()

        outage = asyncio.create_task(stop_after(1_000))
        if on_failure == "fail":
            with pytest.raises(JudgeUnavailableError, match="failure_budget_s=0.5"):
                await client.grade_many(pairs)
            await outage
            await client.aclose()
            return
        verdicts = await client.grade_many(pairs)
        await outage
        metrics = client.pop_metrics()
        await client.aclose()

    assert len(verdicts) == len(pairs)
    degraded = 0
    for (gt, pred), verdict in zip(pairs, verdicts):
        if verdict.ok:
            assert verdict.category is expected(gt, pred)
        else:
            assert verdict.error.startswith(("judge unavailable", "gave up after")), verdict
            degraded += verdict.error.startswith("judge unavailable")
    assert degraded > 500  # many uncached pairs were still pending when the server died
    assert metrics["judge/errors"] == sum(not v.ok for v in verdicts)
    assert metrics["judge/degraded"] >= 1


async def test_a_dead_judge_fails_within_its_budget_even_with_long_backoffs():
    """Backoff sleeps are cut at the failure budget: a step must not wait out minutes of retries."""
    import time

    server = ScriptableJudgeServer({})
    async with server:
        url = server.url
    client = OpenAIJudgeClient(
        config(url, failure_budget_s=1.0, backoff_base_s=8.0, backoff_max_s=8.0, breaker_cooldown_s=0.1, on_failure="fail")
    )
    started = time.monotonic()
    with pytest.raises(JudgeUnavailableError, match="failure_budget_s=1"):
        await client.grade("golden winged warbler", "warbler")
    assert time.monotonic() - started < 3.0  # one 8 s backoff alone would overshoot
    await client.aclose()

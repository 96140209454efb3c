"""The HTTP judge client against the scriptable OpenAI-compatible server on 127.0.0.1.

The server's grades come from a rule table (a test double for a vLLM judge, which cannot run
on CPU); HTTP, retries, caches and fault handling are exercised for real.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import time

import pytest

from verl_ext.core.categories import Category
from verl_ext.judge.base import Judge, JudgeUnavailableError
from verl_ext.judge.cache import SqliteVerdictCache
from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.endpoints import CLOSED, OPEN, CircuitBreaker
from verl_ext.testing.judge_server import FaultRates, ScriptableJudgeServer

RULES = {
    ("golden-winged warbler", "warbler"): "less specific",
    ("golden-winged warbler", "bird"): "generic",
    ("dog", "samoyed"): "more specific",
    ("lion", "panthera leo"): "specific",
}


def fast_config(*urls: str, **overrides) -> JudgeConfig:
    settings = dict(
        urls=urls,
        model="scripted-judge",
        timeout_s=2.0,
        max_retries=4,
        backoff_base_s=0.001,
        backoff_max_s=0.01,
        breaker_failures=3,
        breaker_cooldown_s=0.05,
        failure_budget_s=5.0,
    )
    settings.update(overrides)
    return JudgeConfig.from_mapping(settings)


@pytest.fixture
async def server():
    async with ScriptableJudgeServer(RULES) as running:
        yield running


pytestmark = pytest.mark.usefixtures("clean_judge_env")


async def test_grades_pairs_through_the_llm_and_satisfies_the_protocol(server):
    client = OpenAIJudgeClient(fast_config(server.url))
    assert isinstance(client, Judge)
    verdict = await client.grade("Golden-winged Warbler", "Warbler")
    assert (verdict.category, verdict.source) == (Category.LESS_SPECIFIC, "llm")
    verdicts = await client.grade_many([("dog", "samoyed"), ("lion", "Panthera leo"), ("dog", "cat")])
    assert [v.category for v in verdicts] == [Category.MORE_SPECIFIC, Category.SPECIFIC, Category.WRONG]
    body = server.bodies[-1]
    assert body["temperature"] == 0 and body["chat_template_kwargs"] == {"enable_thinking": False}
    metrics = client.pop_metrics()
    assert metrics["judge/requests"] == 4 and metrics["judge/judgements"] == 4
    assert metrics["judge/latency_p95_s"] >= metrics["judge/latency_p50_s"] > 0
    assert client.pop_metrics()["judge/requests"] == 0  # popped: per-step counters
    await client.aclose()


@pytest.mark.parametrize("constraint", ["choice", "json_schema", "text"])
async def test_every_constraint_round_trips(server, constraint):
    client = OpenAIJudgeClient(fast_config(server.url, constraint=constraint))
    assert (await client.grade("dog", "samoyed")).category is Category.MORE_SPECIFIC
    await client.aclose()


async def test_concurrent_identical_pairs_become_one_request(server):
    server.latency_s = 0.05
    client = OpenAIJudgeClient(fast_config(server.url))
    verdicts = await client.grade_many([("dog", "samoyed")] * 40 + [("Dog", "Samoyed!")] * 10)
    assert {v.category for v in verdicts} == {Category.MORE_SPECIFIC}
    assert server.stats["requests"] == 1
    metrics = client.pop_metrics()
    assert (metrics["judge/requests"], metrics["judge/dedup_hits"]) == (1, 49)
    await client.aclose()


async def test_memory_cache_and_short_circuits_send_nothing(server):
    client = OpenAIJudgeClient(fast_config(server.url))
    await client.grade("dog", "samoyed")
    again = await client.grade("dog", "samoyed")
    exact = await client.grade("Golden-winged Warbler", "GOLDEN-WINGED  warbler!")
    refusals = await client.grade_many([("dog", ""), ("dog", "None"), ("dog", "I don't know."), ("dog", "Cannot tell")])
    assert again.source == "cache"
    assert exact.source == "short_circuit" and exact.category is Category.SPECIFIC
    assert all(v.category is Category.ABSTAIN and v.source == "short_circuit" for v in refusals)
    assert server.stats["requests"] == 1
    metrics = client.pop_metrics()
    assert (metrics["judge/cache_hits"], metrics["judge/short_circuits"]) == (1, 5)
    await client.aclose()


async def test_sqlite_cache_survives_a_client_restart(server, tmp_path):
    path = str(tmp_path / "verdicts.sqlite")
    first = OpenAIJudgeClient(fast_config(server.url, cache_path=path))
    await first.grade_many([("dog", "samoyed"), ("lion", "panthera leo")])
    await first.aclose()
    server.set_rules({})  # the server would now say "wrong": a cached verdict must win
    second = OpenAIJudgeClient(fast_config(server.url, cache_path=path))
    verdict = await second.grade("dog", "samoyed")
    assert (verdict.category, verdict.source) == (Category.MORE_SPECIFIC, "cache")
    assert second.pop_metrics()["judge/cache_hits_disk"] == 1
    await second.aclose()
    other_model = OpenAIJudgeClient(fast_config(server.url, cache_path=path, model="another-judge"))
    assert (await other_model.grade("dog", "samoyed")).category is Category.WRONG  # key holds the model
    await other_model.aclose()
    assert server.stats["requests"] == 3


async def test_workers_sharing_a_cache_file_ask_the_judge_once_per_pair(server, tmp_path):
    """Two clients (two reward workers: separate memory caches, one cache file) meet the same new
    pairs at the same moment: one asks, the other waits for its stored verdict."""
    path = str(tmp_path / "verdicts.sqlite")
    server.latency_s = 0.2
    pairs = [("dog", "samoyed"), ("lion", "panthera leo"), ("golden-winged warbler", "warbler")]
    workers = [OpenAIJudgeClient(fast_config(server.url, cache_path=path)) for _ in range(2)]
    results = await asyncio.gather(*(w.grade_many(pairs) for w in workers))
    metrics = [w.pop_metrics() for w in workers]
    for w in workers:
        await w.aclose()
    assert server.stats["requests"] == 3 and set(server.pair_counts.values()) == {1}
    assert [v.category for v in results[0]] == [v.category for v in results[1]] == [
        Category.MORE_SPECIFIC, Category.SPECIFIC, Category.LESS_SPECIFIC]
    assert sum(m["judge/llm_verdicts"] for m in metrics) == 3 and sum(m["judge/cache_hits_disk"] for m in metrics) == 3


async def test_a_claim_left_by_a_dead_worker_expires_after_timeout_s(server, tmp_path):
    path = str(tmp_path / "verdicts.sqlite")
    dead = OpenAIJudgeClient(fast_config(server.url, cache_path=path))
    disk = await dead._disk_cache()
    assert await disk.aclaim(("dog", "samoyed"), stale_after_s=60)  # claimed, never released
    alive = OpenAIJudgeClient(fast_config(server.url, cache_path=path, timeout_s=0.5))
    started = time.monotonic()
    verdict = await alive.grade("dog", "samoyed")
    assert verdict.category is Category.MORE_SPECIFIC and time.monotonic() - started >= 0.5
    assert server.pair_counts[("dog", "samoyed")] == 1
    await alive.aclose()
    await dead.aclose()


async def test_5xx_429_drops_and_hangs_are_retried(server):
    server.hang_s = 5.0
    server.retry_after_s = 0.01
    client = OpenAIJudgeClient(fast_config(server.url, timeout_s=0.3, breaker_failures=10))
    server.queue_faults("5xx", "429", "drop", "hang")
    verdict = await client.grade("dog", "samoyed")
    assert verdict.category is Category.MORE_SPECIFIC
    metrics = client.pop_metrics()
    assert metrics["judge/requests"] == 5 and metrics["judge/retries"] == 4
    assert (metrics["judge/http_5xx"], metrics["judge/http_429"]) == (1, 1)
    assert (metrics["judge/connection_errors"], metrics["judge/timeouts"]) == (1, 1)
    assert metrics["judge/errors"] == 0
    await client.aclose()


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    client = OpenAIJudgeClient(fast_config("http://127.0.0.1:9/v1", backoff_base_s=0.1, backoff_max_s=1.0))
    for failures, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (6, 1.0)):
        delays = [client._backoff(failures, None) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert client._backoff(1, 0.7) >= 0.7
    assert client._backoff(1, 60.0) == 1.0  # Retry-After is capped by backoff_max_s


async def test_garbage_is_retried_once_then_a_counted_error(server):
    client = OpenAIJudgeClient(fast_config(server.url))
    server.queue_faults("garbage")
    assert (await client.grade("dog", "samoyed")).category is Category.MORE_SPECIFIC
    server.queue_faults("garbage", "garbage_body")
    failed = await client.grade("lion", "panthera leo")
    assert failed.category is None and "malformed" in failed.error
    metrics = client.pop_metrics()
    assert (metrics["judge/malformed"], metrics["judge/errors"]) == (3, 1)
    retried = await client.grade("lion", "panthera leo")  # errors are never cached
    assert retried.category is Category.SPECIFIC
    await client.aclose()


async def test_retries_run_out_when_the_judge_answers_others(server):
    server.faults = FaultRates(error_5xx=0.5)
    client = OpenAIJudgeClient(fast_config(server.url, max_retries=0, breaker_failures=1000))
    pairs = [("dog", f"dog breed {i}") for i in range(60)]
    verdicts = await client.grade_many(pairs)
    errors = [v for v in verdicts if not v.ok]
    assert errors and all(v.error.startswith("gave up after") for v in errors)
    assert all(v.category is Category.WRONG for v in verdicts if v.ok)
    assert client.pop_metrics()["judge/errors"] == len(errors)
    await client.aclose()


def test_circuit_breaker_opens_half_opens_and_closes():
    now = [0.0]
    breaker = CircuitBreaker(failures_to_open=2, cooldown_s=1.0, clock=lambda: now[0])
    assert breaker.available() and not breaker.on_failure()
    assert breaker.on_failure() and breaker.state == OPEN
    assert not breaker.available()
    now[0] = 1.0
    assert breaker.available()
    breaker.on_send()
    assert not breaker.available()  # one probe at a time
    breaker.on_failure()
    assert breaker.state == OPEN and not breaker.available()
    now[0] = 2.5
    breaker.on_send()
    assert breaker.on_success() and breaker.state == CLOSED


async def test_open_breaker_stops_requests_to_a_failing_endpoint(server):
    server.faults = FaultRates(error_5xx=1.0)
    client = OpenAIJudgeClient(
        fast_config(server.url, breaker_failures=3, breaker_cooldown_s=0.2, failure_budget_s=0.5, on_failure="degrade")
    )
    verdict = await client.grade("dog", "samoyed")
    assert verdict.source == "degraded"
    metrics = client.pop_metrics()
    assert metrics["judge/breaker_opens"] == 1
    # 3 failures open it; then at most one probe per cooldown within the 0.5 s budget.
    assert server.stats["requests"] <= 3 + 4
    await client.aclose()


async def test_failover_to_the_healthy_endpoint_and_load_balancing():
    async with ScriptableJudgeServer(RULES) as sick, ScriptableJudgeServer(RULES) as healthy:
        sick.faults = FaultRates(error_5xx=1.0)
        client = OpenAIJudgeClient(fast_config(sick.url, healthy.url, breaker_cooldown_s=30))
        pairs = [("dog", f"dog breed {i}") for i in range(30)]
        verdicts = await client.grade_many(pairs)
        assert all(v.category is Category.WRONG and v.ok for v in verdicts)
        metrics = client.pop_metrics()
        assert metrics["judge/failovers"] >= 1 and metrics["judge/breakers_open"] == 1
        assert healthy.stats["ok"] == 30
        sick.reset_stats()
        more = await client.grade_many([("dog", f"dog mix {i}") for i in range(30)])
        assert all(v.ok for v in more)
        assert sick.stats["requests"] == 0  # its breaker is open: no traffic until the cooldown ends
        await client.aclose()
        sick.faults = FaultRates()
        balanced = OpenAIJudgeClient(fast_config(sick.url, healthy.url))
        sick.reset_stats(), healthy.reset_stats()
        await balanced.grade_many([("cat", f"cat breed {i}") for i in range(40)])
        assert sick.stats["requests"] >= 10 and healthy.stats["requests"] >= 10
        await balanced.aclose()


async def test_outage_past_the_budget_fails_loudly_by_default(server, monkeypatch, caplog):
    monkeypatch.setenv("SPECIARL_JUDGE_API_KEY", "sk-do-not-leak")
    caplog.set_level(logging.DEBUG)
    await server.stop()
    client = OpenAIJudgeClient(fast_config(server.url, failure_budget_s=0.3))
    with pytest.raises(JudgeUnavailableError) as raised:
        await client.grade_many([("dog", "samoyed"), ("lion", "panthera leo")])
    message = str(raised.value)
    assert server.url in message and "failure_budget_s=0.3" in message and "degrade" in message
    assert "sk-do-not-leak" not in message and "sk-do-not-leak" not in caplog.text
    await client.aclose()


async def test_degrade_mode_returns_counted_errors_and_recovers(server):
    await server.stop()
    client = OpenAIJudgeClient(fast_config(server.url, failure_budget_s=0.2, on_failure="degrade"))
    verdicts = await client.grade_many([("dog", "samoyed"), ("lion", "panthera leo"), ("dog", "dog")])
    assert [v.source for v in verdicts] == ["degraded", "degraded", "short_circuit"]
    assert all("unavailable" in v.error for v in verdicts[:2])
    metrics = client.pop_metrics()
    assert (metrics["judge/degraded"], metrics["judge/errors"]) == (2, 2)
    await server.start()  # same port
    await asyncio.sleep(0.06)  # one breaker cooldown: the next request is a probe
    assert (await client.grade("dog", "samoyed")).category is Category.MORE_SPECIFIC
    await client.aclose()


async def test_rejected_requests_are_configuration_errors(server, monkeypatch):
    server.api_key = "right-key"
    monkeypatch.setenv("SPECIARL_JUDGE_API_KEY", "wrong-key")
    client = OpenAIJudgeClient(fast_config(server.url))
    with pytest.raises(JudgeUnavailableError, match="HTTP 401") as raised:
        await client.grade("dog", "samoyed")
    assert "wrong-key" not in str(raised.value)
    assert server.stats["requests"] == 1  # not retried
    degrade = OpenAIJudgeClient(fast_config(server.url, on_failure="degrade"))
    assert "HTTP 401" in (await degrade.grade("dog", "samoyed")).error
    monkeypatch.setenv("SPECIARL_JUDGE_API_KEY", "right-key")
    keyed = OpenAIJudgeClient(fast_config(server.url))
    assert (await keyed.grade("dog", "samoyed")).category is Category.MORE_SPECIFIC
    for c in (client, degrade, keyed):
        await c.aclose()


async def test_model_is_discovered_when_unset(server):
    client = OpenAIJudgeClient(fast_config(server.url, model=None))
    assert (await client.grade("dog", "samoyed")).ok
    assert server.bodies[-1]["model"] == "scripted-judge" and "scripted-judge" in repr(client)
    await client.aclose()


def test_usable_from_successive_event_loops():
    with ScriptableJudgeServer(RULES).start_in_thread() as running:
        client = OpenAIJudgeClient(fast_config(running.url))
        assert asyncio.run(client.grade("dog", "samoyed")).ok
        assert asyncio.run(client.grade("lion", "panthera leo")).category is Category.SPECIFIC


def test_cli_prints_the_category():
    with ScriptableJudgeServer(RULES).start_in_thread() as running:
        command = [sys.executable, "-m", "verl_ext.judge", "--url", running.url]
        done = subprocess.run(
            command + ["--gt", "Golden-winged Warbler", "--pred", "warbler"], capture_output=True, text=True, timeout=60
        )
        assert (done.returncode, done.stdout.strip()) == (0, "less specific")
        running.queue_faults("garbage", "garbage")
        bad = subprocess.run(command + ["--gt", "dog", "--pred", "cat"], capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "malformed" in bad.stderr
    down = subprocess.run(
        command + ["--gt", "dog", "--pred", "cat", "--timeout-s", "0.5"], capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 2 and "judge unavailable" in down.stderr


async def test_concurrent_first_calls_open_one_sqlite_cache(server, tmp_path, monkeypatch):
    """While the model is being discovered, every waiting pair used to open its own sqlite file."""
    opened = []
    real_init = SqliteVerdictCache.__init__

    def counting_init(self, *args, **kwargs):
        opened.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(SqliteVerdictCache, "__init__", counting_init)
    client = OpenAIJudgeClient(fast_config(server.url, model=None, cache_path=str(tmp_path / "verdicts.sqlite")))
    verdicts = await client.grade_many([("dog", f"dog breed {i}") for i in range(20)])
    assert all(v.ok for v in verdicts)
    assert len(opened) == 1
    await client.aclose()


def test_a_new_event_loop_closes_the_http_client_of_the_old_one():
    with ScriptableJudgeServer(RULES).start_in_thread() as running:
        client = OpenAIJudgeClient(fast_config(running.url))
        assert asyncio.run(client.grade("dog", "samoyed")).ok
        first = client._state.http
        assert first.is_closed  # closed as its loop shut down, not left for the garbage collector
        assert asyncio.run(client.grade("lion", "panthera leo")).ok
        assert client._state.http is not first
        asyncio.run(client.aclose())


async def test_a_failed_cache_write_is_counted_but_a_bug_in_it_surfaces(server, tmp_path, monkeypatch):
    import sqlite3

    client = OpenAIJudgeClient(fast_config(server.url, cache_path=str(tmp_path / "verdicts.sqlite")))

    async def locked(self, pair, category):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(SqliteVerdictCache, "aput", locked)
    assert (await client.grade("dog", "samoyed")).category is Category.MORE_SPECIFIC  # the verdict stands
    assert client.pop_metrics()["judge/cache_write_errors"] == 1

    async def buggy(self, pair, category):
        raise TypeError("a bug in the cache code")

    monkeypatch.setattr(SqliteVerdictCache, "aput", buggy)
    with pytest.raises(TypeError, match="a bug"):
        await client.grade("lion", "panthera leo")
    await client.aclose()


def test_cli_lets_a_programming_error_surface(monkeypatch):
    from verl_ext.judge.__main__ import main

    async def buggy(self, ground_truth, prediction):
        raise ValueError("a bug, not a judge error")

    monkeypatch.setattr(OpenAIJudgeClient, "grade", buggy)
    with pytest.raises(ValueError, match="a bug"):
        main(["--url", "http://127.0.0.1:9/v1", "--model", "m", "--gt", "dog", "--pred", "cat"])

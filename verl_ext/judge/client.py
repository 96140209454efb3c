"""The async judge client for any OpenAI-compatible server (vLLM, SGLang, llama.cpp, hosted APIs).

What is asked and how a reply is read is the client's :class:`~verl_ext.judge.task.JudgeTask`:
the six categories by default (``task.GRADING``), or LLM inclusion for the evaluation
(``judge.inclusion.INCLUSION``); everything below is the same for both.

Each pair goes through, in order: a deterministic short-circuit, the in-memory LRU, in-flight
dedup (one request per distinct pair in flight), the sqlite cache, then the LLM. LLM requests
share one global concurrency limit, spread over the endpoints, and are retried with
exponential backoff and jitter on connection errors, timeouts, 5xx and 429. A malformed reply
is retried once and then becomes an error verdict.

Outages: ``failing_since`` is the time of the first failure since the last success. While it
is younger than ``failure_budget_s`` requests keep waiting and retrying; ``max_retries`` only
ends a pair's attempts when the judge has answered other requests since the pair began (its
failures were bad luck, and it becomes an error verdict). Once the budget is
spent, ``on_failure="fail"`` raises :class:`JudgeUnavailableError` (the training step fails,
loudly) and ``on_failure="degrade"`` returns error verdicts, counted in ``judge/degraded``.
Nothing is ever turned into a silent "wrong".
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Optional, Sequence

import httpx

from verl_ext.judge.base import JudgeUnavailableError
from verl_ext.judge.cache import LRUVerdictCache, SqliteVerdictCache
from verl_ext.judge.config import JudgeConfig, redact_url
from verl_ext.judge.endpoints import CircuitBreaker, Endpoint, EndpointPool
from verl_ext.judge.http_client import (
    TRANSPORT_ERRORS,
    ModelListingError,
    error_name,
    is_timeout,
    new_http_client,
    served_models,
    within,
)
from verl_ext.judge.metrics import JudgeMetrics
from verl_ext.judge.protocol import MalformedReply, RejectedRequest, RetryableFailure, response_text
from verl_ext.judge.task import GRADING, JudgeTask

logger = logging.getLogger(__name__)

Pair = tuple[str, str]
_MALFORMED_ATTEMPTS = 2  # the first reply plus one retry


@dataclass(frozen=True)
class _Outcome:
    """One pair's result inside the client: the task's answer, or an error; the task turns it
    into the verdict type callers see."""

    answer: Any
    error: Optional[str] = None
    source: str = "llm"

    @property
    def ok(self) -> bool:
        return self.answer is not None


@dataclass
class _LoopState:
    """What is bound to one event loop: the HTTP client, the semaphore, the in-flight table.

    ``closer`` is an async generator started on the loop: the loop's ``shutdown_asyncgens()``
    (which ``asyncio.run`` calls before closing it) finalises it, and that closes ``http`` while
    its loop still runs. So a client used from successive loops leaves no connection behind.
    """

    loop: asyncio.AbstractEventLoop
    http: httpx.AsyncClient
    slots: asyncio.Semaphore
    closer: AsyncGenerator[None, None]
    in_flight: dict[Pair, "asyncio.Task[_Outcome]"] = field(default_factory=dict)
    model_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    disk_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


async def _close_with_the_loop(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        await http.aclose()


def _closer_for(http: httpx.AsyncClient) -> AsyncGenerator[None, None]:
    """The closer of ``http``, started: its first step (to the ``yield``, awaiting nothing) runs
    here, which registers it with the running loop's async-generator hooks."""
    closer = _close_with_the_loop(http)
    try:
        closer.__anext__().send(None)
    except StopIteration:  # reached the yield
        return closer
    raise RuntimeError("the closer awaited before its first yield")  # pragma: no cover


class OpenAIJudgeClient:
    """Implements :class:`verl_ext.judge.base.Judge` over HTTP; one instance per process (and task)."""

    def __init__(self, config: JudgeConfig, task: JudgeTask = GRADING) -> None:
        self.config = config
        self.task = task
        self._api_key = config.api_key()  # kept out of every repr, log line and message
        self._model: Optional[str] = config.model
        self._pool = EndpointPool(
            [Endpoint(url, CircuitBreaker(config.breaker_failures, config.breaker_cooldown_s)) for url in config.urls]
        )
        self._memory = LRUVerdictCache(config.cache_size)
        self._disk: Optional[SqliteVerdictCache] = None
        self._metrics = JudgeMetrics()
        self._state: Optional[_LoopState] = None
        self._failing_since: Optional[float] = None
        self._last_success_at = float("-inf")
        self._last_error = ""
        self._rng = random.Random()
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"OpenAIJudgeClient(urls=[{self.config.describe_urls()}], model={self._model!r}, "
            f"constraint={self.config.constraint!r}, on_failure={self.config.on_failure!r})"
        )

    # ------------------------------------------------------------------ Judge protocol
    async def grade(self, ground_truth: str, prediction: str) -> Any:
        """Grade one pair (a :class:`~verl_ext.judge.base.Verdict` for the default task);
        raises :class:`JudgeUnavailableError` only with ``on_failure="fail"``."""
        outcome = await self._outcome(ground_truth, prediction)
        return self.task.verdict(outcome.answer, outcome.error, outcome.source)

    async def _outcome(self, ground_truth: str, prediction: str) -> _Outcome:
        if self._closed:
            raise RuntimeError("the judge client is closed")
        pair = self.task.pair(ground_truth, prediction)
        self._metrics.add("judgements")
        shortcut = self.task.shortcut(pair)
        if shortcut is not None:
            self._metrics.add("short_circuits")
            return _Outcome(shortcut, source="short_circuit")
        cached = self._memory.get(pair)
        if cached is not None:
            self._metrics.add("cache_hits")
            return _Outcome(cached, source="cache")
        state = self._loop_state()
        task = state.in_flight.get(pair)
        if task is not None:
            self._metrics.add("dedup_hits")
            outcome = await asyncio.shield(task)
            if not outcome.ok:
                self._metrics.add("errors")
            return _Outcome(outcome.answer, outcome.error, source="dedup")
        task = state.loop.create_task(self._judge_uncached(pair))
        state.in_flight[pair] = task
        task.add_done_callback(lambda t, p=pair, s=state: _forget(s, p, t))
        outcome = await asyncio.shield(task)
        if not outcome.ok:
            self._metrics.add("errors")
        return outcome

    async def grade_many(self, pairs: Sequence[tuple[str, str]]) -> list[Any]:
        """Grade pairs concurrently, in order; on an outage error the rest are cancelled."""
        tasks = [asyncio.ensure_future(self.grade(gt, pred)) for gt, pred in pairs]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def pop_metrics(self) -> dict[str, float]:
        return self._metrics.pop(
            {"breakers_open": self._pool.open_count(), "memory_cache_size": len(self._memory)}
        )

    async def aclose(self) -> None:
        self._closed = True
        state, self._state = self._state, None
        if state is not None:
            for task in list(state.in_flight.values()):
                task.cancel()
            if state.loop is asyncio.get_running_loop():
                await state.closer.aclose()  # else that loop closes it when it shuts down
        if self._disk is not None:
            disk, self._disk = self._disk, None
            await disk.aclose()

    # ------------------------------------------------------------------ internals
    def _loop_state(self) -> _LoopState:
        """The state of the running loop, created on first use."""
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            limit = self.config.max_concurrency
            http = new_http_client(timeout_s=self.config.timeout_s, max_connections=limit, api_key=self._api_key)
            self._state = _LoopState(loop=loop, http=http, slots=asyncio.Semaphore(limit), closer=_closer_for(http))
        return self._state

    async def _disk_cache(self) -> Optional[SqliteVerdictCache]:
        if self.config.cache_path is None:
            return None
        if self._disk is None:
            async with self._loop_state().disk_lock:  # concurrent first calls open one file
                if self._disk is None:
                    try:
                        model = await self._resolved_model()
                    except (RetryableFailure, RejectedRequest, JudgeUnavailableError):
                        return None  # unknown model and no server yet: skip the disk until one answers
                    self._disk = await SqliteVerdictCache.open(
                        self.config.cache_path, model, self.task.cache_key(self.config),
                        encode=self.task.encode, decode=self.task.decode,
                    )
        return self._disk

    async def _judge_uncached(self, pair: Pair) -> _Outcome:
        disk = await self._disk_cache()
        if disk is not None:  # past this block, this process holds the pair's claim
            stored = await disk.stored_or_claim(pair, stale_after_s=self.config.timeout_s)
            if stored is not None:
                self._memory.put(pair, stored)
                self._metrics.add("cache_hits")
                self._metrics.add("cache_hits_disk")
                return _Outcome(stored, source="cache")
        try:
            outcome = await self._ask_llm(pair)
            if outcome.ok:
                self._metrics.add("llm_verdicts")
                self._memory.put(pair, outcome.answer)
                if disk is not None:
                    await self._store(disk, pair, outcome.answer)
            return outcome
        finally:
            if disk is not None:
                await disk.arelease(pair)

    async def _store(self, disk: SqliteVerdictCache, pair: Pair, answer: Any) -> None:
        try:
            await disk.aput(pair, answer)
        except (sqlite3.Error, OSError) as exc:  # the verdict stands; only the persistence failed
            self._metrics.add("cache_write_errors")
            logger.warning("judge cache write to %s failed: %s", disk.path, exc)

    async def _ask_llm(self, pair: Pair) -> _Outcome:
        """Send the pair until a valid label comes back, or the retry and outage rules stop it."""
        cfg = self.config
        failures = 0
        malformed = 0
        started = time.monotonic()
        last: Optional[Endpoint] = None
        while True:
            endpoint = self._pool.acquire(avoid=last)
            if endpoint is None:
                if self._budget_spent():
                    return self._give_up(pair)
                await asyncio.sleep(max(0.001, min(self._pool.seconds_until_probe(), self._budget_left())))
                continue
            if last is not None and endpoint is not last:
                self._metrics.add("failovers")
            last = endpoint
            try:
                answer = await self._attempt(endpoint, pair)
            except RetryableFailure as exc:
                self._on_endpoint_failure(endpoint, exc)
                failures += 1
                if self._budget_spent():
                    return self._give_up(pair)
                # Out of retries while the judge answers others: this pair's bad luck, an error.
                # While nothing has answered since this pair began, the judge is down: wait on.
                if failures > cfg.max_retries and self._last_success_at >= started:
                    return _Outcome(None, f"gave up after {failures} attempts: {exc}")
                self._metrics.add("retries")
                # Never sleep past the failure budget: a judge that is down must fail the step on time.
                await asyncio.sleep(min(self._backoff(failures, exc.retry_after_s), max(self._budget_left(), 0.001)))
                continue
            except MalformedReply as exc:
                self._on_endpoint_success(endpoint)
                malformed += 1
                self._metrics.add("malformed")
                if malformed >= _MALFORMED_ATTEMPTS:
                    return _Outcome(None, f"malformed judge reply: {exc}")
                self._metrics.add("retries")
                continue
            except RejectedRequest as exc:
                self._on_endpoint_success(endpoint)
                if exc.metric:
                    self._metrics.add(exc.metric)
                message = f"judge request rejected by {redact_url(endpoint.base_url)}: {exc}"
                if cfg.on_failure == "fail":
                    raise JudgeUnavailableError(message + " (check judge.model, judge.urls and the API key)") from None
                self._metrics.add("degraded")
                return _Outcome(None, message, source="degraded")
            finally:
                self._pool.release(endpoint)
            self._on_endpoint_success(endpoint)
            return _Outcome(answer)

    async def _attempt(self, endpoint: Endpoint, pair: Pair) -> Any:
        state = self._loop_state()
        model = await self._resolved_model(endpoint)
        body = self.task.request_body(self.config, model, pair)
        async with state.slots:
            self._metrics.add("requests")
            started = time.monotonic()
            try:
                response = await within(state.http.post(endpoint.chat_url, json=body), self.config.timeout_s)
            except (asyncio.TimeoutError, *TRANSPORT_ERRORS) as exc:
                if is_timeout(exc):
                    raise RetryableFailure(f"no reply within {self.config.timeout_s:g}s", "timeouts") from None
                raise RetryableFailure(f"connection error: {error_name(exc)}", "connection_errors") from None
            except asyncio.CancelledError:
                endpoint.breaker.on_abandon()
                raise
            self._metrics.latencies.append(time.monotonic() - started)
        text = response_text(response)
        answer = self.task.read_reply(text, self.config)
        if answer is None:
            raise MalformedReply(f"not an answer to the {self.task.name} prompt: {str(text)[:80]!r}")
        return answer

    async def _resolved_model(self, endpoint: Optional[Endpoint] = None) -> str:
        """``judge.model``, or the first model the server lists when it is unset."""
        if self._model:
            return self._model
        state = self._loop_state()
        async with state.model_lock:  # one discovery, not one per concurrent request
            if self._model:
                return self._model
            return await self._discover_model(state, endpoint)

    async def _discover_model(self, state: _LoopState, endpoint: Optional[Endpoint]) -> str:
        endpoints = [endpoint] if endpoint is not None else self._pool.endpoints
        for candidate in endpoints:
            try:
                models = await served_models(state.http, candidate.base_url, self.config.timeout_s)
            except ModelListingError as exc:
                if exc.status is not None and exc.status < 500:
                    raise RejectedRequest(f"HTTP {exc.status} listing models; set judge.model") from None
                if exc.malformed:
                    raise RejectedRequest("the server lists no models; set judge.model") from None
                if endpoint is not None:  # unreachable, or a 5xx: the endpoint is unhealthy
                    metric = "timeouts" if exc.timed_out else "http_5xx" if exc.status else "connection_errors"
                    raise RetryableFailure(f"cannot list models: {exc}", metric) from None
                continue
            if not models:
                raise RejectedRequest("the server lists no models; set judge.model")
            self._model = models[0]
            logger.info("judge model not set; using %r served at %s", self._model, redact_url(candidate.base_url))
            return self._model
        raise JudgeUnavailableError(f"cannot list the judge's models at {self.config.describe_urls()}; set judge.model")

    def _on_endpoint_failure(self, endpoint: Endpoint, exc: RetryableFailure) -> None:
        self._metrics.add(exc.metric)
        self._last_error = f"{redact_url(endpoint.base_url)}: {exc}"
        if self._failing_since is None:
            self._failing_since = time.monotonic()
        if endpoint.breaker.on_failure():
            self._metrics.add("breaker_opens")
            logger.warning(
                "judge endpoint %s failing (%s); circuit open for %.1fs",
                redact_url(endpoint.base_url), exc, self.config.breaker_cooldown_s,
            )

    def _on_endpoint_success(self, endpoint: Endpoint) -> None:
        self._failing_since = None
        self._last_success_at = time.monotonic()
        if endpoint.breaker.on_success():
            logger.info("judge endpoint %s answers again; circuit closed", redact_url(endpoint.base_url))

    def _budget_left(self) -> float:
        if self._failing_since is None:
            return self.config.failure_budget_s
        return max(0.0, self.config.failure_budget_s - (time.monotonic() - self._failing_since))

    def _budget_spent(self) -> bool:
        return self._failing_since is not None and self._budget_left() <= 0.0

    def _give_up(self, pair: Pair) -> _Outcome:
        down_for = time.monotonic() - (self._failing_since or time.monotonic())
        message = (
            f"judge unavailable for {down_for:.1f}s (judge.failure_budget_s={self.config.failure_budget_s:g}) "
            f"at {self.config.describe_urls()}; last error: {self._last_error}"
        )
        if self.config.on_failure == "fail":
            raise JudgeUnavailableError(message + ". Fix the judge server, or set judge.on_failure=degrade "
                                        "to mark affected rollouts as judge errors instead.")
        self._metrics.add("degraded")
        return _Outcome(None, message, source="degraded")

    def _backoff(self, failures: int, retry_after_s: Optional[float]) -> float:
        cap = min(self.config.backoff_max_s, self.config.backoff_base_s * (2 ** (failures - 1)))
        delay = cap / 2 + self._rng.uniform(0, cap / 2)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.config.backoff_max_s))
        return delay


def _forget(state: _LoopState, pair: Pair, task: "asyncio.Task[_Outcome]") -> None:
    """Drop a finished request from the in-flight table; its outcome was (or is) awaited by
    the callers, so an exception nobody is left to await is not reported twice."""
    state.in_flight.pop(pair, None)
    if not task.cancelled():
        task.exception()

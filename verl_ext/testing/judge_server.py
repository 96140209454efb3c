"""A scriptable OpenAI-compatible judge server for tests and benchmarks (aiohttp, 127.0.0.1 only).

It answers like a vLLM judge would, but grades by a **rule table** instead of a model, and can
inject the faults a real deployment shows. It stands in for the vLLM server that cannot run
on CPU; the grading logic is a test double, the HTTP layer is real.

Endpoints
    ``POST /v1/chat/completions``  reads ``(ground_truth, prediction)`` from the JSON line of
        the last user message (see ``verl_ext.judge.prompt``) and replies with the category:
        ``{"category": "<label>"}`` when ``response_format`` asks for a JSON schema, the bare
        label otherwise (``structured_outputs: {choice: [...]}`` and ``guided_choice`` are
        honoured: a label outside the offered choices is never returned).
        A request built by the LLM-inclusion task (``verl_ext.judge.inclusion``) is answered by
        ``inclusion_rule(reference, prediction)`` instead: the reply text itself (default: "1"
        when the lower-cased reference occurs in the lower-cased prediction, else "0").
    ``GET /v1/models``  lists ``model_name``.   ``GET /health``  200 while up.
    ``GET /stats``  the counters below as JSON (for a server in another process).

Rule table
    ``rules`` is a mapping ``(ground_truth, prediction) -> label | Category`` (keys are
    normalised with ``normalise_label`` on both sides) or a callable ``(gt, pred) -> label``;
    pairs not in the table get ``default`` (``"wrong"``). A message without a readable pair
    gets ``default`` too, and counts in ``stats["unreadable"]``.

Faults (all mutable while the server runs)
    ``latency_s``        fixed service time of every answered request, while holding a slot;
    ``capacity``         concurrent requests served at once; the rest wait in a queue;
    ``faults``           a :class:`FaultRates` of probabilities, drawn per request from a seeded
                         RNG: ``error_5xx`` (503), ``rate_limit_429`` (with ``Retry-After`` when
                         ``retry_after_s`` is set), ``hang`` (no reply for ``hang_s`` or until
                         stop; holds no slot), ``garbage`` (200 with text that is no label, or a
                         body that is not JSON), ``drop`` (the connection is closed unanswered);
    ``queue_faults(*kinds)``  a schedule consumed by the next requests before any draw:
                         kinds are ``"ok"``, ``"5xx"``, ``"429"``, ``"hang"``, ``"garbage"``,
                         ``"garbage_body"``, ``"drop"``;
    ``restart(down_s)``  stop, stay down ``down_s`` seconds (connections refused), start again on
                         the same port; in-flight requests lose their connection;
    ``api_key``          when set, requests need ``Authorization: Bearer <api_key>`` (else 401).

Counters: ``stats`` (a ``Counter``: ``requests``, ``ok``, ``5xx``, ``429``, ``hang``,
``garbage``, ``drop``, ``unauthorized``, ``unreadable``, ``models``, ``health``, ``restarts``),
``pair_counts`` (a ``Counter`` of the graded pairs, for dedup assertions), ``inclusion_counts``
(the same for inclusion requests), ``max_in_flight``,
``bodies`` (the last 200 request bodies), ``reset_stats()``.

Use from async code::

    async with ScriptableJudgeServer({("lion", "cat"): "wrong"}, latency_s=0.05) as server:
        ...  # server.url == "http://127.0.0.1:PORT/v1"
        await server.restart(down_s=0.1)

or from sync code (the server runs its own event loop in a background thread)::

    with ScriptableJudgeServer(rules, capacity=64).start_in_thread() as server:
        ...  # server.restart_sync(); server.stats["requests"]

``restart()``/``stop()`` may be awaited from any loop: when the server lives in its own
thread they are forwarded to it.
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import threading
from typing import Any, Optional

from aiohttp import web

from verl_ext.core.answer import normalise_label
from verl_ext.core.categories import Category
from verl_ext.judge.inclusion import parse_pair_from_message as parse_inclusion_pair
from verl_ext.testing.judge_wire import (
    FAULT_KINDS,
    GARBAGE_TEXTS,
    FaultRates,
    InclusionRule,
    Label,
    RuleTable,
    completion,
    format_label,
    label_of,
    pair_from_body,
    substring_inclusion,
    unauthorised,
    user_text,
)

__all__ = ["FaultRates", "Label", "RuleTable", "ScriptableJudgeServer", "label_of", "substring_inclusion"]


class ScriptableJudgeServer:
    """An OpenAI-compatible server that grades by a rule table and injects faults on demand."""

    def __init__(
        self,
        rules: Optional[RuleTable] = None,
        *,
        default: Label = "wrong",
        latency_s: float = 0.0,
        capacity: Optional[int] = None,
        faults: Optional[FaultRates] = None,
        hang_s: float = 3600.0,
        retry_after_s: Optional[float] = None,
        api_key: Optional[str] = None,
        model_name: str = "scripted-judge",
        seed: int = 0,
        port: int = 0,
        inclusion_rule: InclusionRule = substring_inclusion,
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(f"capacity must be >= 1 or None, got {capacity}")
        if latency_s < 0:
            raise ValueError(f"latency_s must be >= 0, got {latency_s}")
        self.rules = rules if rules is not None else {}
        self.inclusion_rule = inclusion_rule
        self.default = label_of(default)
        self.latency_s = latency_s
        self.capacity = capacity
        self.faults = faults or FaultRates()
        self.hang_s = hang_s
        self.retry_after_s = retry_after_s
        self.api_key = api_key
        self.model_name = model_name
        self.port = port
        self._rng = random.Random(seed)
        self._schedule: collections.deque[str] = collections.deque()
        self._table = self._normalised_table()
        self.stats: collections.Counter[str] = collections.Counter()
        self.pair_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.inclusion_counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.bodies: collections.deque[dict[str, Any]] = collections.deque(maxlen=200)
        self.in_flight = 0
        self.max_in_flight = 0
        self._runner: Optional[web.AppRunner] = None
        self._slots: Optional[asyncio.Semaphore] = None
        self._stopping: Optional[asyncio.Event] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._thread: Optional[threading.Thread] = None

    # ----------------------------------------------------------------- public API
    @property
    def url(self) -> str:
        """Base URL for OpenAI clients, ``http://127.0.0.1:PORT/v1``."""
        if not self.port:
            raise RuntimeError("the server has not been started yet")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue_faults(self, *kinds: str) -> None:
        """Force the next requests' outcomes, in order, before any random draw."""
        for kind in kinds:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        self._schedule.extend(kinds)

    def set_rules(self, rules: RuleTable) -> None:
        self.rules = rules
        self._table = self._normalised_table()

    def reset_stats(self) -> None:
        self.stats.clear()
        self.pair_counts.clear()
        self.inclusion_counts.clear()
        self.bodies.clear()
        self.max_in_flight = self.in_flight

    def grade(self, ground_truth: str, prediction: str) -> Category:
        """The category the rule table gives a pair (what a healthy request returns)."""
        gt, pred = normalise_label(ground_truth), normalise_label(prediction)
        if callable(self.rules):
            return label_of(self.rules(gt, pred))
        return self._table.get((gt, pred), self.default)

    async def start(self) -> "ScriptableJudgeServer":
        """Start serving on the running loop (async use)."""
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        await self._bind()
        return self

    async def stop(self) -> None:
        """Stop serving; hung requests are released."""
        await self._on_server_loop(self._stop_impl())

    async def restart(self, down_s: float = 0.0) -> None:
        """Stop, stay down ``down_s`` seconds, start again on the same port."""
        await self._on_server_loop(self._restart_impl(down_s))

    def start_in_thread(self) -> "ScriptableJudgeServer":
        """Serve from a background thread with its own event loop (sync use); returns self."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self.start())
            except BaseException as exc:  # surfaced to the starting thread below
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"judge-server-{id(self)}", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            raise errors[0]
        return self

    def stop_in_thread(self) -> None:
        """Stop a server started with :meth:`start_in_thread` and join its thread."""
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop_impl(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._thread = None

    def restart_sync(self, down_s: float = 0.0) -> None:
        """:meth:`restart` for sync code (thread mode)."""
        self._require_thread()
        asyncio.run_coroutine_threadsafe(self._restart_impl(down_s), self._loop).result(timeout=60)

    async def __aenter__(self) -> "ScriptableJudgeServer":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def __enter__(self) -> "ScriptableJudgeServer":
        if self._thread is None:
            self.start_in_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_in_thread()

    # ----------------------------------------------------------------- internals
    def _normalised_table(self) -> dict[tuple[str, str], Category]:
        if callable(self.rules):
            return {}
        return {
            (normalise_label(gt), normalise_label(pred)): label_of(label)
            for (gt, pred), label in self.rules.items()
        }

    def _require_thread(self) -> None:
        if self._thread is None or self._loop is None:
            raise RuntimeError("the server is not running in a thread; use start_in_thread()")

    async def _on_server_loop(self, coro: Any) -> None:
        if self._loop is None:
            coro.close()
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self._loop:
            await coro
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def _bind(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/stats", self._stats)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        self.port = runner.addresses[0][1]
        self._runner = runner
        self._slots = asyncio.Semaphore(self.capacity) if self.capacity else None
        assert self._stopping is not None
        self._stopping.clear()

    async def _stop_impl(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _restart_impl(self, down_s: float) -> None:
        await self._stop_impl()
        self.stats["restarts"] += 1
        if down_s > 0:
            await asyncio.sleep(down_s)
        await self._bind()

    def _next_fault(self) -> str:
        if self._schedule:
            return self._schedule.popleft()
        return self.faults.draw(self._rng)

    async def _health(self, request: web.Request) -> web.Response:
        self.stats["health"] += 1
        return web.Response(text="ok")

    async def _stats(self, request: web.Request) -> web.Response:
        """The counters, for a test that runs the server in another process."""
        return web.json_response(self.stats_snapshot())

    def stats_snapshot(self) -> dict[str, Any]:
        """``stats``, ``pair_counts`` (as ``[gt, pred, count]`` rows) and ``max_in_flight``, JSON-ready."""
        return {
            "stats": dict(self.stats),
            "pair_counts": [[gt, pred, count] for (gt, pred), count in sorted(self.pair_counts.items())],
            "max_in_flight": self.max_in_flight,
        }

    async def _models(self, request: web.Request) -> web.Response:
        self.stats["models"] += 1
        if not self._authorised(request):
            return unauthorised()
        return web.json_response(
            {"object": "list", "data": [{"id": self.model_name, "object": "model", "owned_by": "verl_ext-testing"}]}
        )

    def _authorised(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        if request.headers.get("Authorization", "") == f"Bearer {self.api_key}":
            return True
        self.stats["unauthorized"] += 1
        return False

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.stats["requests"] += 1
        if not self._authorised(request):
            return unauthorised()
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": {"message": "body is not JSON"}}, status=400)
        self.bodies.append(body)
        fault = self._next_fault()
        self.stats[fault if fault != "garbage_body" else "garbage"] += 1
        if fault == "429":
            headers = {"Retry-After": f"{self.retry_after_s:g}"} if self.retry_after_s is not None else {}
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers=headers)
        if fault == "5xx":
            return web.json_response({"error": {"message": "injected server error"}}, status=503)
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # the handler ends without a reply
        if fault == "hang":
            assert self._stopping is not None
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.hang_s)
            except asyncio.TimeoutError:
                pass
            return web.json_response({"error": {"message": "hung request released"}}, status=503)
        return await self._serve(body, fault)

    async def _serve(self, body: dict[str, Any], fault: str) -> web.StreamResponse:
        if self._slots is not None:
            await self._slots.acquire()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.latency_s > 0:
                await asyncio.sleep(self.latency_s)
            if fault == "garbage_body":
                return web.Response(text="<html>502 Bad Gateway</html>", content_type="application/json")
            if fault == "garbage":
                content = self._rng.choice(GARBAGE_TEXTS)
            else:
                content = self._answer(body)
            return web.json_response(completion(self.model_name, content))
        finally:
            self.in_flight -= 1
            if self._slots is not None:
                self._slots.release()

    def _answer(self, body: dict[str, Any]) -> str:
        inclusion = user_text(body)
        inclusion = parse_inclusion_pair(inclusion) if inclusion is not None else None
        if inclusion is not None:
            self.inclusion_counts[inclusion] += 1
            return self.inclusion_rule(*inclusion)
        pair = pair_from_body(body)
        if pair is None:
            self.stats["unreadable"] += 1
            category = self.default
        else:
            self.pair_counts[pair] += 1
            category = self.grade(*pair)
        return format_label(body, category.label)

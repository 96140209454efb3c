"""The scriptable OpenAI-compatible judge server (a real aiohttp server on 127.0.0.1).

It stands in for a vLLM judge, which cannot run on CPU: its grading is a rule table (a test
double), its HTTP behaviour and fault injection are real.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from verl_ext.judge.prompt import build_messages
from verl_ext.testing.judge_server import FaultRates, ScriptableJudgeServer

RULES = {("Golden-winged Warbler", "warbler"): "less specific", ("dog", "samoyed"): "more specific"}


def _body(gt: str, pred: str, **extra) -> dict:
    return {"model": "m", "messages": build_messages(gt, pred), "temperature": 0, **extra}


def _content(response: httpx.Response) -> str:
    return response.json()["choices"][0]["message"]["content"]


async def test_grades_by_rule_table_in_every_output_format():
    async with ScriptableJudgeServer(RULES) as server, httpx.AsyncClient() as http:
        url = server.url + "/chat/completions"
        assert server.url.startswith("http://127.0.0.1:")
        plain = await http.post(url, json=_body("golden-winged warbler", "warbler"))
        assert _content(plain) == "less specific"
        schema = await http.post(url, json=_body("dog", "samoyed", response_format={"type": "json_schema"}))
        assert _content(schema) == '{"category": "more specific"}'
        unknown = await http.post(url, json=_body("dog", "cat"))
        assert _content(unknown) == "wrong"
        limited = await http.post(url, json=_body("dog", "cat", structured_outputs={"choice": ["abstain", "generic"]}))
        assert _content(limited) == "abstain"
        models = (await http.get(server.url + "/models")).json()
        assert models["data"][0]["id"] == "scripted-judge"
        assert (await http.get(server.root_url + "/health")).status_code == 200
        assert server.pair_counts[("golden-winged warbler", "warbler")] == 1
        assert server.stats["requests"] == 4


async def test_callable_rules_and_unreadable_messages_use_default():
    server = ScriptableJudgeServer(lambda gt, pred: "specific" if gt[0] == pred[0] else "generic")
    async with server, httpx.AsyncClient() as http:
        url = server.url + "/chat/completions"
        assert _content(await http.post(url, json=_body("apple", "avocado"))) == "specific"
        assert _content(await http.post(url, json=_body("apple", "pear"))) == "generic"
        odd = await http.post(url, json={"messages": [{"role": "user", "content": "hello"}]})
        assert _content(odd) == "wrong"  # no readable pair: the default, the callable is not asked
    assert server.stats["unreadable"] == 1


async def test_scheduled_faults_come_in_order():
    async with ScriptableJudgeServer(RULES, hang_s=0.2, retry_after_s=0.5) as server, httpx.AsyncClient() as http:
        url = server.url + "/chat/completions"
        server.queue_faults("5xx", "429", "garbage", "garbage_body", "drop", "hang", "ok")
        body = _body("dog", "samoyed")
        assert (await http.post(url, json=body)).status_code == 503
        limited = await http.post(url, json=body)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "0.5"
        assert _content(await http.post(url, json=body)) not in ("more specific",)
        with pytest.raises(ValueError):
            (await http.post(url, json=body)).json()
        with pytest.raises(httpx.RemoteProtocolError):
            await http.post(url, json=body)
        with pytest.raises(httpx.ReadTimeout):
            await http.post(url, json=body, timeout=0.05)
        assert _content(await http.post(url, json=body)) == "more specific"
        for kind in ("5xx", "429", "drop", "hang", "ok"):
            assert server.stats[kind] >= 1, kind
        assert server.stats["garbage"] == 2


async def test_capacity_queues_requests_beyond_the_limit():
    async with ScriptableJudgeServer(RULES, latency_s=0.05, capacity=3) as server:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=20)) as http:
            replies = await asyncio.gather(
                *[http.post(server.url + "/chat/completions", json=_body("dog", "samoyed")) for _ in range(12)]
            )
    assert all(r.status_code == 200 for r in replies)
    assert server.max_in_flight == 3


async def test_restart_keeps_the_port_and_refuses_while_down():
    async with ScriptableJudgeServer(RULES) as server, httpx.AsyncClient() as http:
        url = server.url
        restart = asyncio.create_task(server.restart(down_s=0.3))
        await asyncio.sleep(0.1)
        with pytest.raises(httpx.ConnectError):
            await http.get(url + "/models")
        await restart
        assert server.url == url
        assert (await http.get(url + "/models")).status_code == 200
        assert server.stats["restarts"] == 1


async def test_api_key_is_required_when_set():
    async with ScriptableJudgeServer(RULES, api_key="s3cret") as server, httpx.AsyncClient() as http:
        url = server.url + "/chat/completions"
        assert (await http.post(url, json=_body("dog", "samoyed"))).status_code == 401
        ok = await http.post(url, json=_body("dog", "samoyed"), headers={"Authorization": "Bearer s3cret"})
        assert _content(ok) == "more specific"


def test_sync_use_from_a_background_thread():
    with ScriptableJudgeServer(RULES, faults=FaultRates(error_5xx=1.0)).start_in_thread() as server:
        assert httpx.post(server.url + "/chat/completions", json=_body("dog", "samoyed")).status_code == 503
        server.faults = FaultRates()
        server.restart_sync(down_s=0.05)
        reply = httpx.post(server.url + "/chat/completions", json=_body("dog", "samoyed"))
        assert _content(reply) == "more specific"
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "/models")


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="error_5xx"):
        FaultRates(error_5xx=1.5)
    with pytest.raises(ValueError, match="sum"):
        FaultRates(error_5xx=0.6, garbage=0.6)
    with pytest.raises(ValueError, match="capacity"):
        ScriptableJudgeServer(capacity=0)
    with pytest.raises(ValueError, match="not one of"):
        ScriptableJudgeServer({("a", "b"): "kinda right"})
    with pytest.raises(ValueError, match="unknown fault kind"):
        ScriptableJudgeServer().queue_faults("explode")

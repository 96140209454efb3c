"""The judge's ``GET /models`` listing has one owner, and its three callers agree.

The server is the scriptable OpenAI-compatible test server on 127.0.0.1 (its model list is
real HTTP; nothing here needs its rule table). A non-OpenAI server is a plain aiohttp app.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from verl_ext.eval.cli import discover_judge_model
from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.http_client import ModelListingError, list_served_models, new_http_client, served_models
from verl_ext.recipes.preflight import probe_judge
from verl_ext.testing.judge_server import ScriptableJudgeServer


pytestmark = pytest.mark.usefixtures("clean_judge_env")


def test_client_preflight_and_eval_cli_see_the_same_model(monkeypatch):
    with ScriptableJudgeServer({}, model_name="judge-x", api_key="s3cret").start_in_thread() as server:
        monkeypatch.setenv("SPECIARL_JUDGE_API_KEY", "s3cret")
        assert list_served_models(server.url, api_key="s3cret") == ["judge-x"]
        assert probe_judge(server.url, api_key="s3cret") == ["judge-x"]
        monkeypatch.setenv("SPECIARL_JUDGE_URLS", server.url)  # the eval CLI's fallbacks are the factory's
        assert discover_judge_model({"on_failure": "degrade"}) == "judge-x"
        client = OpenAIJudgeClient(JudgeConfig.from_mapping({"urls": [server.url]}))
        assert asyncio.run(client.grade("dog", "cat")).ok and "judge-x" in repr(client)
        asyncio.run(client.aclose())
        assert server.stats["models"] == 4


def test_listing_errors_say_what_went_wrong():
    with ScriptableJudgeServer({}, api_key="s3cret").start_in_thread() as server:
        with pytest.raises(ModelListingError, match="HTTP 401") as raised:
            list_served_models(server.url)
        assert raised.value.status == 401
    with pytest.raises(ModelListingError, match="is unreachable") as raised:
        list_served_models(server.url, timeout_s=2.0)  # stopped: connection refused
    assert raised.value.status is None and not raised.value.malformed


async def test_a_server_that_is_not_openai_compatible_is_malformed():
    app = web.Application()
    app.router.add_get("/v1/models", lambda request: web.Response(text="<html>hello</html>"))
    app.router.add_get("/v2/models", lambda request: web.json_response({"models": ["m"]}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with new_http_client(timeout_s=5.0, max_connections=1) as http:
            for path, reason in (("v1", "with JSON"), ("v2", "no 'data' list")):
                with pytest.raises(ModelListingError, match=reason) as raised:
                    await served_models(http, f"http://127.0.0.1:{port}/{path}", 5.0)
                assert raised.value.malformed
    finally:
        await runner.cleanup()


def test_eval_cli_asks_the_server_only_when_no_model_is_given(monkeypatch):
    monkeypatch.setenv("SPECIARL_JUDGE_MODEL", "from-env")
    assert discover_judge_model({"urls": ["http://127.0.0.1:9/v1"]}) == "from-env"  # nothing is contacted
    monkeypatch.delenv("SPECIARL_JUDGE_MODEL")
    with pytest.raises(ValueError, match="pass --judge-model"):
        discover_judge_model({"urls": ["http://127.0.0.1:9/v1"]})

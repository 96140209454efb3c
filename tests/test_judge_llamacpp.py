"""The judge client against a real LLM server: llama.cpp (``xllamacpp``) with Gemma 3 270M.

The model's grades are poor and are not checked; the test checks the protocol, that the
JSON-schema constrained output parses, and that every reply maps to a category or to a
counted error (including vLLM's ``structured_outputs``, which llama.cpp silently ignores).
Requests are few: each takes seconds on 2 CPU threads.
"""

from __future__ import annotations

import httpx
import pytest

from verl_ext.core.categories import Category
from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.protocol import parse_reply, reply_text, request_body
from verl_ext.testing.llama_server import MODEL_ALIAS, LlamaCppServer

pytestmark = pytest.mark.llm_server


@pytest.fixture(scope="module")
def llama():
    with LlamaCppServer(threads=2, n_parallel=2) as server:
        yield server


def _config(url: str, **overrides) -> JudgeConfig:
    settings = dict(urls=(url,), timeout_s=180.0, max_concurrency=2, max_retries=2, failure_budget_s=300.0)
    settings.update(overrides)
    return JudgeConfig(**settings)


def test_json_schema_output_is_a_valid_category(llama):
    assert llama.url.startswith("http://127.0.0.1:")
    models = httpx.get(f"{llama.url}/models", timeout=30).json()
    assert MODEL_ALIAS in [m["id"] for m in models["data"]]
    body = request_body(_config(llama.url), MODEL_ALIAS, "golden-winged warbler", "warbler")
    reply = httpx.post(f"{llama.url}/chat/completions", json=body, timeout=180)
    assert reply.status_code == 200
    text = reply_text(reply.json())
    assert text is not None
    assert isinstance(parse_reply(text), Category), text  # the enum constraint is honoured


async def test_client_replies_map_to_categories_or_counted_errors(llama):
    client = OpenAIJudgeClient(_config(llama.url, model=None, constraint="json_schema"))
    verdicts = await client.grade_many([("golden-winged warbler", "warbler"), ("boeing 707", "707-320"), ("lion", "Lion")])
    await client.aclose()
    metrics = client.pop_metrics()
    assert repr(client).count(MODEL_ALIAS) == 1  # discovered from /v1/models
    assert verdicts[2].source == "short_circuit"
    for verdict in verdicts:
        assert verdict.ok or verdict.error
    assert metrics["judge/errors"] == sum(not v.ok for v in verdicts)
    assert metrics["judge/requests"] >= 2
    assert metrics["judge/latency_p50_s"] > 0


async def test_ignored_choice_constraint_is_still_validated(llama):
    client = OpenAIJudgeClient(_config(llama.url, model=MODEL_ALIAS, constraint="choice"))
    verdict = await client.grade("arctic tern", "tern")
    await client.aclose()
    metrics = client.pop_metrics()
    if verdict.ok:  # a free-text reply that happens to be exactly one label
        assert isinstance(verdict.category, Category)
    else:
        assert verdict.error.startswith("malformed judge reply")
        assert metrics["judge/malformed"] == 2 and metrics["judge/errors"] == 1
    assert metrics["judge/requests"] == metrics["judge/malformed"] + verdict.ok

"""LLM inclusion (LI) through the project's one judge client, against the scriptable server on 127.0.0.1.

The server's "1"/"0" replies come from a rule (a test double for the Llama-3.2-3B judge, which
cannot run here); the HTTP client, its retries, dedup and caches are the real ones.
"""

from __future__ import annotations

import asyncio

import pytest

from verl_ext.core.categories import Category
from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import JudgeConfig
from verl_ext.judge.inclusion import INCLUSION, PROMPT_TEMPLATE, InclusionVerdict, parse_pair_from_message
from verl_ext.testing.judge_server import ScriptableJudgeServer


def config(url: str, **overrides) -> JudgeConfig:
    settings = dict(urls=(url,), model="scripted-judge", timeout_s=2.0, max_retries=3, backoff_base_s=0.001,
                    backoff_max_s=0.01, constraint="json_schema")
    settings.update(overrides)
    return JudgeConfig(**settings)


def test_the_request_is_the_reference_prompt_unconstrained_greedy_and_short():
    body = INCLUSION.request_body(config("http://127.0.0.1:1/v1"), "llama", ("pink primrose", "a Pink Primrose"))
    assert [m["role"] for m in body["messages"]] == ["user"]  # no system message
    text = body["messages"][0]["content"]
    assert text == PROMPT_TEMPLATE.format(prediction="a Pink Primrose", reference="pink primrose")
    assert "This is the answer: a Pink Primrose\nThis is the target value: pink primrose\n" in text
    assert body["temperature"] == 0 and body["max_tokens"] == 16
    assert "response_format" not in body and "structured_outputs" not in body  # even with constraint=json_schema
    assert parse_pair_from_message(text) == ("pink primrose", "a Pink Primrose")


@pytest.mark.parametrize("reply, score", [("1", 1.0), ("0", 0.0), (" 1", 0.0), ("1.", 0.0), ("Yes, 1", 0.0)])
async def test_only_an_exact_one_scores_one(reply, score):
    async with ScriptableJudgeServer(inclusion_rule=lambda ref, pred: reply) as server:
        client = OpenAIJudgeClient(config(server.url), INCLUSION)
        verdict = await client.grade("sunflower", "a sunflower")
        await client.aclose()
    assert verdict == InclusionVerdict(score, source="llm")


async def test_pairs_are_sent_unnormalised_once_each_and_retried_on_server_errors():
    async with ScriptableJudgeServer() as server:
        server.queue_faults("5xx", "429")
        client = OpenAIJudgeClient(config(server.url), INCLUSION)
        pairs = [("Crème brûlée", "  crème brûlée, with sugar "), ("Crème brûlée", "crème brûlée, with sugar"),
                 ("rose", "a tulip")]
        verdicts = await client.grade_many(pairs)
        await client.aclose()
    assert [v.score for v in verdicts] == [1.0, 1.0, 0.0]
    assert server.inclusion_counts[("Crème brûlée", "crème brûlée, with sugar")] == 1  # stripped, deduplicated
    assert server.stats["5xx"] == 1 and server.stats["429"] == 1 and not server.pair_counts


async def test_inclusion_and_category_answers_never_mix_in_a_shared_sqlite_cache(tmp_path):
    cache = str(tmp_path / "judge.sqlite")
    async with ScriptableJudgeServer({("dog", "samoyed"): "more specific"},
                                     inclusion_rule=lambda ref, pred: "1") as server:
        li = OpenAIJudgeClient(config(server.url, cache_path=cache), INCLUSION)
        grading = OpenAIJudgeClient(config(server.url, cache_path=cache))
        assert (await li.grade("dog", "samoyed")).score == 1.0
        assert (await grading.grade("dog", "samoyed")).category is Category.MORE_SPECIFIC
        await asyncio.gather(li.aclose(), grading.aclose())
        requests = server.stats["requests"]
        again = OpenAIJudgeClient(config(server.url, cache_path=cache), INCLUSION)
        verdict = await again.grade("dog", "samoyed")
        await again.aclose()
    assert requests == 2  # one per task: neither read the other's answer
    assert verdict == InclusionVerdict(1.0, source="cache") and server.stats["requests"] == requests

"""Every evaluation cache is keyed by everything that changes its output: no stale result is reused.

The judge is the real HTTP client against the scriptable server on 127.0.0.1 (its rule table
stands in for a judge LLM); the stages and their files are the real ones.
"""

import importlib.metadata

import pytest

from verl_ext.eval.items import read_eval_items
from verl_ext.eval.pipeline import judge_and_score
from verl_ext.eval.predict import predict_stage_key
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.testing.eval_data import write_eval_parquet
from verl_ext.testing.judge_server import ScriptableJudgeServer


@pytest.fixture(scope="module")
def server():
    with ScriptableJudgeServer(lambda gt, pred: "specific" if gt in pred else "wrong").start_in_thread() as running:
        yield running


@pytest.fixture()
def run(tmp_path, server):
    items = read_eval_items(write_eval_parquet(tmp_path / "d.parquet", "food101", ["pizza", "ramen"]))
    responses = {i.image_sha256: [f"<answer>{a}</answer>"] for i, a in zip(items, ["pizza slice", "udon"])}

    def evaluate(**settings):
        server.reset_stats()
        judge = {"urls": [server.url], "model": "scripted-judge", **settings}
        metrics, _ = judge_and_score(items, responses, n=1, judge=None, judge_settings=judge, out=tmp_path / "run",
                                     method="m", progress=False)
        return server.stats["requests"], metrics

    return evaluate


@pytest.mark.parametrize("change", [{"enable_thinking": True}, {"max_tokens": 7}, {"constraint": "choice"},
                                    {"send_chat_template_kwargs": False}])
def test_a_setting_that_changes_verdicts_starts_a_fresh_judge_stage(run, change):
    assert run()[0] == 2
    assert run()[0] == 0  # same settings: every verdict reused
    assert run(**change)[0] == 2  # before the fix only model, constraint and prompt version keyed the stage


def test_settings_that_only_change_how_the_server_is_reached_reuse_the_verdicts(run):
    assert run()[0] == 2
    assert run(timeout_s=7.0, max_concurrency=3, max_retries=1)[0] == 0


def test_a_new_judge_prompt_text_starts_a_fresh_judge_stage_without_a_version_bump(run, monkeypatch):
    import verl_ext.judge.prompt as prompt

    assert run()[0] == 2
    monkeypatch.setattr(prompt, "_RUBRIC", prompt._RUBRIC + "\nBe strict.")
    assert run()[0] == 2


def test_a_change_to_the_scoring_code_takes_effect_on_the_next_run(run, monkeypatch):
    import verl_ext.eval.pipeline as pipeline

    _, first = run()
    original = pipeline.score

    def rescored(*args, **kwargs):
        metrics = original(*args, **kwargs)
        metrics["datasets"]["food101"]["samples"]["hm"] = -1.0
        return metrics

    monkeypatch.setattr(pipeline, "score", rescored)
    _, second = run()
    assert first["datasets"]["food101"]["samples"]["hm"] != -1.0
    assert second["datasets"]["food101"]["samples"]["hm"] == -1.0  # before: a stale score cache hit


def test_the_predict_stage_is_keyed_by_its_backend_code_and_library_versions(monkeypatch):
    settings = SamplingSettings()
    key = predict_stage_key("fp", "hf", settings, "prompt", None)
    assert key != predict_stage_key("fp", "vllm", settings, "prompt", None)
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version",
                        lambda name: "0.0.0-other" if name == "transformers" else real(name))
    assert predict_stage_key("fp", "hf", settings, "prompt", None) != key  # a transformers upgrade regenerates

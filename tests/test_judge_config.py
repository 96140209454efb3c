"""JudgeConfig: validation, env fallbacks, OmegaConf input, and no API key in any repr."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from verl_ext.judge.client import OpenAIJudgeClient
from verl_ext.judge.config import JudgeConfig, redact_url
from verl_ext.judge.factory import build_judge


pytestmark = pytest.mark.usefixtures("clean_judge_env")


def test_defaults_from_a_minimal_mapping():
    config = JudgeConfig.from_mapping({"urls": ["http://judge:8000/v1/"]})
    assert config.urls == ("http://judge:8000/v1",)
    assert config.model is None
    assert (config.constraint, config.on_failure, config.failure_budget_s) == ("json_schema", "fail", 300.0)
    assert config.enable_thinking is False
    assert config.api_key_env == "SPECIARL_JUDGE_API_KEY"


def test_omegaconf_mapping_with_every_documented_key(tmp_path):
    node = OmegaConf.create(
        {
            "urls": ["http://a:8000/v1", "http://b:8000/v1"],
            "model": "Qwen/Qwen3-30B-A3B-Instruct-2507-FP8",
            "api_key_env": "MY_JUDGE_KEY",
            "constraint": "choice",
            "timeout_s": 20,
            "max_retries": 3,
            "max_concurrency": 128,
            "failure_budget_s": 60,
            "on_failure": "degrade",
            "cache_path": str(tmp_path / "judge.sqlite"),
            "cache_size": 1000,
            "enable_thinking": False,
            "impl": None,
        }
    )
    config = JudgeConfig.from_mapping(node)
    assert config.urls == ("http://a:8000/v1", "http://b:8000/v1")
    assert config.timeout_s == 20.0 and isinstance(config.timeout_s, float)
    assert config.on_failure == "degrade" and config.max_concurrency == 128


def test_env_fallbacks(monkeypatch):
    monkeypatch.setenv("SPECIARL_JUDGE_URLS", "http://a:1/v1, http://b:2/v1")
    monkeypatch.setenv("SPECIARL_JUDGE_MODEL", "judge-model")
    config = JudgeConfig.from_mapping({"urls": None, "model": ""})
    assert config.urls == ("http://a:1/v1", "http://b:2/v1")
    assert config.model == "judge-model"
    assert JudgeConfig.from_mapping({"urls": "http://c:3/v1"}).urls == ("http://c:3/v1",)


@pytest.mark.parametrize(
    "mapping,key",
    [
        ({}, "judge.urls"),
        ({"urls": ["ftp://x/v1"]}, "judge.urls"),
        ({"urls": ["http://a/v1", "http://a/v1"]}, "same URL twice"),
        ({"urls": ["http://a/v1"], "constraint": "regex"}, "judge.constraint"),
        ({"urls": ["http://a/v1"], "on_failure": "ignore"}, "judge.on_failure"),
        ({"urls": ["http://a/v1"], "timeout_s": 0}, "judge.timeout_s"),
        ({"urls": ["http://a/v1"], "timeout_s": "soon"}, "judge.timeout_s"),
        ({"urls": ["http://a/v1"], "max_retries": -1}, "judge.max_retries"),
        ({"urls": ["http://a/v1"], "max_concurrency": 0}, "judge.max_concurrency"),
        ({"urls": ["http://a/v1"], "max_concurrency": 2.5}, "judge.max_concurrency"),
        ({"urls": ["http://a/v1"], "enable_thinking": "maybe"}, "judge.enable_thinking"),
        ({"urls": ["http://a/v1"], "api_key_env": "not a name!"}, "judge.api_key_env"),
        ({"urls": ["http://a/v1"], "temperature": 0.7}, "judge.temperature"),
    ],
)
def test_invalid_settings_name_the_key(mapping, key):
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        JudgeConfig.from_mapping(mapping)


def test_api_key_never_appears_in_reprs(monkeypatch):
    monkeypatch.setenv("SPECIARL_JUDGE_API_KEY", "sk-very-secret-123")
    config = JudgeConfig.from_mapping({"urls": ["http://user:pw-secret@judge:8000/v1"], "model": "m"})
    client = OpenAIJudgeClient(config)
    assert config.api_key() == "sk-very-secret-123"
    for text in (repr(config), str(config), repr(client), config.describe_urls()):
        assert "sk-very-secret-123" not in text
    for text in (repr(config), repr(client), config.describe_urls()):
        assert "pw-secret" not in text
    assert redact_url("http://u:p@h:1/v1") == "http://h:1/v1"


def test_factory_builds_the_http_client():
    judge = build_judge({"urls": ["http://127.0.0.1:9/v1"], "model": "m", "impl": None})
    assert isinstance(judge, OpenAIJudgeClient)

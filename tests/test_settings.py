"""The one settings mechanism: full key names in errors, unknown keys, nulls, derived keys, env fallbacks.

Each case goes through the real factories of ``reward.speciarl``, its ``judge`` and
``data.speciarl`` (the models of ``verl_ext.settings``), built from OmegaConf nodes as the
trainer passes them.
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from verl_ext.data.dataset import DatasetSettingsError, FineGrainedDataSettings
from verl_ext.judge.config import JudgeConfig, parse_setting_overrides
from verl_ext.reward.config import SpeciaRLConfigError, SpeciaRLRewardConfig
from verl_ext.settings import SettingsError

DOUBLE = {"impl": "verl_ext.testing.rule_judge:from_settings", "table": []}


def trainer_config(speciarl, n=4, val_n=1, max_response_length=64):
    return OmegaConf.create(
        {
            "reward": {"speciarl": speciarl},
            "actor_rollout_ref": {"rollout": {"n": n, "val_kwargs": {"n": val_n}}},
            "data": {"max_response_length": max_response_length},
        }
    )


def reward_error(speciarl, **kwargs) -> str:
    with pytest.raises(SpeciaRLConfigError) as raised:
        SpeciaRLRewardConfig.from_trainer_config(trainer_config(speciarl, **kwargs))
    return str(raised.value)


pytestmark = pytest.mark.usefixtures("clean_judge_env")


def test_defaults_and_derived_group_sizes():
    settings = SpeciaRLRewardConfig.from_trainer_config(trainer_config({"judge": DOUBLE}, n=8, val_n=2))
    assert (settings.rule, settings.label_noise, settings.group_timeout_s) == ("best_in_group", 0.0, 600.0)
    assert (settings.train_group_size, settings.val_group_size, settings.max_response_length) == (8, 2, 64)
    assert settings.overlong_buffer.enable is False and settings.judge == DOUBLE


def test_a_bad_value_names_the_full_key_and_what_is_allowed():
    judge = {"urls": ["http://judge:8000/v1"], "timeout_s": -1}
    assert reward_error({"judge": judge}) == "reward.speciarl.judge.timeout_s must be > 0, got -1"
    assert reward_error({"judge": DOUBLE, "rule": "best_of_group"}) == (
        "reward.speciarl.rule must be one of 'best_in_group', 'binary', 'scala1', 'scala2' or 'scala3', "
        "got 'best_of_group'"
    )
    assert reward_error({"judge": DOUBLE, "seed": 1.5}) == "reward.speciarl.seed must be an integer, got 1.5"
    assert reward_error({"judge": DOUBLE, "group_timeout_s": True}) == (
        "reward.speciarl.group_timeout_s must be a number, got True"
    )


def test_unknown_keys_are_refused_naming_the_key_and_the_known_ones():
    message = reward_error({"judge": DOUBLE, "overlong_buffer": {"lenght": 5}})
    assert message == "unknown key reward.speciarl.overlong_buffer.lenght; known keys: enable, len, penalty_factor"
    top = reward_error({"judge": DOUBLE, "group_timeout": 5})
    assert top.startswith("unknown key reward.speciarl.group_timeout; known keys: coordinator_name, group_timeout_s")
    assert "train_group_size" not in top  # derived keys are not settings


def test_derived_keys_cannot_be_set_and_their_errors_name_their_source():
    message = reward_error({"judge": DOUBLE, "train_group_size": 3})
    assert message == "reward.speciarl.train_group_size cannot be set: it comes from actor_rollout_ref.rollout.n"
    assert reward_error({"judge": DOUBLE}, n=0) == "actor_rollout_ref.rollout.n must be >= 1, got 0"


def test_cross_field_checks_name_the_key_they_are_about():
    buffer = {"enable": True, "len": 64}
    assert reward_error({"judge": DOUBLE, "overlong_buffer": buffer}) == (
        "reward.speciarl.overlong_buffer.len must be smaller than data.max_response_length (64), got 64"
    )


def test_null_means_the_default():
    node = {"judge": {"urls": ["http://judge:8000/v1"], "constraint": None, "max_tokens": None}, "seed": None}
    settings = SpeciaRLRewardConfig.from_trainer_config(trainer_config(node))
    assert settings.seed == 0
    judge = JudgeConfig.from_mapping(settings.judge)
    assert (judge.constraint, judge.max_tokens) == ("json_schema", None)


def test_environment_fallbacks_are_read_by_the_factory_only(monkeypatch):
    monkeypatch.setenv("SPECIARL_JUDGE_URLS", "http://a:1/v1,http://b:2/v1/")
    monkeypatch.setenv("SPECIARL_JUDGE_MODEL", "judge-model")
    monkeypatch.setenv("MY_KEY", "sk-secret")
    config = JudgeConfig.from_mapping({"api_key_env": "MY_KEY"})
    assert config.urls == ("http://a:1/v1", "http://b:2/v1") and config.model == "judge-model"
    assert config.api_key() == "sk-secret" and "sk-secret" not in repr(config) + str(config.model_dump())
    direct = JudgeConfig(urls=("http://c:3/v1",), api_key_env="MY_KEY")
    assert direct.model is None and direct.api_key() is None  # built directly: nothing from the environment
    given = JudgeConfig.from_mapping({"urls": ["http://c:3/v1"], "model": "m"}, environ={})
    assert (given.urls, given.model, given.api_key()) == (("http://c:3/v1",), "m", None)


def test_a_programming_error_in_judge_validation_is_not_a_usage_error(monkeypatch):
    def broken(cls, *args, **kwargs):
        raise TypeError("a bug in the validation code")

    monkeypatch.setattr(JudgeConfig, "from_mapping", classmethod(broken))
    with pytest.raises(TypeError, match="a bug"):
        SpeciaRLRewardConfig.from_trainer_config(trainer_config({"judge": {"urls": ["http://judge:8000/v1"]}}))


def test_dataset_settings_use_the_same_mechanism():
    data = OmegaConf.create({"speciarl": {"prompt_variant": "specific", "on_bad_image": "skip"}})
    settings = FineGrainedDataSettings.from_data_config(data)
    assert settings.on_bad_image == "skip" and settings.prompt_text.startswith("Classify the image, be specific.")
    with pytest.raises(DatasetSettingsError) as raised:
        FineGrainedDataSettings.from_data_config(OmegaConf.create({"speciarl": {"on_bad_image": "ignore"}}))
    assert str(raised.value) == "data.speciarl.on_bad_image must be one of 'error' or 'skip', got 'ignore'"
    with pytest.raises(DatasetSettingsError, match=r"^unknown key data\.speciarl\.colour; known keys: on_bad_image, prompt_variant$"):
        FineGrainedDataSettings.from_data_config(OmegaConf.create({"speciarl": {"colour": 1}}))
    assert issubclass(DatasetSettingsError, SettingsError) and issubclass(SpeciaRLConfigError, SettingsError)


def test_command_line_overrides_parse_json_values():
    assert parse_setting_overrides(["timeout_s=5", "model=m", "urls=[\"http://a/v1\"]"], "--setting") == {
        "timeout_s": 5, "model": "m", "urls": ["http://a/v1"],
    }
    with pytest.raises(SettingsError, match="--setting 'timeout_s': expected KEY=VALUE"):
        parse_setting_overrides(["timeout_s"], "--setting")

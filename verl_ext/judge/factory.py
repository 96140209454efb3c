"""Build a :class:`~verl_ext.judge.base.Judge` from a plain mapping (the ``judge`` config node)."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from verl_ext.judge.base import Judge
from verl_ext.judge.task import GRADING, JudgeTask
from verl_ext.settings import SettingsError


def _load_factory(spec: str, key: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SettingsError(f"{key}.impl must look like 'package.module:factory', got {spec!r}")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise SettingsError(f"{key}.impl={spec!r} cannot be loaded: {error}") from error


def build_judge(settings: Mapping[str, Any], task: JudgeTask = GRADING, key: str = "judge") -> Judge:
    """The judge named by ``settings``, asking ``task`` (the six categories by default);
    ``key`` is where the settings sit in the config, for error messages.

    ``settings["impl"]``, when set, is ``"package.module:factory"``; the factory is called
    with the whole mapping and must return a judge for ``task`` (tests use this for
    in-process doubles). Otherwise the OpenAI-compatible HTTP client is built from the same
    mapping.
    """
    impl = settings.get("impl")
    if impl:
        return _load_factory(str(impl), key)(settings)
    from verl_ext.judge.client import OpenAIJudgeClient
    from verl_ext.judge.config import JudgeConfig

    return OpenAIJudgeClient(JudgeConfig.from_mapping(settings, key), task)

"""Build a :class:`~verl_ext.judge.base.Judge` from a plain mapping (the ``judge`` config node)."""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from verl_ext.judge.base import Judge
from verl_ext.judge.task import GRADING, JudgeTask


def _load_callable(spec: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"judge.impl must look like 'package.module:factory', got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def build_judge(settings: Mapping[str, Any], task: JudgeTask = GRADING) -> Judge:
    """The judge named by ``settings``, asking ``task`` (the six categories by default).

    ``settings["impl"]``, when set, is ``"package.module:factory"``; the factory is called
    with the whole mapping and must return a judge for ``task`` (tests use this for
    in-process doubles). Otherwise the OpenAI-compatible HTTP client is built from the same
    mapping.
    """
    impl = settings.get("impl")
    if impl:
        return _load_callable(str(impl))(settings)
    from verl_ext.judge.client import OpenAIJudgeClient
    from verl_ext.judge.config import JudgeConfig

    return OpenAIJudgeClient(JudgeConfig.from_mapping(settings), task)

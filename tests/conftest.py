"""Project-wide test setup: offline environment and the session-scoped offline kit.

Keep this module free of heavy imports (torch, transformers, verl): most tests must stay
millisecond-fast, so the kit fixtures import what they need only when a test asks for them.
"""

from __future__ import annotations

import os

import pytest

# Set before any test imports transformers, verl, wandb or ray; an explicit value wins.
_OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # never contact the model hub
    "TRANSFORMERS_OFFLINE": "1",
    "WANDB_MODE": "disabled",  # wandb is a verl dependency
    "RAY_AUTH_MODE": "disabled",  # Ray 2.60 token auth would write a token file in $HOME
    "TORCH_COMPILE_DISABLE": "1",  # as in verl's own CPU CI
    "TOKENIZERS_PARALLELISM": "false",  # no fork warnings from the Rust tokenizer pool
}
for _name, _value in _OFFLINE_ENV.items():
    os.environ.setdefault(_name, _value)


@pytest.fixture(scope="session")
def offline_kit(tmp_path_factory):
    """The offline kit folder (tiny tokenizer + stock Qwen2.5-VL processor + random tiny model).

    Built once per session (a few seconds). With ``VERL_EXT_KIT_CACHE=<folder>`` set, kits are
    kept there, keyed by a hash of the kit's sources, and reused across sessions.
    Treat ``.tokenizer`` / ``.processor`` as read-only; ``load_tokenizer()``,
    ``load_processor()`` and ``load_model()`` give fresh copies to mutate.
    """
    from verl_ext.testing.kit import CACHE_ENV, ensure_offline_kit

    cache_root = os.environ.get(CACHE_ENV) or tmp_path_factory.mktemp("offline_kit")
    return ensure_offline_kit(cache_root)


@pytest.fixture(scope="session")
def tiny_tokenizer(offline_kit):
    """The kit's tokenizer as ``AutoTokenizer`` loads it (shared: do not mutate)."""
    return offline_kit.tokenizer


@pytest.fixture(scope="session")
def tiny_processor(offline_kit):
    """The kit's ``Qwen2_5_VLProcessor`` as ``AutoProcessor`` loads it (shared: do not mutate)."""
    return offline_kit.processor


@pytest.fixture
def clean_judge_env(monkeypatch):
    """No judge URL, model or API key from the environment of whoever runs the tests."""
    from verl_ext.judge.config import DEFAULT_API_KEY_ENV, MODEL_ENV, URLS_ENV

    for name in (URLS_ENV, MODEL_ENV, DEFAULT_API_KEY_ENV):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def recipe_runs_root(tmp_path_factory):
    """Where the recipe tests' shared recipe runs live (``tests/recipe_runs.py``)."""
    return tmp_path_factory.mktemp("recipe_runs")

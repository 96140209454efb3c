"""Offline test fixtures for this package and for users' own recipe tests.

Importing this package is cheap: the names below are loaded on first use, so fast tests that
only need, say, ``synthetic_jpeg`` do not pay for importing transformers or torch.

- ``build_offline_kit(dir)`` / ``ensure_offline_kit(cache_root)`` / ``OfflineKit``: a folder with
  a tiny tokenizer, the stock ``Qwen2_5_VLProcessor`` and a random tiny Qwen2.5-VL model;
- ``build_tiny_tokenizer`` / ``build_tiny_processor`` / ``build_tiny_model``: the same, in memory;
- ``synthetic_image`` / ``synthetic_jpeg`` / ``write_synthetic_jpeg``: deterministic images;
- ``make_reward_dataproto`` / ``make_group_dataprotos``: the ``DataProto`` verl's agent loop
  sends to a reward manager's ``run_single``;
- ``write_eval_parquet``: a small evaluation parquet in the data_prep schema.

Other modules here (``judge_server``, ``rule_judge``, ``layouts``, ``hf_snapshot``) are imported by their own path.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY_EXPORTS = {
    "OfflineKit": "verl_ext.testing.kit",
    "OfflineKitError": "verl_ext.testing.kit",
    "KitSettings": "verl_ext.testing.kit",
    "build_offline_kit": "verl_ext.testing.kit",
    "ensure_offline_kit": "verl_ext.testing.kit",
    "build_tiny_tokenizer": "verl_ext.testing.tokenizer",
    "build_tiny_processor": "verl_ext.testing.processor",
    "build_tiny_model": "verl_ext.testing.model",
    "tiny_qwen25vl_config": "verl_ext.testing.model",
    "synthetic_image": "verl_ext.testing.images",
    "synthetic_jpeg": "verl_ext.testing.images",
    "write_synthetic_jpeg": "verl_ext.testing.images",
    "make_reward_dataproto": "verl_ext.testing.dataproto",
    "make_group_dataprotos": "verl_ext.testing.dataproto",
    "write_eval_parquet": "verl_ext.testing.eval_data",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))

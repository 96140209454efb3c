"""Generation backends of the predict stage: ``hf`` (transformers, anywhere) and ``vllm`` (GPU)."""

from __future__ import annotations

from typing import Any

from verl_ext.eval.backends.base import GenerationBackend, GenerationRequest


def build_backend(name: str, source, settings, **options: Any) -> GenerationBackend:
    """The backend called ``name``; vLLM is imported only when chosen."""
    if name == "hf":
        from verl_ext.eval.backends.hf import HFBackend

        return HFBackend(source, settings, **options)
    if name == "vllm":
        from verl_ext.eval.backends.vllm import VLLMBackend

        return VLLMBackend(source, settings, **options)
    raise ValueError(f"--backend must be 'hf' or 'vllm', got {name!r}")


__all__ = ["GenerationBackend", "GenerationRequest", "build_backend"]

"""The vLLM backend for GPU nodes; ``vllm`` is imported only when this backend starts.

Everything up to the engine call is plain Python (engine arguments, per-request sampling
parameters, prompts with their images, the LoRA request), so it is unit-tested on machines
where vLLM cannot be installed.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, Optional, Sequence

from verl_ext.eval.backends.base import GenerationRequest, load_image, render_prompt
from verl_ext.eval.model_source import ModelSource
from verl_ext.eval.sampling import SamplingSettings

#: LoRA ranks vLLM sizes its kernels for; an adapter's rank is rounded up to the next one.
SUPPORTED_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)
LORA_NAME = "speciarl"
LORA_ID = 1


class BackendUnavailableError(RuntimeError):
    """The chosen backend cannot run here; the message says what to install or choose instead."""


def import_vllm() -> SimpleNamespace:
    """The three vLLM names we use, imported lazily."""
    try:
        import vllm
        from vllm.lora.request import LoRARequest
    except ImportError as error:
        raise BackendUnavailableError(
            "--backend vllm needs vLLM, which installs only on a CUDA machine "
            "(pip install 'speciarl-verl[gpu]'); use --backend hf elsewhere"
        ) from error
    return SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams, LoRARequest=LoRARequest)


def lora_rank_for_vllm(rank: int) -> int:
    for supported in SUPPORTED_LORA_RANKS:
        if rank <= supported:
            return supported
    raise ValueError(f"LoRA rank {rank} exceeds vLLM's largest supported rank {SUPPORTED_LORA_RANKS[-1]}")


def engine_kwargs(
    source: ModelSource,
    settings: SamplingSettings,
    *,
    tensor_parallel_size: int = 1,
    gpu_memory_utilization: float = 0.85,
    max_model_len: Optional[int] = None,
) -> dict[str, Any]:
    """Arguments of ``vllm.LLM``: the base weights, one image per prompt, LoRA slots if needed."""
    kwargs: dict[str, Any] = dict(
        model=str(source.base_path),
        tokenizer=str(source.base_path),
        tensor_parallel_size=tensor_parallel_size,
        gpu_memory_utilization=gpu_memory_utilization,
        limit_mm_per_prompt={"image": 1},
        seed=settings.seed,
        trust_remote_code=False,
    )
    if max_model_len is not None:
        kwargs["max_model_len"] = max_model_len
    if source.has_adapter:
        kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=lora_rank_for_vllm(source.adapter_rank()))
    return kwargs


def sampling_params_kwargs(settings: SamplingSettings, seed: int) -> dict[str, Any]:
    """Arguments of ``vllm.SamplingParams`` for one image (its own seed: reproducible BoN)."""
    kwargs: dict[str, Any] = dict(n=settings.n, max_tokens=settings.max_new_tokens, seed=seed)
    if settings.greedy:
        kwargs.update(temperature=0.0, top_p=1.0, top_k=-1)
    else:
        kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=-1)
    return kwargs


def build_prompts(processor, requests: Sequence[GenerationRequest], max_pixels: Optional[int] = None) -> list[dict]:
    """vLLM prompt dicts: the chat-templated text plus its one image."""
    return [
        {"prompt": render_prompt(processor, r.prompt_text),
         "multi_modal_data": {"image": load_image(r.image_bytes, max_pixels)}}
        for r in requests
    ]


class VLLMBackend:
    """Offline batched generation with ``vllm.LLM``; a LoRA checkpoint is served as an adapter."""

    name = "vllm"

    def __init__(
        self,
        source: ModelSource,
        settings: SamplingSettings,
        *,
        max_pixels: Optional[int] = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.85,
        max_model_len: Optional[int] = None,
        processor=None,
        vllm_api: Optional[SimpleNamespace] = None,
    ):
        self.source = source
        self.settings = settings
        self.max_pixels = max_pixels
        self.api = vllm_api or import_vllm()
        if processor is None:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(str(source.base_path))
        self.processor = processor
        self.engine_kwargs = engine_kwargs(
            source, settings, tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization, max_model_len=max_model_len,
        )
        self.engine = self.api.LLM(**self.engine_kwargs)
        self.lora_request = (
            self.api.LoRARequest(LORA_NAME, LORA_ID, str(source.adapter_path)) if source.has_adapter else None
        )
        self.calls = 0

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        if not requests:
            return []
        prompts = build_prompts(self.processor, requests, self.max_pixels)
        params = [self.api.SamplingParams(**sampling_params_kwargs(self.settings, r.seed)) for r in requests]
        outputs = self.engine.generate(prompts, sampling_params=params, lora_request=self.lora_request, use_tqdm=False)
        self.calls += len(requests)
        return [[completion.text for completion in output.outputs] for output in outputs]

    def close(self) -> None:
        self.engine = None

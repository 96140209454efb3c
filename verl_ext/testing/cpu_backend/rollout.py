"""A Hugging Face transformers rollout for verl 0.9's server-mode agent loop, on CPU.

verl's rollout backends (vLLM, SGLang, TensorRT-LLM) need GPUs, and its old ``HFRollout``
predates server mode (its constructor does not match ``BaseRollout`` and it serves the old
batch API). This module gives verl the three pieces a server-mode backend consists of:

* :class:`HFRolloutServer`, one Ray actor per replica, answering the calls verl makes on a
  rollout server (read from ``vLLMHttpServer`` in ``verl/workers/rollout/vllm_rollout/
  vllm_async_server.py``): token-in/token-out ``generate`` with the image inputs, the memory
  calls (``wake_up``, ``sleep``, ``*_kv_cache``: nothing to free on CPU), the request-control
  calls, ``set_global_steps`` and ``update_weights``;
* :class:`HFReplica`, the ``RolloutReplica`` that verl's ``LLMServerManager`` creates per
  replica and that launches the server;
* :class:`HFServerAdapter`, the worker-side ``BaseRollout`` through which verl's own weight
  sync (``ActorRolloutRefWorker.update_weights``, naive checkpoint engine) hands the actor's
  weights to the rollout after every step. The actor merges LoRA into the weights first
  (``actor_rollout_ref.model.lora.merge=True``), so the server loads full tensors by name.

Both the adapter and the server log every weight sync with a checksum of the tensors, and the
server logs which weights served each request, so a test can prove that the rollout follows
the actor (``ScriptSettings.log_dir``). Generation is real; most answer texts are then replaced
by scripted ones (see ``scripted.py`` for why).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Optional

import ray
import torch

from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.replica import RolloutMode, RolloutReplica, TokenOutput

from verl_ext.testing.cpu_backend.scripted import AnswerScript, ScriptSettings, scripted_response

logger = logging.getLogger(__name__)

#: ``actor_rollout_ref.rollout.name`` of this backend.
ROLLOUT_NAME = "hf_cpu"
SERVER_NAME_PREFIX = f"{ROLLOUT_NAME}_server_"


def weights_checksum(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """sha256 over the names and float32 bytes of the tensors, in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class JsonlLog:
    """Append-only JSONL events for tests; a no-op without a folder."""

    def __init__(self, log_dir: Optional[str], name: str) -> None:
        self.path = Path(log_dir) / f"{name}.jsonl" if log_dir else None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, **event: Any) -> None:
        if self.path is None:
            return
        with self._lock, self.path.open("a", encoding="utf-8") as sink:
            sink.write(json.dumps({"time": time.time(), **event}) + "\n")


def _load_model(path: str) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForImageTextToText

    config = AutoConfig.from_pretrained(path)
    loader = AutoModelForImageTextToText if hasattr(config, "vision_config") else AutoModelForCausalLM
    return loader.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa").eval()


class HFRolloutServer:
    """One rollout replica: the policy in transformers on CPU, serving verl's agent loop."""

    def __init__(self, config: Any, model_config: Any, rollout_mode: RolloutMode, replica_rank: int) -> None:
        from transformers import AutoProcessor, AutoTokenizer

        from verl.utils.config import omega_conf_to_dataclass
        from verl.workers.config import HFModelConfig

        torch.set_num_threads(1)  # 2-core machines run several of these next to the trainer
        config = omega_conf_to_dataclass(config)
        model_config = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.config = config
        self.rollout_mode = rollout_mode
        self.replica_rank = replica_rank
        path = model_config.local_path or model_config.path
        self.tokenizer = AutoTokenizer.from_pretrained(model_config.local_tokenizer_path or path)
        try:
            self.processor = AutoProcessor.from_pretrained(path)
        except (OSError, ValueError):  # a text-only model has no processor
            self.processor = None
        self.model = _load_model(path)
        self.eos_token_id = self.tokenizer.eos_token_id
        # A random model emits any token, vision placeholders included, and verl's agent loop
        # then fails the whole trajectory (Qwen2.5-VL's get_rope_index finds an image token
        # without an image). A trained model never does; keep every added token but EOS out.
        self.suppressed_ids = sorted(set(self.tokenizer.added_tokens_decoder) - {self.eos_token_id})
        self.settings = ScriptSettings.from_rollout_config(config)
        self.script = AnswerScript(self.settings, replica=replica_rank)
        self.log = JsonlLog(self.settings.log_dir, f"rollout_server_{replica_rank}")
        self.global_steps: Optional[int] = None
        self.checksum = weights_checksum(self.model.state_dict().items())
        self._generate_lock = threading.Lock()
        self._in_flight = 0
        self._drained = asyncio.Event()
        self._drained.set()
        self.log.write(event="start", replica=replica_rank, checksum=self.checksum)

    # ---------------------------------------------------------------- generation
    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        **_: Any,
    ) -> TokenOutput:
        if video_data or audio_data:
            raise NotImplementedError("the CPU rollout serves text and images only")
        self._in_flight += 1
        self._drained.clear()
        try:
            return await asyncio.to_thread(self._generate, list(prompt_ids), dict(sampling_params), image_data or [])
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._drained.set()

    def _max_new_tokens(self, sampling_params: dict[str, Any], prompt_len: int) -> int:
        limit = self.config.prompt_length + self.config.response_length - prompt_len
        requested = sampling_params.get("max_tokens") or sampling_params.get("max_new_tokens") or self.config.response_length
        return max(1, min(int(requested), self.config.response_length, limit))

    def _model_inputs(self, prompt_ids: list[int], images: list[Any]) -> dict[str, torch.Tensor]:
        input_ids = torch.tensor([prompt_ids], dtype=torch.long)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        if images:
            if self.processor is None:
                raise ValueError("images were sent to a rollout whose model has no processor")
            vision = self.processor.image_processor(images=images, return_tensors="pt")
            inputs["pixel_values"] = vision["pixel_values"]
            inputs["image_grid_thw"] = vision["image_grid_thw"]
        return inputs

    def _generate(self, prompt_ids: list[int], sampling_params: dict[str, Any], images: list[Any]) -> TokenOutput:
        max_new_tokens = self._max_new_tokens(sampling_params, len(prompt_ids))
        temperature = float(sampling_params.get("temperature", 1.0) or 0.0)
        top_k = int(sampling_params.get("top_k", -1) or -1)
        want_logprobs = bool(sampling_params.get("logprobs"))
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "suppress_tokens": self.suppressed_ids,
        }
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=float(sampling_params.get("top_p", 1.0)), top_k=top_k if top_k > 0 else 0)
        else:
            kwargs.update(do_sample=False)
        inputs = self._model_inputs(prompt_ids, images)
        with self._generate_lock, torch.no_grad():
            checksum = self.checksum
            out = self.model.generate(**inputs, **kwargs, return_dict_in_generate=True, output_scores=want_logprobs)
            token_ids = out.sequences[0, len(prompt_ids):].tolist()
            label = self.script.choose(prompt_ids, images)
            if label is not None:
                token_ids = self.tokenizer.encode(scripted_response(label), add_special_tokens=False)[: max_new_tokens - 1]
                token_ids.append(self.eos_token_id)
            log_probs = self._log_probs(inputs, token_ids) if want_logprobs else None
        self.log.write(event="generate", global_steps=self.global_steps, checksum=checksum, scripted=label is not None)
        return TokenOutput(
            token_ids=token_ids,
            log_probs=log_probs,
            stop_reason="completed",
            extra_fields={"global_steps": self.global_steps},
        )

    def _log_probs(self, inputs: dict[str, torch.Tensor], token_ids: list[int]) -> list[float]:
        """Log-probabilities of the returned tokens under the served weights (one forward pass)."""
        response = torch.tensor([token_ids], dtype=torch.long)
        full = torch.cat([inputs["input_ids"], response], dim=1)
        forward = {**inputs, "input_ids": full, "attention_mask": torch.ones_like(full)}
        logits = self.model(**forward).logits[0, inputs["input_ids"].shape[1] - 1 : -1]
        return torch.log_softmax(logits.float(), dim=-1).gather(1, response[0].unsqueeze(1)).squeeze(1).tolist()

    # ---------------------------------------------------------------- weights
    async def update_weights(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: Optional[int] = None) -> str:
        """Load full tensors by name (LoRA already merged by the actor); returns the new checksum."""
        await self._drained.wait()
        return await asyncio.to_thread(self._load, named_tensors, global_steps)

    def _load(self, named_tensors: list[tuple[str, torch.Tensor]], global_steps: Optional[int]) -> str:
        state = self.model.state_dict()
        unknown = [name for name, _ in named_tensors if name not in state]
        if unknown:
            raise KeyError(
                f"rollout replica {self.replica_rank}: {len(unknown)} weight name(s) from the actor are not in the "
                f"rollout model, e.g. {unknown[:3]}; expected Hugging Face names such as {list(state)[:3]}"
            )
        with self._generate_lock, torch.no_grad():
            for name, tensor in named_tensors:
                state[name].copy_(tensor.to(state[name].dtype))
            self.checksum = weights_checksum((name, state[name]) for name, _ in named_tensors)
            if global_steps is not None:
                self.global_steps = global_steps
        self.log.write(
            event="update_weights", global_steps=global_steps, checksum=self.checksum,
            tensors=len(named_tensors), model_tensors=len(state),
        )
        return self.checksum

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # ---------------------------------------------------------------- memory and control
    # A CPU model has no KV cache pool to free and no engine to pause: these answer at once.
    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        return None

    async def sleep(self) -> None:
        return None

    async def clear_kv_cache(self) -> None:
        return None

    async def release_kv_cache(self) -> None:
        return None

    async def resume_kv_cache(self) -> None:
        return None

    async def wait_for_requests_to_drain(self) -> None:
        await self._drained.wait()

    async def abort_all_requests(self, reset_prefix_cache: bool = True, reject_request: bool = False) -> dict[str, Any]:
        # Requests run to completion (they are short); nothing is ever left half-done.
        await self._drained.wait()
        return {"aborted_count": 0, "request_ids": []}

    async def resume_generation(self) -> None:
        return None

    async def start_profile(self, **_: Any) -> None:
        return None

    async def stop_profile(self) -> None:
        return None


class HFReplica(RolloutReplica):
    """A rollout replica served by :class:`HFRolloutServer` (one Ray actor, no GPU)."""

    async def launch_servers(self) -> None:
        if self.world_size != 1:
            raise ValueError(
                "the CPU rollout serves each replica from one process: set "
                "actor_rollout_ref.rollout.tensor_model_parallel_size=1 (and data/pipeline parallel 1)"
            )
        name = f"{SERVER_NAME_PREFIX}{self.replica_rank}{self.name_suffix}"
        server = (
            ray.remote(HFRolloutServer)
            .options(name=name, num_cpus=0, max_concurrency=self.max_concurrency)
            .remote(config=self.config, model_config=self.model_config, rollout_mode=self.rollout_mode, replica_rank=self.replica_rank)
        )
        await server.wake_up.remote()  # waits until the model is loaded
        self.servers = [server]
        self._server_handle = server
        self._server_address = f"{ROLLOUT_NAME}://replica-{self.replica_rank}"


class HFServerAdapter(BaseRollout):
    """Worker side of the CPU rollout: hands the actor's weights to this rank's replica server."""

    def __init__(self, config: Any, model_config: Any, device_mesh: Any, replica_rank: int = -1) -> None:
        super().__init__(config, model_config, device_mesh)
        rank = int(os.environ.get("RANK", 0))
        rollout_world_size = (
            self.config.tensor_model_parallel_size * self.config.data_parallel_size * self.config.pipeline_model_parallel_size
        )
        self.replica_rank = rank // rollout_world_size if replica_rank == -1 else replica_rank
        self.rank = rank
        self._is_server_rank = rank % rollout_world_size == 0
        self._server: Any = None
        self.log = JsonlLog(ScriptSettings.from_rollout_config(self.config).log_dir, f"rollout_adapter_{rank}")

    def _server_handle(self) -> Any:
        if self._server is None:  # the replica's server starts after the training engine
            self._server = ray.get_actor(f"{SERVER_NAME_PREFIX}{self.replica_rank}")
        return self._server

    async def resume(self, tags: list[str]) -> None:
        return None  # nothing was released: see HFRolloutServer.sleep

    async def release(self) -> None:
        return None

    @torch.no_grad()
    async def update_weights(
        self, weights: Any, wire_format: str = "named_tensors", global_steps: Optional[int] = None,
        peft_config: Any = None, **_: Any,
    ) -> None:
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the CPU rollout takes full named tensors, not {wire_format!r}")
        if peft_config is not None:
            raise NotImplementedError(
                "the CPU rollout does not apply LoRA adapters: set actor_rollout_ref.model.lora.merge=True "
                "so that the actor sends merged weights"
            )
        # Every rank iterates: gathering a sharded tensor is a collective all ranks must join.
        named = [(name, tensor.detach().to("cpu").contiguous().clone()) for name, tensor in weights]
        if not self._is_server_rank:
            return
        sent = weights_checksum(named)
        received = await self._server_handle().update_weights.remote(named, global_steps)
        self.log.write(event="send_weights", rank=self.rank, replica=self.replica_rank, global_steps=global_steps, checksum=sent, tensors=len(named))
        if received != sent:
            raise RuntimeError(f"rollout replica {self.replica_rank} holds weights {received} after a sync of {sent}")

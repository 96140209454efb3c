"""The transformers backend: slow, but runs anywhere (CPU included) and needs no server."""

from __future__ import annotations

from typing import Optional, Sequence

from verl_ext.eval.backends.base import GenerationRequest, load_image, render_prompt
from verl_ext.eval.model_source import ModelSource
from verl_ext.eval.sampling import SamplingSettings


def _load_model(source: ModelSource, device: str):
    import torch
    from transformers import AutoModelForImageTextToText

    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForImageTextToText.from_pretrained(str(source.base_path), dtype=dtype)
    if source.adapter_path is not None:
        from peft import PeftModel

        # Merging once makes generation as fast as the plain model; the result is the trained policy.
        model = PeftModel.from_pretrained(model, str(source.adapter_path)).merge_and_unload()
    return model.to(device).eval()


class HFBackend:
    """Generates with ``model.generate``; ``calls`` counts the images it was asked to answer."""

    name = "hf"

    def __init__(
        self,
        source: ModelSource,
        settings: SamplingSettings,
        *,
        device: Optional[str] = None,
        max_pixels: Optional[int] = None,
    ):
        import torch
        from transformers import AutoProcessor

        self.settings = settings
        self.max_pixels = max_pixels
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoProcessor.from_pretrained(str(source.base_path))
        self.processor.tokenizer.padding_side = "left"
        self.model = _load_model(source, self.device)
        self.calls = 0

    def _generate_kwargs(self) -> dict:
        s = self.settings
        tokenizer = self.processor.tokenizer
        kwargs = dict(
            max_new_tokens=s.max_new_tokens,
            num_return_sequences=s.n,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
        )
        if s.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
        return kwargs

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]:
        import torch

        if not requests:
            return []
        texts = [render_prompt(self.processor, r.prompt_text) for r in requests]
        images = [load_image(r.image_bytes, self.max_pixels) for r in requests]
        inputs = self.processor(text=texts, images=images, return_tensors="pt", padding=True).to(self.device)
        # One seed per batch, derived from the per-image seeds: with batch size 1 (the
        # default) every image's samples are reproducible whatever order they run in.
        torch.manual_seed(sum(r.seed for r in requests) & 0x7FFFFFFF)
        with torch.inference_mode():
            output = self.model.generate(**inputs, **self._generate_kwargs())
        new_tokens = output[:, inputs["input_ids"].shape[1]:]
        decoded = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        self.calls += len(requests)
        n = self.settings.n
        return [decoded[i * n:(i + 1) * n] for i in range(len(requests))]

    def close(self) -> None:
        self.model = None

"""What every generation backend takes and returns, and the shared chat/image preparation."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Optional, Protocol, Sequence

from PIL import Image

from verl_ext.core.prompts import IMAGE_PLACEHOLDER
from verl_ext.data_prep.images import shrink_image


@dataclass(frozen=True)
class GenerationRequest:
    """One image and the prompt text to classify it with; ``seed`` drives sampling."""

    key: str
    image_bytes: bytes
    prompt_text: str
    seed: int


class GenerationBackend(Protocol):
    """Turns requests into ``n`` decoded responses each (the text after the prompt)."""

    name: str

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[str]]: ...

    def close(self) -> None: ...


def chat_messages(prompt_text: str) -> list[dict]:
    """One user turn, image first, then the text, in the structured form chat templates read.

    The same layout as the training prompt: the dataset's ``<image>`` placeholder comes first.
    """
    text = prompt_text.replace(IMAGE_PLACEHOLDER, "")
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]


def render_prompt(processor, prompt_text: str) -> str:
    """The full prompt string (chat template applied, generation turn opened)."""
    return processor.apply_chat_template(chat_messages(prompt_text), add_generation_prompt=True, tokenize=False)


def load_image(data: bytes, max_pixels: Optional[int] = None) -> Image.Image:
    """Decode image bytes to RGB, shrinking (aspect kept) when above ``max_pixels``."""
    return shrink_image(Image.open(io.BytesIO(data)).convert("RGB"), max_pixels)

"""The stock Qwen2.5-VL processor around the tiny tokenizer, with small image bounds.

Tests must exercise transformers' real ``Qwen2_5_VLProcessor`` (the class verl's agent loop and
dataset call), not a look-alike. Only the pixel bounds are shrunk, so that every image becomes
a handful of 28x28 patches and tests stay fast. A video processor is required: without one,
``AutoProcessor.from_pretrained`` silently returns the bare tokenizer and verl then treats the
model as text-only (seen with transformers 5.10: ``AutoProcessor`` falls back to the tokenizer
when the saved processor has no video processor).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerBase, Qwen2_5_VLProcessor

#: Side of one merged vision token in pixels (patch 14 x spatial merge 2).
VISION_TOKEN_PIXELS = 28
#: At least 2x2 merged tokens per image (56x56 pixels).
DEFAULT_MIN_PIXELS = 4 * VISION_TOKEN_PIXELS * VISION_TOKEN_PIXELS
#: At most 4x4 merged tokens per image (112x112 pixels).
DEFAULT_MAX_PIXELS = 16 * VISION_TOKEN_PIXELS * VISION_TOKEN_PIXELS


def build_tiny_processor(
    tokenizer: "PreTrainedTokenizerBase",
    *,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> "Qwen2_5_VLProcessor":
    """Assemble the stock processor; images are resized to ``min_pixels..max_pixels`` pixels."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    if not 0 < min_pixels <= max_pixels:
        raise ValueError(
            f"min_pixels and max_pixels must satisfy 0 < min_pixels <= max_pixels, "
            f"got min_pixels={min_pixels}, max_pixels={max_pixels}"
        )
    # A fresh ``size`` dict each time: passing ``min_pixels=``/``max_pixels=`` to these
    # constructors writes into the class-level default ``size`` dict (transformers 5.10),
    # which would shrink every processor built later in the same process.
    image_processor = Qwen2VLImageProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    video_processor = Qwen2VLVideoProcessor(size={"shortest_edge": min_pixels, "longest_edge": max_pixels})
    return Qwen2_5_VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )

"""Synthetic, deterministic JPEG images for tests (no dataset download needed).

Each image is a smooth two-colour gradient with a few soft blobs and a little noise, so that it
looks photograph-like to an encoder (JPEG compresses it like a photo, not like a flat colour)
while the same ``seed`` always yields the same pixels.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from PIL import Image

DEFAULT_SIZE = (64, 48)


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    if len(size) != 2 or not all(isinstance(side, int) and side > 0 for side in size):
        raise ValueError(f"size must be (width, height) with positive integers, got {size!r}")
    return size


def synthetic_image(seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE) -> "Image.Image":
    """An RGB PIL image of ``size`` = (width, height), fully determined by ``seed``."""
    import numpy as np
    from PIL import Image

    width, height = _check_size(size)
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    ys /= max(height - 1, 1)
    xs /= max(width - 1, 1)

    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xs + np.sin(angle) * ys)[..., None]
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    start, end = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    pixels = start + ramp * (end - start)

    for _ in range(int(rng.integers(2, 5))):
        cy, cx = rng.uniform(0, 1, size=2)
        radius = rng.uniform(0.08, 0.3)
        weight = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius**2))[..., None]
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        pixels = pixels * (1 - 0.8 * weight) + colour * 0.8 * weight

    pixels += rng.normal(0, 6, size=pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def synthetic_jpeg(seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE, *, quality: int = 90) -> bytes:
    """The JPEG bytes of :func:`synthetic_image` (identical bytes for identical arguments)."""
    if not 1 <= quality <= 95:
        raise ValueError(f"quality must be in 1..95, got {quality}")
    buffer = io.BytesIO()
    synthetic_image(seed, size).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_synthetic_jpeg(
    path: str | Path, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE, *, quality: int = 90
) -> Path:
    """Write :func:`synthetic_jpeg` to ``path`` (parent folders are created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(synthetic_jpeg(seed, size, quality=quality))
    return path

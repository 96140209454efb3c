"""Image integrity checks, and the one pixel-budget downscaling rule of the package.

Images are stored with their original bytes, so the check must not re-encode anything. A
JPEG is decoded in PIL's draft mode at 1/8 scale: every entropy-coded block is still read
(so truncated or corrupt data fails), but the inverse DCT runs on 1/64 of the pixels, which
keeps the check an order of magnitude cheaper than a full decode. Other formats are decoded
in full.

Downscaling (``--max-pixels`` here, ``--max-pixels`` of the evaluation backends too) goes
through :func:`shrink_image`, so a shrunk training image and a shrunk evaluation image are
made the same way. The filter is BICUBIC on purpose: it is what the model's own
preprocessing uses when it resizes (transformers' ``Qwen2VLImageProcessor`` defaults to
``PILImageResampling.BICUBIC``; ``qwen_vl_utils.fetch_image`` calls ``Image.resize`` without a
filter, which is BICUBIC in Pillow), so an image we shrink looks like one the processor would
have shrunk itself. Pillow's BICUBIC widens its kernel with the scale factor, so it
antialiases when shrinking; LANCZOS would only be slightly sharper, with more ringing.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile

from .errors import BadImageError

#: Re-encoding quality used only when ``--max-pixels`` shrinks an image.
DOWNSCALE_JPEG_QUALITY = 95
#: The resampling filter of every downscale in the package (see the module doc for why).
DOWNSCALE_FILTER = Image.Resampling.BICUBIC


@dataclass(frozen=True)
class ImageInfo:
    """What the check learned about one image."""

    format: str
    width: int
    height: int


def inspect_image(data: bytes, path: str) -> ImageInfo:
    """Decode ``data`` (cheaply, see module doc); raise :class:`BadImageError` naming ``path``."""
    if not data:
        raise BadImageError(path, "the file is empty")
    previous = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # another library may have relaxed this globally
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                info = ImageInfo(image.format or "unknown", *image.size)
                if image.format == "JPEG":
                    image.draft(image.mode, (max(1, info.width // 8), max(1, info.height // 8)))
                image.load()
    except BadImageError:
        raise
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError, ... for bad data
        raise BadImageError(path, f"cannot decode ({type(error).__name__}: {error})") from error
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    if info.width <= 0 or info.height <= 0:
        raise BadImageError(path, f"invalid size {info.width}x{info.height}")
    return info


def fit_within(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """Largest size with the same aspect ratio and at most ``max_pixels`` pixels."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    new_width, new_height = max(1, int(width * scale)), max(1, int(height * scale))
    while new_width * new_height > max_pixels:  # guard against rounding
        if new_width >= new_height:
            new_width -= 1
        else:
            new_height -= 1
    return new_width, new_height


def shrink_image(image: Image.Image, max_pixels: int | None) -> Image.Image:
    """``image`` resized (aspect kept, :data:`DOWNSCALE_FILTER`) to at most ``max_pixels``; unchanged if it fits."""
    if max_pixels is None:
        return image
    size = fit_within(image.width, image.height, max_pixels)
    if size == image.size:
        return image
    return image.resize(size, DOWNSCALE_FILTER)


def downscale(data: bytes, info: ImageInfo, max_pixels: int) -> bytes | None:
    """JPEG bytes of the image shrunk to at most ``max_pixels``, or ``None`` if it already fits."""
    if fit_within(info.width, info.height, max_pixels) == (info.width, info.height):
        return None
    with Image.open(io.BytesIO(data)) as image:
        small = shrink_image(image.convert("RGB"), max_pixels)
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=DOWNSCALE_JPEG_QUALITY)
    return out.getvalue()

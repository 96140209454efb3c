"""One folder that verl and transformers accept as a Qwen2.5-VL model path, built offline.

The folder holds the tiny tokenizer, the stock ``Qwen2_5_VLProcessor`` and a random-weight tiny
``Qwen2_5_VLForConditionalGeneration``, so it can stand in for ``actor_rollout_ref.model.path``
(``hf_tokenizer``, ``hf_processor`` and ``AutoModel*`` all load it) in tests of this package and
of users' own recipes. Building it takes a few seconds and needs no network.

CLI: ``python -m verl_ext.testing.kit --out DIR`` writes a kit to ``DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from verl_ext.testing.processor import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS
from verl_ext.testing.tokenizer import DEFAULT_VOCAB_SIZE, IMAGE_PAD_TOKEN

if TYPE_CHECKING:  # pragma: no cover - typing only
    from transformers import PreTrainedTokenizerBase, ProcessorMixin, Qwen2_5_VLForConditionalGeneration

#: Written last; its presence marks a complete kit folder.
MARKER_FILE = "verl_ext_offline_kit.json"
#: Bump when the kit's files change in a way the source hash would not show.
KIT_FORMAT_VERSION = 1
#: Environment variable naming a folder where built kits are kept between test sessions.
CACHE_ENV = "VERL_EXT_KIT_CACHE"


class OfflineKitError(RuntimeError):
    """A kit folder that cannot be written or is not a complete kit."""


@dataclass(frozen=True)
class KitSettings:
    """What the kit is built from; equal settings (and sources) give identical files."""

    vocab_size: int = DEFAULT_VOCAB_SIZE
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "min_pixels", "max_pixels", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a non-negative int, got {value!r}")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"min_pixels must be positive and <= max_pixels, got {self.min_pixels} > {self.max_pixels}"
            )


class OfflineKit:
    """A built kit folder; the tokenizer and processor are loaded from disk on first use."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not (self.path / MARKER_FILE).is_file():
            raise OfflineKitError(
                f"{self.path} is not a complete offline kit ({MARKER_FILE} missing); "
                "build one with verl_ext.testing.build_offline_kit(DIR) or "
                "python -m verl_ext.testing.kit --out DIR"
            )

    def __repr__(self) -> str:
        return f"OfflineKit({str(self.path)!r})"

    @cached_property
    def info(self) -> dict[str, Any]:
        """The settings and library versions recorded when the kit was built."""
        return json.loads((self.path / MARKER_FILE).read_text(encoding="utf-8"))

    @cached_property
    def tokenizer(self) -> "PreTrainedTokenizerBase":
        """The shared tokenizer, loaded on first use; treat it as read-only."""
        return self.load_tokenizer()

    @cached_property
    def processor(self) -> "ProcessorMixin":
        """The shared processor, loaded on first use; treat it as read-only."""
        return self.load_processor()

    def load_tokenizer(self) -> "PreTrainedTokenizerBase":
        """A fresh tokenizer (verl sets ``padding_side`` on the one it is given)."""
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.path)

    def load_processor(self) -> "ProcessorMixin":
        """A fresh processor, loaded the way verl's ``hf_processor`` loads it."""
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(self.path)

    @property
    def image_token_id(self) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(IMAGE_PAD_TOKEN))

    def load_model(self) -> "Qwen2_5_VLForConditionalGeneration":
        """A fresh copy of the tiny model in eval mode (callers may train or mutate it)."""
        from transformers import Qwen2_5_VLForConditionalGeneration

        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(self.path, attn_implementation="sdpa")
        return model.eval()


def build_offline_kit(out_dir: str | Path, settings: Optional[KitSettings] = None) -> OfflineKit:
    """Build the tokenizer, processor and model into ``out_dir`` (created; must be empty if it exists)."""
    from verl_ext.testing.model import build_tiny_model
    from verl_ext.testing.processor import build_tiny_processor
    from verl_ext.testing.tokenizer import build_tiny_tokenizer

    settings = settings or KitSettings()
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise OfflineKitError(f"kit output {out_dir} exists and is not an empty folder; choose a new path")
    out_dir.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tiny_tokenizer(settings.vocab_size)
    processor = build_tiny_processor(tokenizer, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels)
    model = build_tiny_model(tokenizer, seed=settings.seed)
    processor.save_pretrained(out_dir)
    model.save_pretrained(out_dir)

    import tokenizers
    import torch
    import transformers

    info = {
        "kit_format_version": KIT_FORMAT_VERSION,
        "settings": asdict(settings),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "torch": torch.__version__,
        "vocab_size": len(tokenizer),
    }
    (out_dir / MARKER_FILE).write_text(json.dumps(info, indent=2, sort_keys=True), encoding="utf-8")
    return OfflineKit(out_dir)


def kit_cache_key(settings: Optional[KitSettings] = None) -> str:
    """A hash of what determines the kit's files: its sources, settings and library versions."""
    import tokenizers
    import torch
    import transformers

    settings = settings or KitSettings()
    digest = hashlib.sha256()
    digest.update(f"format={KIT_FORMAT_VERSION};{sorted(asdict(settings).items())}".encode())
    versions = (transformers.__version__, tokenizers.__version__, torch.__version__)
    digest.update("transformers={};tokenizers={};torch={}".format(*versions).encode())
    source_dir = Path(__file__).resolve().parent
    for name in ("tokenizer.py", "processor.py", "model.py", "kit.py"):
        digest.update((source_dir / name).read_bytes())
    return digest.hexdigest()[:16]


def ensure_offline_kit(cache_root: str | Path, settings: Optional[KitSettings] = None) -> OfflineKit:
    """Return the kit cached under ``cache_root`` for these sources and settings, building it if absent.

    The kit is built in a temporary sibling folder and renamed into place, so concurrent test
    sessions never see a half-written kit.
    """
    settings = settings or KitSettings()
    cache_root = Path(cache_root)
    target = cache_root / f"tiny-qwen25vl-{kit_cache_key(settings)}"
    if (target / MARKER_FILE).is_file():
        return OfflineKit(target)
    if target.exists():
        raise OfflineKitError(f"{target} exists but is not a complete offline kit; remove that folder and retry")
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".kit-build-", dir=cache_root))
    try:
        build_offline_kit(staging / "kit", settings)
        try:
            os.replace(staging / "kit", target)
        except OSError as error:
            if not (target / MARKER_FILE).is_file():  # not a lost race with another session
                raise OfflineKitError(
                    f"cannot place the offline kit at {target} ({error}); remove that folder and retry"
                ) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return OfflineKit(target)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m verl_ext.testing.kit",
        description="Write an offline tiny Qwen2.5-VL kit (tokenizer, processor, random model) to a folder.",
    )
    parser.add_argument("--out", required=True, type=Path, help="new or empty folder to write the kit to")
    parser.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    parser.add_argument("--min-pixels", type=int, default=DEFAULT_MIN_PIXELS)
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--seed", type=int, default=0, help="seed of the random model weights")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        settings = KitSettings(
            vocab_size=args.vocab_size, min_pixels=args.min_pixels, max_pixels=args.max_pixels, seed=args.seed
        )
        kit = build_offline_kit(args.out, settings)
    except (ValueError, OfflineKitError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(kit.path)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess test
    sys.exit(main())

"""Decoding settings of the predict stage; they are part of its cache key."""

from __future__ import annotations

import hashlib

from pydantic import Field, model_validator

from verl_ext.settings import InvalidSetting, Settings


class SamplingSettings(Settings):
    """How many answers per image and how they are decoded.

    The paper's main protocol is greedy (``temperature=0``, ``n=1``) with up to 2,048 new
    tokens; its Best-of-64 upper bound samples at temperature 0.6, top-p 0.95
    (as the paper's evaluation protocol states). ``seed`` makes sampling reproducible: each image gets its
    own seed derived from it and the image's content hash.
    """

    n: int = Field(1, ge=1, strict=True)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(2048, ge=1, strict=True)
    seed: int = Field(0, strict=True)

    @model_validator(mode="after")
    def _no_identical_samples(self) -> "SamplingSettings":
        if self.n > 1 and self.temperature == 0:
            raise InvalidSetting(
                "n", f"must be 1 with temperature 0, got {self.n}: greedy decoding gives {self.n} identical "
                "answers; set temperature > 0 (the paper's Best-of-N uses 0.6)"
            )
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict:
        return self.model_dump()

    def seed_for(self, image_sha256: str) -> int:
        """A per-image seed, so results do not depend on batch order or on resuming."""
        digest = hashlib.sha256(f"{self.seed}:{image_sha256}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

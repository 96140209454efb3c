"""Decoding settings of the predict stage; they are part of its cache key."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SamplingSettings:
    """How many answers per image and how they are decoded.

    The paper's main protocol is greedy (``temperature=0``, ``n=1``) with up to 2,048 new
    tokens; its Best-of-64 upper bound samples at temperature 0.6, top-p 0.95
    (as the paper's evaluation protocol states). ``seed`` makes sampling reproducible: each image gets its
    own seed derived from it and the image's content hash.
    """

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 2048
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be a positive integer, got {self.n!r}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        if self.n > 1 and self.temperature == 0:
            raise ValueError(
                f"n={self.n} with temperature 0 gives {self.n} identical greedy answers; "
                "set temperature > 0 (the paper's Best-of-N uses 0.6)"
            )

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def as_dict(self) -> dict:
        return asdict(self)

    def seed_for(self, image_sha256: str) -> int:
        """A per-image seed, so results do not depend on batch order or on resuming."""
        digest = hashlib.sha256(f"{self.seed}:{image_sha256}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF

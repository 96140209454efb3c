"""Finding the weights behind ``--model``: a HF folder, a LoRA checkpoint, or a merged model.

Accepted layouts (checked in this order):

1. **A PEFT adapter folder** (``adapter_config.json`` inside): the base model is
   ``--base-model`` or the adapter's ``base_model_name_or_path``.
2. **The output of verl's model merger** for a LoRA run
   (``python -m verl.model_merger merge --backend fsdp --local_dir .../actor --target_dir OUT``):
   ``OUT`` holds the *base* weights and ``OUT/lora_adapter/``; the adapter is applied on top.
3. **A verl checkpoint folder** (``global_step_N`` or its ``actor/``): its ``lora_adapter/`` and
   ``huggingface/`` sub-folders are used when they hold weights; raw FSDP shards
   (``model_world_size_*.pt``) must be merged first and we say how.
4. **A HF model folder** (``config.json`` and weights), including a model whose LoRA was
   already merged into the weights.

The fingerprint hashes the content of every file that shapes the outputs (weights, config,
tokenizer, chat template, adapter), memoised by (path, size, mtime) so a 16 GB model is
hashed once.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from verl_ext.data_prep.download import file_digest

_FINGERPRINT_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt", ".tiktoken")


class ModelSourceError(ValueError):
    """``--model`` does not point at anything we can load; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    """The base model folder and, for a LoRA checkpoint, the adapter folder to apply on top."""

    base_path: Path
    adapter_path: Optional[Path] = None
    layout: str = "hf"

    @property
    def has_adapter(self) -> bool:
        return self.adapter_path is not None

    def adapter_rank(self) -> Optional[int]:
        """The LoRA rank ``r`` from ``adapter_config.json`` (vLLM needs it to size its buffers)."""
        if self.adapter_path is None:
            return None
        config = _read_json(self.adapter_path / "adapter_config.json")
        rank = config.get("r")
        if not isinstance(rank, int) or rank <= 0:
            raise ModelSourceError(f"{self.adapter_path / 'adapter_config.json'}: field 'r' must be a positive integer")
        return rank

    def describe(self) -> dict:
        return {
            "layout": self.layout,
            "base_path": str(self.base_path),
            "adapter_path": str(self.adapter_path) if self.adapter_path else None,
        }


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelSourceError(f"{path}: cannot read JSON ({error})") from error


#: Files that hold a Hugging Face model's weights.
WEIGHT_FILE_SUFFIXES = (".safetensors", ".bin")


def has_weights(folder: Path) -> bool:
    """A Hugging Face model folder: a ``config.json`` and at least one weight file (also the recipes' check)."""
    return (folder / "config.json").is_file() and any(
        p.suffix in WEIGHT_FILE_SUFFIXES for p in folder.iterdir() if p.is_file()
    )


def _is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file()


def _adapter_base(adapter: Path, base_model: Optional[str]) -> Path:
    named = base_model or _read_json(adapter / "adapter_config.json").get("base_model_name_or_path")
    if not named:
        raise ModelSourceError(
            f"{adapter}: a LoRA adapter without 'base_model_name_or_path'; pass --base-model PATH"
        )
    base = Path(named)
    if not has_weights(base):
        raise ModelSourceError(f"{adapter}: base model {str(base)!r} is not a local HF folder with weights; "
                               "pass --base-model PATH")
    return base


def resolve_model(path: str | Path, base_model: Optional[str] = None) -> ModelSource:
    """The :class:`ModelSource` for ``--model PATH`` (see the module docstring for layouts)."""
    root = Path(path)
    if not root.is_dir():
        raise ModelSourceError(f"--model {str(root)!r}: not a directory")
    if _is_adapter(root):
        return ModelSource(_adapter_base(root, base_model), root, "peft_adapter")
    for folder in (root, root / "actor"):
        adapter = folder / "lora_adapter"
        if _is_adapter(adapter):
            if base_model:
                return ModelSource(_adapter_base(adapter, base_model), adapter, "lora_checkpoint")
            for candidate in (folder, folder / "huggingface"):
                if has_weights(candidate):
                    return ModelSource(candidate, adapter, "lora_checkpoint")
            return ModelSource(_adapter_base(adapter, None), adapter, "lora_checkpoint")
    for folder in (root, root / "huggingface", root / "actor" / "huggingface"):
        if folder.is_dir() and has_weights(folder):
            return ModelSource(folder, None, "hf" if folder == root else "verl_checkpoint_hf")
    for folder in (root, root / "actor"):
        if folder.is_dir() and any(folder.glob("model_world_size_*_rank_*.pt")):
            raise ModelSourceError(
                f"--model {str(root)!r}: a verl FSDP checkpoint with sharded weights only. Merge it first: "
                f"python -m verl.model_merger merge --backend fsdp --local_dir {folder} --target_dir MERGED, "
                "then pass --model MERGED (a LoRA run leaves MERGED/lora_adapter, which is applied automatically)"
            )
    raise ModelSourceError(
        f"--model {str(root)!r}: no config.json with weights, no adapter_config.json and no verl checkpoint found"
    )


def _file_digest(path: Path, memo: dict) -> str:
    stat = path.stat()
    memo_key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if memo_key not in memo:
        memo[memo_key] = file_digest(path, "sha256")
    return memo[memo_key]


def _folder_digests(folder: Path, memo: dict) -> dict[str, str]:
    return {
        p.name: _file_digest(p, memo)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in _FINGERPRINT_SUFFIXES
    }


def fingerprint(source: ModelSource, memo_path: Optional[Path] = None) -> str:
    """SHA-256 over the content of the base (and adapter) files; the predict stage keys on it."""
    memo: dict = {}
    if memo_path is not None and memo_path.is_file():
        try:
            memo = json.loads(memo_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            memo = {}
    parts = {"base": _folder_digests(source.base_path, memo)}
    if source.adapter_path is not None:
        parts["adapter"] = _folder_digests(source.adapter_path, memo)
    if memo_path is not None:
        memo_path.parent.mkdir(parents=True, exist_ok=True)
        memo_path.write_text(json.dumps(memo, indent=0), encoding="utf-8")
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

"""Stage caches: append-only JSON-lines files that make every stage resumable, and their keys.

A stage appends one line per finished unit of work and flushes it to disk at once, so an
interruption loses at most the unit in flight. On load, a torn last line (the process died
mid-write) is ignored and counted; it is simply redone.

A stage's file is named by :func:`content_key` of everything its output depends on: the
inputs and settings, the source code that computes it (:func:`code_fingerprint`) and the
versions of the libraries that run it (:func:`library_versions`). No hand-bumped version
constant is involved, so a change to any of them starts a fresh file instead of reusing
stale results.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import os
from pathlib import Path
from typing import Any, Iterable


def content_key(value: Any) -> str:
    """A stable SHA-256 of a JSON-serialisable value (keys sorted): the cache key of a stage input."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=None)
def code_fingerprint(*modules: str) -> str:
    """SHA-256 over the source files of the named modules (found without running them).

    Part of a stage key: an edit to the code that computes a stage's output (a parse rule, a
    metric, a prompt) gives the stage a fresh cache. Any edit counts, comments included: a
    needless recomputation is cheaper than a silently stale result.
    """
    digest = hashlib.sha256()
    for name in modules:
        spec = importlib.util.find_spec(name)
        source = spec.origin if spec is not None else None
        if source is None or not Path(source).is_file():
            raise ValueError(f"module {name!r} has no source file to fingerprint")
        digest.update(name.encode() + b"\0" + Path(source).read_bytes() + b"\0")
    return digest.hexdigest()


def library_versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions (``"absent"`` when not installed)."""
    versions = {}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


class JsonlStore:
    """Records keyed by ``record["key"]``; a later line for the same key wins."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.torn_lines = 0

    def load(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        self.torn_lines = 0
        if not self.path.exists():
            return records
        with self.path.open("r", encoding="utf-8") as handle:
            for line in handle:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    self.torn_lines += 1
                    continue
                if isinstance(record, dict) and "key" in record:
                    records[record["key"]] = record
        return records

    def append(self, records: Iterable[dict]) -> int:
        lines = [json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records]
        if not lines:
            return 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            # A torn line from a crash has no newline; start on a fresh line so we never glue onto it.
            if handle.tell() > 0 and not self._ends_with_newline():
                handle.write("\n")
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        return len(lines)

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"

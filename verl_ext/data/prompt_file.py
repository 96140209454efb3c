"""Reading a ``file://path`` prompt setting: the one piece of I/O behind ``core.prompts.resolve_prompt_text``.

The core resolves prompt settings without touching the disk; the dataset, the evaluation CLI
and the recipes' dry run pass this reader so all three accept the same files.
"""

from __future__ import annotations

from pathlib import Path


def read_prompt_file(path: str) -> str:
    """The text of a prompt file (``~`` expanded, UTF-8)."""
    return Path(path).expanduser().read_text(encoding="utf-8")

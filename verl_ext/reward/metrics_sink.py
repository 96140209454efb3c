"""Where a closed step's reward figures go: one log line and, if configured, one JSONL record."""

from __future__ import annotations

import json
import logging
import os
import time
from typing import Mapping, Optional

logger = logging.getLogger(__name__)


def brief(role: str, summary: Mapping[str, float]) -> dict[str, float]:
    """The overall figures and category shares of a summary, for the log line."""
    overall = f"speciarl/{role}/"
    return {
        key[len(overall):]: round(value, 4)
        for key, value in summary.items()
        if key.startswith(overall) and (key.count("/") == 2 or key.startswith(overall + "share/"))
    }


class StepMetricsSink:
    """Writes each closed step once: ``[speciarl] <role> step <n>: {...}`` and a JSONL line."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.path = path

    def write(self, role: str, step: int, summary: Mapping[str, float]) -> None:
        logger.warning("[speciarl] %s step %d: %s", role, step, brief(role, summary))
        if not self.path:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as sink:
            sink.write(json.dumps({"time": time.time(), "role": role, "step": int(step), **summary}) + "\n")

"""An in-process judge that grades by a rule table. TEST DOUBLE: it stands in for an LLM
judge server (vLLM) that cannot run on a CPU machine; it never makes a network call.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Optional, Sequence

from verl_ext.core.answer import normalise_label
from verl_ext.core.categories import Category, parse_category
from verl_ext.judge.base import JudgeUnavailableError, Verdict


class RuleTableJudge:
    """Grades (gt, pred) by table lookup; unknown pairs get ``default``; ``errors`` fail."""

    def __init__(
        self,
        table: Mapping[tuple[str, str], Category],
        default: Category = Category.WRONG,
        errors: Sequence[tuple[str, str]] = (),
        down: bool = False,
    ) -> None:
        self.table = {(normalise_label(g), normalise_label(p)): c for (g, p), c in table.items()}
        self.default = default
        self.errors = {(normalise_label(g), normalise_label(p)) for g, p in errors}
        self.down = down  # simulate a judge that stayed unreachable past its budget
        self.calls = 0
        self._metrics: Counter = Counter()

    async def grade(self, ground_truth: str, prediction: str) -> Verdict:
        self.calls += 1
        if self.down:
            raise JudgeUnavailableError("rule table: simulated outage of http://judge.invalid/v1")
        self._metrics["judge/requests"] += 1
        key = (ground_truth, prediction)
        if key in self.errors:
            self._metrics["judge/errors"] += 1
            return Verdict(None, error="rule table: injected error", source="rule_table")
        return Verdict(self.table.get(key, self.default), source="rule_table")

    async def grade_many(self, pairs: Sequence[tuple[str, str]]) -> list[Verdict]:
        return [await self.grade(g, p) for g, p in pairs]

    def pop_metrics(self) -> dict[str, float]:
        out = {k: float(v) for k, v in self._metrics.items()}
        self._metrics.clear()
        return out

    async def aclose(self) -> None:
        return None


def from_settings(settings: Mapping[str, Any]) -> RuleTableJudge:
    """Factory for ``judge.impl``: ``settings["table"]`` is a list of [gt, pred, label] rows,
    ``settings["default"]`` a label, ``settings["errors"]`` a list of [gt, pred] rows, and
    ``settings["down"]`` makes every call raise JudgeUnavailableError."""
    table = {(str(g), str(p)): parse_category(str(label)) for g, p, label in settings.get("table", [])}
    default: Optional[str] = settings.get("default")
    errors = [(str(g), str(p)) for g, p in settings.get("errors", [])]
    default_category = parse_category(default) if default else Category.WRONG
    return RuleTableJudge(table, default_category, errors, down=bool(settings.get("down", False)))

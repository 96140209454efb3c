"""``python -m verl_ext.judge.calibrate --url URL``: check a judge model before trusting it.

Runs a labelled suite of (ground truth, prediction, expected category) cases through the
judge client and prints the agreement per category, per domain and overall, and a
confusion matrix (rows: expected, columns: the judge's answer, plus ``error``).

The bundled suite (``calibration_cases.jsonl``, next to this module) has 144 cases: six
domains (birds, flowers, food, pets, aircraft, cars) × six categories × four cases. The
cases were written by hand for this project from the class lists of the six benchmark
datasets (CUB-200, Flowers102, Food-101, Oxford-IIIT Pets, FGVC-Aircraft, Stanford Cars)
and the six category definitions in docs/judge.md; none is taken from the original
SpeciaRL code. They avoid the pairs the client decides without an LLM (an exact match after
normalisation; the fixed refusal phrases), so they test the model itself; the report still
counts how each verdict was reached. Some cases are debatable by nature (where "less
specific" ends and "generic" begins); treat agreement below ~90% on a category as a reason
to read its rows, not as proof of a bad judge.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Sequence

from verl_ext.core.categories import CATEGORY_LABELS, Category, try_parse_category
from verl_ext.judge.base import Judge, JudgeUnavailableError, Verdict
from verl_ext.judge.config import CONSTRAINTS, parse_setting_overrides
from verl_ext.judge.factory import build_judge
from verl_ext.settings import SettingsError

CASES_FILE = "calibration_cases.jsonl"
ERROR_COLUMN = "error"
_SHORT = {"wrong": "W", "abstain": "A", "generic": "G", "less specific": "S-", "specific": "S",
          "more specific": "S+", ERROR_COLUMN: "err"}


class CalibrationCaseError(ValueError):
    """A malformed case; the message names the file, line and field."""


@dataclass(frozen=True)
class CalibrationCase:
    id: str
    domain: str
    ground_truth: str
    prediction: str
    expected: Category


def load_cases(path: Optional[Path] = None) -> list[CalibrationCase]:
    """The bundled suite, or a JSON-lines file with the same fields."""
    if path is None:
        text = resources.files("verl_ext.judge").joinpath(CASES_FILE).read_text(encoding="utf-8")
        where = CASES_FILE
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    cases = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise CalibrationCaseError(f"{where}: line {number}: not JSON ({error})") from None
        for key in ("ground_truth", "prediction", "expected"):
            if not isinstance(row.get(key), str):
                raise CalibrationCaseError(f"{where}: line {number}: field {key!r} must be a string")
        expected = try_parse_category(row["expected"])
        if expected is None:
            raise CalibrationCaseError(
                f"{where}: line {number}: field 'expected' is {row['expected']!r}, not one of {CATEGORY_LABELS}")
        cases.append(CalibrationCase(str(row.get("id", number)), str(row.get("domain", "")),
                                     row["ground_truth"], row["prediction"], expected))
    if not cases:
        raise CalibrationCaseError(f"{where}: no cases")
    return cases


@dataclass
class CalibrationReport:
    """Agreement counts and the confusion matrix of one judge on one suite."""

    cases: list[CalibrationCase]
    answers: list[str]  # the judge's label per case, or ERROR_COLUMN
    sources: Counter = field(default_factory=Counter)

    @property
    def columns(self) -> list[str]:
        return [c.label for c in Category] + [ERROR_COLUMN]

    def confusion(self) -> dict[str, Counter]:
        matrix = {c.label: Counter() for c in Category}
        for case, answer in zip(self.cases, self.answers):
            matrix[case.expected.label][answer] += 1
        return matrix

    def agreement_by(self, key) -> dict[str, tuple[int, int]]:
        out: dict[str, list[int]] = {}
        for case, answer in zip(self.cases, self.answers):
            cell = out.setdefault(key(case), [0, 0])
            cell[0] += answer == case.expected.label
            cell[1] += 1
        return {k: (v[0], v[1]) for k, v in out.items()}

    def per_category(self) -> dict[str, tuple[int, int]]:
        found = self.agreement_by(lambda c: c.expected.label)
        return {c.label: found.get(c.label, (0, 0)) for c in Category}

    def per_domain(self) -> dict[str, tuple[int, int]]:
        return self.agreement_by(lambda c: c.domain or "-")

    @property
    def overall(self) -> float:
        agree = sum(a == c.expected.label for c, a in zip(self.cases, self.answers))
        return agree / len(self.cases) if self.cases else 0.0

    def disagreements(self) -> list[tuple[CalibrationCase, str]]:
        return [(c, a) for c, a in zip(self.cases, self.answers) if a != c.expected.label]

    def as_dict(self) -> dict[str, Any]:
        return {
            "overall_agreement": self.overall,
            "per_category": {k: {"agree": a, "total": t} for k, (a, t) in self.per_category().items()},
            "per_domain": {k: {"agree": a, "total": t} for k, (a, t) in self.per_domain().items()},
            "confusion": {k: dict(v) for k, v in self.confusion().items()},
            "verdict_sources": dict(self.sources),
            "disagreements": [{"id": c.id, "ground_truth": c.ground_truth, "prediction": c.prediction,
                               "expected": c.expected.label, "judge": a} for c, a in self.disagreements()],
        }


def _pct(agree: int, total: int) -> str:
    return f"{agree:>3}/{total:<3} {100 * agree / total:5.1f}%" if total else "  -"


def render(report: CalibrationReport) -> str:
    lines = [f"Agreement: {100 * report.overall:.1f}% of {len(report.cases)} cases", "", "Per category (expected):"]
    lines += [f"  {label:<14} {_pct(*counts)}" for label, counts in report.per_category().items()]
    lines += ["", "Per domain:"] + [f"  {d:<14} {_pct(*counts)}" for d, counts in report.per_domain().items()]
    cols = report.columns
    lines += ["", "Confusion matrix (rows: expected, columns: judge):",
              "  " + " " * 14 + "".join(f"{_SHORT[c]:>6}" for c in cols)]
    for label, row in report.confusion().items():
        lines.append(f"  {label:<14}" + "".join(f"{row[c]:>6}" for c in cols))
    lines += ["", "Verdict sources: " + ", ".join(f"{k}={v}" for k, v in sorted(report.sources.items()))]
    wrong = report.disagreements()
    if wrong:
        lines += ["", f"Disagreements ({len(wrong)}):"]
        lines += [f"  {c.id:<14} gt={c.ground_truth!r} pred={c.prediction!r} expected={c.expected.label!r} "
                  f"judge={a!r}" for c, a in wrong]
    return "\n".join(lines)


async def calibrate(judge: Judge, cases: Sequence[CalibrationCase]) -> CalibrationReport:
    """Grade every case with ``judge``; an unavailable judge marks the remaining cases as errors."""
    try:
        verdicts = await judge.grade_many([(c.ground_truth, c.prediction) for c in cases])
    except JudgeUnavailableError as error:
        verdicts = [Verdict(None, error=str(error), source="unavailable") for _ in cases]
    answers = [v.category.label if v.ok else ERROR_COLUMN for v in verdicts]
    return CalibrationReport(list(cases), answers, Counter(v.source for v in verdicts))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.judge.calibrate",
                                     description="Check a judge model against a labelled suite of cases.")
    parser.add_argument("--url", nargs="+", required=True, help="judge base URL(s), e.g. http://host:8000/v1")
    parser.add_argument("--model", help="judge model name (default: the first one the server lists)")
    parser.add_argument("--constraint", choices=CONSTRAINTS, default=None)
    parser.add_argument("--cases", type=Path, help=f"JSON-lines suite (default: the bundled {CASES_FILE})")
    parser.add_argument("--setting", action="append", default=[], metavar="KEY=VALUE",
                        help="any other judge setting (see docs/judge.md)")
    parser.add_argument("--json", type=Path, help="also write the full report as JSON here")
    parser.add_argument("--min-agreement", type=float, default=None,
                        help="exit 1 when the overall agreement is below this fraction (e.g. 0.9)")
    args = parser.parse_args(argv)

    settings: dict[str, Any] = {"urls": list(args.url), "on_failure": "degrade", "cache_size": 0}
    try:
        settings.update(parse_setting_overrides(args.setting, "--setting"))
        if args.model:
            settings["model"] = args.model
        if args.constraint:
            settings["constraint"] = args.constraint
        cases = load_cases(args.cases)
        judge = build_judge(settings)
    except (CalibrationCaseError, SettingsError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    async def run() -> CalibrationReport:
        try:
            return await calibrate(judge, cases)
        finally:
            await judge.aclose()

    report = asyncio.run(run())
    print(render(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    if args.min_agreement is not None and report.overall < args.min_agreement:
        print(f"FAIL: agreement {report.overall:.3f} is below --min-agreement {args.min_agreement}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

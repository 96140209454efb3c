"""The Markdown report: tables in the paper's layout (Specificity, Correctness, HM per group)."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from verl_ext.core.categories import Category
from verl_ext.eval.results import ResultRow, dataset_order
from verl_ext.eval.scoring import DATASET_GROUPS, DEFINITIONS, GROUP_TITLES

SHORT = {"wrong": "W", "abstain": "A", "generic": "G", "less specific": "S⁻", "specific": "S",
         "more specific": "S⁺", "parse failure": "Parse fail"}


def _num(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.3f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def summary_table(rows: Sequence[ResultRow]) -> str:
    """Method × group: Specificity, Correctness, HM (the paper's aggregate table layout)."""
    groups = [g for g in DATASET_GROUPS if any(g in r.groups for r in rows)]
    header = ["Method"] + [f"{GROUP_TITLES[g]} {m}" for g in groups for m in ("Spec", "Corr", "HM")]
    body = []
    for r in rows:
        cells = [r.method]
        for g in groups:
            avg = r.groups.get(g, {})
            cells += [_num(avg.get("specificity")), _num(avg.get("correctness")), _num(avg.get("hm"))]
        body.append(cells)
    return _table(header, body)


def hm_per_dataset_table(rows: Sequence[ResultRow]) -> str:
    names = dataset_order(rows)
    body = [[r.method] + [_num(r.datasets.get(d, {}).get("hm")) for d in names] for r in rows]
    return _table(["Method"] + names, body)


def distribution_table(rows: Sequence[ResultRow]) -> str:
    """Per dataset and method: category shares (%), failures, and the three metrics."""
    labels = [c.label for c in Category] + ["parse failure"]
    header = ["Dataset", "Method", "Graded"] + [f"{SHORT[l]} %" for l in labels] + [
        "Judge err", "Spec", "Corr", "HM"]
    body = []
    for d in dataset_order(rows):
        for r in rows:
            s = r.datasets.get(d)
            if s is None:
                continue
            body.append([d, r.method, str(int(s["n_graded"]))] + [_pct(s[f"share/{l}"]) for l in labels] + [
                str(int(s["n_judge_errors"])), _num(s["specificity"]), _num(s["correctness"]), _num(s["hm"])])
    return _table(header, body)


def definitions_section() -> str:
    lines = ["## Metric definitions", "", f"Status: {DEFINITIONS['status']}.", ""]
    lines += [f"- **{k}**: {v}" for k, v in DEFINITIONS.items() if k != "status"]
    return "\n".join(lines)


def render_report(rows: Sequence[ResultRow], *, title: str, facts: Mapping[str, str],
                  warnings: Sequence[str] = (), plots: Sequence[str] = ()) -> str:
    parts = [f"# {title}", ""]
    if facts:
        parts += [f"- **{k}**: {v}" for k, v in facts.items()] + [""]
    for warning in warnings:
        parts += [f"> **Warning:** {warning}", ""]
    parts += ["## Summary (paper layout: group averages)", "", summary_table(rows), "",
              "## HM per dataset", "", hm_per_dataset_table(rows), "",
              "## Category distribution per dataset", "", distribution_table(rows), ""]
    if plots:
        parts += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    parts += [definitions_section(), ""]
    return "\n".join(parts)

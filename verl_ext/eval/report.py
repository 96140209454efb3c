"""The Markdown tables of a run's report and of ``compare``, in the paper's layout.

Protocol 1: the six judge categories, specificity, correctness and HM, per group and per
dataset. Protocol 2: TI, LI, SS and CS (x100), per group and per dataset.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

from verl_ext.core.categories import Category
from verl_ext.eval.results import OpenWorldRow, ResultRow, dataset_order
from verl_ext.core.datasets import DATASET_GROUPS, GROUP_TITLES
from verl_ext.eval.scoring import DEFINITIONS, OPEN_WORLD_DEFINITIONS

OPEN_WORLD_COLUMNS = (("ti", "TI"), ("li", "LI"), ("ss", "SS"), ("cs", "CS"))

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


def _groups_of(rows: Sequence[ResultRow | OpenWorldRow]) -> list[str]:
    return [g for g in DATASET_GROUPS if any(g in r.groups for r in rows)]


def protocol_one_table(rows: Sequence[ResultRow]) -> str:
    """Method x group: the six category shares and parse failures (%), Spec, Corr and HM (protocol 1)."""
    groups = _groups_of(rows)
    labels = [c.label for c in Category] + ["parse failure"]
    header = ["Method"] + [f"{GROUP_TITLES[g]} {m}" for g in groups
                           for m in [f"{SHORT[l]} %" for l in labels] + ["Spec", "Corr", "HM"]]
    body = []
    for r in rows:
        cells = [r.method]
        for g in groups:
            avg = r.groups.get(g, {})
            cells += [_pct(avg[f"share/{l}"]) if f"share/{l}" in avg else "–" for l in labels]
            cells += [_num(avg.get("specificity")), _num(avg.get("correctness")), _num(avg.get("hm"))]
        body.append(cells)
    return _table(header, body)


def _x100(value: Optional[float]) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _open_world_columns(rows: Sequence[OpenWorldRow]) -> list[tuple[str, str]]:
    """The protocol-2 metrics any of the rows computed, in the paper's order."""
    return [(m, t) for m, t in OPEN_WORLD_COLUMNS if any(m in s for r in rows for s in r.datasets.values())]


def open_world_table(rows: Sequence[OpenWorldRow]) -> str:
    """Method x group: TI, LI, SS, CS x100 (protocol 2, Conti et al.'s layout)."""
    groups, columns = _groups_of(rows), _open_world_columns(rows)
    header = ["Method"] + [f"{GROUP_TITLES[g]} {title}" for g in groups for _, title in columns]
    body = [[r.method] + [_x100(r.groups.get(g, {}).get(m)) for g in groups for m, _ in columns] for r in rows]
    return _table(header, body)


def open_world_dataset_table(rows: Sequence[OpenWorldRow]) -> str:
    """Per dataset and method: TI, LI, SS, CS x100 with the sample, parse-failure and LI-error counts."""
    columns = _open_world_columns(rows)
    header = ["Dataset", "Method", "Samples", "Parse fail", "LI err"] + [t for _, t in columns]
    body = []
    for d in dataset_order(rows):
        for r in rows:
            s = r.datasets.get(d)
            if s is not None:
                body.append([d, r.method, str(int(s["n_samples"])), str(int(s["n_parse_failures"])),
                             str(int(s["n_li_errors"]))] + [_x100(s.get(m)) for m, _ in columns])
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


def definitions_section(open_world: bool = False, protocol_one: bool = True) -> str:
    lines = ["## Metric definitions"]
    if protocol_one:
        lines += ["", f"Protocol 1 status: {DEFINITIONS['status']}.", ""]
        lines += [f"- **{k}**: {v}" for k, v in DEFINITIONS.items() if k != "status"]
    if open_world:
        lines += ["", f"Protocol 2 status: {OPEN_WORLD_DEFINITIONS['status']}.", ""]
        lines += [f"- **{k}**: {v}" for k, v in OPEN_WORLD_DEFINITIONS.items() if k != "status"]
    return "\n".join(lines)


def protocol_two_sections(rows: Sequence[OpenWorldRow]) -> list[str]:
    """Protocol 2's two tables and its warnings, as report lines (nothing when no run has protocol 2)."""
    if not rows:
        return []
    parts = ["## Protocol 2: open-world metrics (x100, group averages)", "", open_world_table(rows), "",
             "## Protocol 2 per dataset", "", open_world_dataset_table(rows), ""]
    for row in rows:
        parts += [f"> **Note ({row.method}):** {w}" for w in row.warnings] + ([""] if row.warnings else [])
    return parts


def render_report(rows: Sequence[ResultRow], *, title: str, facts: Mapping[str, str],
                  warnings: Sequence[str] = (), plots: Sequence[str] = (),
                  open_world: Sequence[OpenWorldRow] = ()) -> str:
    parts = [f"# {title}", ""]
    if facts:
        parts += [f"- **{k}**: {v}" for k, v in facts.items()] + [""]
    for warning in warnings:
        parts += [f"> **Warning:** {warning}", ""]
    if rows:
        parts += ["## Summary (paper layout: group averages)", "", summary_table(rows), "",
                  "## HM per dataset", "", hm_per_dataset_table(rows), "",
                  "## Category distribution per dataset", "", distribution_table(rows), ""]
    parts += protocol_two_sections(open_world)
    if plots:
        parts += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    parts += [definitions_section(bool(open_world), protocol_one=bool(rows)), ""]
    return "\n".join(parts)

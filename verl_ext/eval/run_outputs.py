"""A run's outputs: metrics.json, report.md and the plots (protocol 1 plots when it was computed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from verl_ext.eval.plots import plot_category_bars, plot_spec_vs_corr
from verl_ext.eval.report import render_report
from verl_ext.eval.results import open_world_row, rows_of


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (a crash leaves the old file, never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)


def _open_world_facts(owc: Mapping[str, Any]) -> dict[str, str]:
    """Which models produced the protocol-2 numbers, for the report's header."""
    facts = {}
    local = owc.get("local_stage", {})
    if "encoder" in local:
        check = local.get("encoder_check") or {}
        facts["SS/CS encoder"] = (f"{local['encoder']['path']} ({local['encoder']['dtype']}; verified against the "
                                  f"published all-MiniLM-L6-v2: {check.get('verified', 'not checked')})")
    if "spacy" in local:
        spacy = local["spacy"]
        facts["CS concepts"] = f"spaCy {spacy['spacy']}, pipeline {spacy['pipeline']} {spacy['version']}"
    if owc:
        facts["protocol 2 prediction"] = owc.get("prediction", "answer")
    return facts


def write_run_outputs(out: Path, metrics: dict) -> dict[str, Path]:
    """metrics.json, report.md and the two plots of one run."""
    rows = rows_of(metrics, metrics.get("method"))
    plots = {}
    if rows:  # protocol 1 was computed
        plots = {"categories": plot_category_bars(rows, out / "plots" / "categories.png"),
                 "spec_vs_corr": plot_spec_vs_corr(rows, out / "plots" / "spec_vs_corr.png")}
    run = metrics.get("run", {})
    facts: dict[str, str] = {}
    model = run.get("model")
    if isinstance(model, dict):
        adapter = f" + LoRA adapter {model['adapter_path']}" if model.get("adapter_path") else ""
        facts["model"] = f"{model['base_path']}{adapter} ({model['layout']})"
    for key in ("backend", "prompt_variant"):
        if key in run:
            facts[key] = str(run[key])
    if "sampling" in run:
        facts["sampling"] = ", ".join(f"{k}={v}" for k, v in run["sampling"].items())
    if "data" in run:
        facts["data"] = ", ".join(run["data"])
    facts["metrics"] = ", ".join(run.get("metrics", ["judge"]))
    for name, identity in (("judge", run.get("judge")), ("LI judge", run.get("open_world", {}).get("li_stage", {})
                                                             .get("judge"))):
        if identity:
            facts[name] = ", ".join(f"{k}={v}" for k, v in identity.items() if v is not None)
    facts.update(_open_world_facts(run.get("open_world", {})))
    warnings = []
    if not metrics.get("complete", True):
        warnings.append(f"{metrics['n_judge_errors']} samples have no verdict and {metrics.get('n_li_errors', 0)} no "
                        "LI score (judge errors); they are left out of those metrics. Re-run the same command to "
                        "retry them.")
    owc = open_world_row(metrics)
    report = render_report(rows, title=f"Evaluation: {metrics.get('method')}", facts=facts, warnings=warnings,
                           plots=[f"plots/{p.name}" for p in plots.values()], open_world=[owc] if owc else [])
    (out / "report.md").write_text(report, encoding="utf-8")
    write_json(out / "metrics.json", metrics)
    return {"metrics": out / "metrics.json", "report": out / "report.md", **plots}



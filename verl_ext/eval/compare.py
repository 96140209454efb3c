"""``python -m verl_ext.eval.compare RUN_DIR...``: runs side by side in the paper's layout, with plots.

Each RUN_DIR is the ``--out`` folder of an evaluation (its ``metrics.json`` is read). The
tables are printed as Markdown and written, with the two plots, to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from verl_ext.eval.plots import plot_category_bars, plot_spec_vs_corr
from verl_ext.eval.report import distribution_table, hm_per_dataset_table, summary_table
from verl_ext.eval.results import ResultRow, rows_of
from verl_ext.eval.scoring import METRICS_SCHEMA


class CompareError(ValueError):
    """A run folder that cannot be compared; the message names it."""


def load_run(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise CompareError(f"{run_dir}: no metrics.json (is this an evaluation --out folder?)")
    metrics = json.loads(path.read_text(encoding="utf-8"))
    if metrics.get("schema") != METRICS_SCHEMA:
        raise CompareError(f"{path}: field 'schema' is {metrics.get('schema')!r}, expected {METRICS_SCHEMA!r}")
    return metrics


def comparison_rows(run_dirs: Sequence[Path], best_of_n: bool = True) -> list[ResultRow]:
    """One row per run (and per run's Best-of-N view when present); duplicate names get a suffix."""
    rows: list[ResultRow] = []
    seen: dict[str, int] = {}
    for run_dir in run_dirs:
        metrics = load_run(run_dir)
        name = metrics.get("method") or Path(run_dir).name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        run_rows = rows_of(metrics, name)
        rows.extend(run_rows if best_of_n else run_rows[:1])
    return rows


def render_comparison(rows: Sequence[ResultRow]) -> str:
    return "\n".join([
        "## Summary (paper layout: group averages)", "", summary_table(rows), "",
        "## HM per dataset", "", hm_per_dataset_table(rows), "",
        "## Category distribution per dataset", "", distribution_table(rows), "",
        "Metric definitions: see any run's report.md (inferred, speciarl-method.md section 11).", "",
    ])


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.eval.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, default=Path("eval_compare"),
                        help="folder for comparison.md and the plots (default: ./eval_compare)")
    parser.add_argument("--no-best-of-n", action="store_true", help="leave out the Best-of-N rows")
    args = parser.parse_args(argv)
    try:
        rows = comparison_rows(args.runs, best_of_n=not args.no_best_of_n)
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = render_comparison(rows)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text(text, encoding="utf-8")
    plot_category_bars(rows, args.out / "categories.png")
    plot_spec_vs_corr(rows, args.out / "spec_vs_corr.png")
    print(f"wrote {args.out / 'comparison.md'}, {args.out / 'categories.png'} and {args.out / 'spec_vs_corr.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

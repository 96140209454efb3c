"""``python -m verl_ext.eval.compare RUN_DIR...``: runs side by side in the paper's layout, with plots.

Each RUN_DIR is the ``--out`` folder of an evaluation (its ``metrics.json`` is read); one row
per run (and per run's Best-of-N view where N > 1). ``--out`` receives ``comparison.md``:

* protocol 1 (group averages): the six category shares, specificity, correctness and HM for
  the in-domain, fine-grained and very fine-grained groups, then the per-dataset table;
* protocol 2 (group averages, x100): TI, LI, SS and CS for the same groups, then the
  per-dataset table (runs without protocol 2 are left out of it);
* where each figure comes from: what is confirmed and what is inferred;

and the plots: ``figure1.png`` (the paper's Figure 1 layout: one point per method, the
group's specificity against its correctness, arrows from the base model), ``categories.png``
and ``spec_vs_corr.png`` (per dataset).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional, Sequence

from verl_ext.eval.plots import plot_category_bars, plot_method_scatter, plot_spec_vs_corr
from verl_ext.eval.report import distribution_table, protocol_one_table, protocol_two_sections
from verl_ext.eval.results import OpenWorldRow, ResultRow, open_world_row, rows_of
from verl_ext.core.datasets import DATASET_GROUPS, GROUP_TITLES
from verl_ext.eval.scoring import DEFINITIONS, METRICS_SCHEMA, OPEN_WORLD_DEFINITIONS

#: Where the figures of the comparison come from (said in every comparison.md).
PROVENANCE = [
    ("Judge categories and their order", "confirmed (the published judge labels)"),
    ("Correctness, specificity", "inferred: " + DEFINITIONS["correctness"] + "; " + DEFINITIONS["specificity"]),
    ("HM", "confirmed formula (2·Spec·Corr / (Spec + Corr)); averaged per dataset within a group (inferred)"),
    ("Group membership", "fine-grained = flowers102, food101, oxford_pets; very fine-grained = fgvc_aircraft, "
                         "stanford_cars; in-domain = cub200 (from a summary of the paper, not re-checked against it)"),
    ("Group averages", "unweighted mean of the per-dataset values (inferred; Food-101's 30,300 images would dominate "
                       "a pooled mean)"),
    ("TI, LI, SS, CS", "per-sample definitions confirmed in the public lmms-owc code; " +
                       OPEN_WORLD_DEFINITIONS["prediction"] + " and parse failures scoring 0 are ours"),
    ("x100 scale of protocol 2", "inferred from the paper's TI = 62.7"),
    ("Figure 1 group", "the group whose averages the figure plots is inferred (default: fine-grained)"),
]


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


def comparison_rows(run_dirs: Sequence[Path], best_of_n: bool = True) -> tuple[list[ResultRow], list[OpenWorldRow]]:
    """Protocol-1 rows (one per run and per run's Best-of-N view) and protocol-2 rows; duplicate names get a suffix."""
    rows: list[ResultRow] = []
    open_world: list[OpenWorldRow] = []
    seen: dict[str, int] = {}
    for run_dir in run_dirs:
        metrics = load_run(run_dir)
        name = metrics.get("method") or Path(run_dir).name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name = f"{name} ({seen[name]})"
        run_rows = rows_of(metrics, name)
        rows.extend(run_rows if best_of_n else run_rows[:1])
        owc = open_world_row(metrics, name)
        if owc is not None:
            open_world.append(owc)
    return rows, open_world


def figure_group(rows: Sequence[ResultRow], requested: Optional[str]) -> Optional[str]:
    """The group Figure 1 plots: the one asked, else fine-grained, else the first present."""
    present = [g for g in DATASET_GROUPS if any(g in r.groups for r in rows)]
    if requested:
        if requested not in DATASET_GROUPS:
            raise CompareError(f"--figure-group {requested!r}: choose one of {list(DATASET_GROUPS)}")
        return requested
    return "fine_grained" if "fine_grained" in present else (present[0] if present else None)


def render_comparison(rows: Sequence[ResultRow], open_world: Sequence[OpenWorldRow] = (),
                      figure: Optional[str] = None) -> str:
    parts = ["# Comparison: " + ", ".join(dict.fromkeys([r.method for r in rows] + [r.method for r in open_world])), ""]
    if rows:
        parts += ["## Protocol 1: judge categories, specificity, correctness, HM (group averages)", "",
                  protocol_one_table(rows), "", "## Protocol 1 per dataset", "", distribution_table(rows), ""]
    parts += protocol_two_sections(open_world)
    if figure:
        parts += [f"## Figure 1 ({GROUP_TITLES[figure]} averages)", "", "![figure1](figure1.png)", ""]
    parts += ["## Where the figures come from", ""] + [f"- **{k}**: {v}" for k, v in PROVENANCE] + [""]
    return "\n".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.eval.compare", description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, default=Path("eval_compare"),
                        help="folder for comparison.md and the plots (default: ./eval_compare)")
    parser.add_argument("--no-best-of-n", action="store_true", help="leave out the Best-of-N rows")
    parser.add_argument("--base", help="the method the Figure 1 arrows start from (default: the first run)")
    parser.add_argument("--figure-group", help=f"group Figure 1 plots: one of {list(DATASET_GROUPS)} "
                                               "(default: fine_grained when present)")
    args = parser.parse_args(argv)
    try:
        rows, open_world = comparison_rows(args.runs, best_of_n=not args.no_best_of_n)
        group = figure_group(rows, args.figure_group)
    except CompareError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    text = render_comparison(rows, open_world, group)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "comparison.md").write_text(text, encoding="utf-8")
    written = [args.out / "comparison.md"]
    if rows:
        written += [plot_category_bars(rows, args.out / "categories.png"),
                    plot_spec_vs_corr(rows, args.out / "spec_vs_corr.png")]
    if group:
        written.append(plot_method_scatter(rows, args.out / "figure1.png", group=group, base=args.base,
                                           title=f"Specificity vs correctness ({GROUP_TITLES[group]} averages)"))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())

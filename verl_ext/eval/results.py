"""One row of results per (method, view), shared by the report, the plots and ``compare``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from verl_ext.core.datasets import DATASET_GROUPS
from verl_ext.eval.scoring import view_title, views


@dataclass(frozen=True)
class ResultRow:
    """A method's metrics: per dataset (GradeTally summaries) and per group (averages)."""

    method: str
    datasets: Mapping[str, Mapping]
    groups: Mapping[str, Mapping]


def rows_of(metrics: Mapping, method: str | None = None) -> list[ResultRow]:
    """The rows of one run: the per-sample view, then Best-of-N when N > 1."""
    rows = []
    for view in views(metrics):
        datasets = {name: entry[view] for name, entry in metrics["datasets"].items() if view in entry}
        rows.append(ResultRow(view_title(metrics, view, method), datasets, metrics["groups"][view]))
    return rows


@dataclass(frozen=True)
class OpenWorldRow:
    """A method's protocol-2 metrics (per dataset and per group) and what makes them differ from the reference."""

    method: str
    datasets: Mapping[str, Mapping]
    groups: Mapping[str, Mapping]
    warnings: Sequence[str] = field(default_factory=tuple)


def open_world_row(metrics: Mapping, method: Optional[str] = None) -> Optional[OpenWorldRow]:
    """The protocol-2 row of one run, or None when the run did not compute protocol 2."""
    if "open_world" not in metrics.get("groups", {}):
        return None
    datasets = {name: entry["open_world"] for name, entry in metrics["datasets"].items() if "open_world" in entry}
    warnings = metrics.get("run", {}).get("open_world", {}).get("warnings", [])
    return OpenWorldRow(method or metrics.get("method", "run"), datasets, metrics["groups"]["open_world"],
                        tuple(warnings))


def dataset_order(rows: Sequence[ResultRow | OpenWorldRow]) -> list[str]:
    """Known datasets in the paper's group order, then any others alphabetically."""
    present = {d for r in rows for d in r.datasets}
    known = [d for members in DATASET_GROUPS.values() for d in members if d in present]
    return known + sorted(present - set(known))

"""PNG plots: stacked category bars per dataset and method; specificity vs correctness with HM iso-curves."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from verl_ext.core.categories import Category  # noqa: E402
from verl_ext.eval.results import ResultRow, dataset_order  # noqa: E402

#: Worst to best, then parse failures; colours run red -> grey -> greens, parse failure black.
SEGMENTS = [c.label for c in Category] + ["parse failure"]
COLOURS = {"wrong": "#d62728", "abstain": "#9e9e9e", "generic": "#fdd49e", "less specific": "#c2e699",
           "specific": "#31a354", "more specific": "#006837", "parse failure": "#252525"}
MARKERS = "os^Dv<>pPX*h"


def plot_category_bars(rows: Sequence[ResultRow], path: Path) -> Path:
    """One horizontal stacked bar per (dataset, method): the category shares, summing to 1."""
    labels, shares = [], []
    for dataset in dataset_order(rows):
        for row in rows:
            summary = row.datasets.get(dataset)
            if summary is not None:
                labels.append(f"{dataset} · {row.method}")
                shares.append([summary[f"share/{s}"] for s in SEGMENTS])
    data = np.array(shares) if shares else np.zeros((0, len(SEGMENTS)))
    fig, ax = plt.subplots(figsize=(9, 1.6 + 0.38 * max(1, len(labels))))
    left = np.zeros(len(labels))
    y = np.arange(len(labels))
    for k, segment in enumerate(SEGMENTS):
        ax.barh(y, data[:, k], left=left, color=COLOURS[segment], label=segment, edgecolor="white", linewidth=0.5)
        left += data[:, k]
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of graded samples")
    ax.set_title("Judge categories per dataset and method")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def hm_iso_curve(hm: float, correctness: np.ndarray) -> np.ndarray:
    """Specificity on the HM = ``hm`` curve at the given correctness values (NaN where unreachable)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        spec = hm * correctness / (2 * correctness - hm)
    return np.where((2 * correctness > hm) & (spec >= 0) & (spec <= 1), spec, np.nan)


def plot_spec_vs_corr(rows: Sequence[ResultRow], path: Path) -> Path:
    """Specificity against correctness per dataset (marker) and method (colour), with HM iso-curves."""
    fig, ax = plt.subplots(figsize=(7, 6))
    grid = np.linspace(0.001, 1, 400)
    for hm in (0.2, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        curve = hm_iso_curve(hm, grid)
        ax.plot(grid, curve, color="#bbbbbb", lw=0.8, zorder=0)
        # Label each curve where it leaves the top edge (specificity 1), away from the data.
        ax.annotate(f"{hm:.1f}", (hm / (2 - hm), 1.0), fontsize=7, color="#888888",
                    xytext=(0, 3), textcoords="offset points", ha="center", va="bottom")
    datasets = dataset_order(rows)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, row in enumerate(rows):
        for j, dataset in enumerate(datasets):
            s = row.datasets.get(dataset)
            if s is None:
                continue
            ax.scatter(s["correctness"], s["specificity"], color=colours[i % len(colours)],
                       marker=MARKERS[j % len(MARKERS)], s=60, edgecolor="black", linewidth=0.4, zorder=3,
                       alpha=0.8, clip_on=False)
    for i, row in enumerate(rows):
        ax.scatter([], [], color=colours[i % len(colours)], marker="s", label=row.method)
    for j, dataset in enumerate(datasets):
        ax.scatter([], [], color="white", edgecolor="black", marker=MARKERS[j % len(MARKERS)], label=dataset)
    ax.set_xlim(0, 1.0)
    ax.set_ylim(0, 1.0)
    ax.set_xlabel("correctness")
    ax.set_ylabel("specificity (among correct)")
    ax.set_title("Specificity vs correctness (grey: HM iso-curves, labelled at the top)", pad=14)
    ax.grid(alpha=0.2)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_method_scatter(rows: Sequence[ResultRow], path: Path, *, group: str, base: Optional[str] = None,
                        title: str = "") -> Path:
    """The paper's Figure 1 layout: one point per method (the group's average specificity against its
    correctness), an arrow from the base model to every other method, and HM iso-curves."""
    points = [(r.method, r.groups[group]["correctness"], r.groups[group]["specificity"]) for r in rows
              if group in r.groups]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    lo = max(0.0, min(xs + ys, default=0.0) - 0.08)
    grid = np.linspace(max(lo, 0.001), 1, 400)
    for hm in np.arange(0.1, 1.0, 0.05):
        ax.plot(grid, hm_iso_curve(hm, grid), color="#dddddd", lw=0.7, zorder=0)
    base_point = next((p for p in points if p[0] == base), points[0] if points else None)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, x, y) in enumerate(points):
        if base_point is not None and name != base_point[0]:
            ax.annotate("", xy=(x, y), xytext=base_point[1:], zorder=2,
                        arrowprops=dict(arrowstyle="->", color="#777777", lw=1.0, shrinkA=6, shrinkB=6))
        ax.scatter([x], [y], s=70, color=colours[i % len(colours)], edgecolor="black", linewidth=0.5, zorder=3)
        ax.annotate(name, (x, y), xytext=(6, 5), textcoords="offset points", fontsize=8)
    ax.set_xlim(lo, 1.0)
    ax.set_ylim(lo, 1.0)
    ax.set_xlabel("correctness")
    ax.set_ylabel("specificity (among correct)")
    ax.set_title((title or "Specificity vs correctness, one point per method") + "\ngrey: HM iso-curves, every 0.05",
                 fontsize=10)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path

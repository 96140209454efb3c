"""Training curves: correctness, specificity and HM against the step, training and validation.

The paper's story is a trade-off that moves during training: specificity rises while
correctness must not fall. This reads a run's own outputs and draws both into one PNG:

* the TensorBoard event files verl wrote (``trainer.logger`` with ``tensorboard``; the recipes
  put them in ``<run>/tensorboard``), where the ``speciarl`` trainer mode logs
  ``speciarl/train/*`` every step and ``speciarl/val/*`` every validation pass;
* or, without them, ``speciarl_reward_metrics.jsonl`` (``reward.speciarl.metrics_path``).

    python -m verl_ext.eval.plots_training RUN_DIR [--out FILE.png] [--source tensorboard|jsonl]

Validation curves are drawn per data source (``speciarl/val/<source>/hm``) when the
validation set has several, next to the overall figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

#: The three figures the curves show, as the reward names them (``verl_ext/reward/step_metrics.py``).
FIGURES = (("correct", "correctness"), ("specific", "specificity"), ("hm", "HM"))
PREFIX = "speciarl"

#: ``{tag: {step: value}}``
Series = dict[str, dict[int, float]]


class TrainingCurvesError(ValueError):
    """The run folder holds no SpeciaRL figures to plot; the message says what was looked for."""


def read_tensorboard(run_dir: Path) -> Series:
    """Every ``speciarl/*`` scalar in the event files under ``run_dir``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: Series = defaultdict(dict)
    for events in sorted(Path(run_dir).rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags().get("scalars", []):
            if tag.startswith(f"{PREFIX}/"):
                for event in accumulator.Scalars(tag):
                    series[tag][int(event.step)] = float(event.value)
    return dict(series)


def read_jsonl(path: Path) -> Series:
    """The same series from the reward's JSONL records (one per closed step and role)."""
    series: Series = defaultdict(dict)
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            for key, value in record.items():
                if key.startswith(f"{PREFIX}/") and isinstance(value, (int, float)):
                    series[key][int(record["step"])] = float(value)
    return dict(series)


def load_series(run_dir: Path, source: Optional[str] = None) -> tuple[Series, str]:
    """The run's figures and where they came from (TensorBoard first, then the JSONL file)."""
    run_dir = Path(run_dir)
    jsonl = run_dir / "speciarl_reward_metrics.jsonl"
    if source in (None, "tensorboard"):
        series = read_tensorboard(run_dir)
        if series:
            return series, "tensorboard"
        if source == "tensorboard":
            raise TrainingCurvesError(f"no speciarl/* scalars in TensorBoard event files under {run_dir}")
    if source in (None, "jsonl") and jsonl.is_file():
        series = read_jsonl(jsonl)
        if series:
            return series, "jsonl"
    raise TrainingCurvesError(
        f"{run_dir} has neither TensorBoard events with speciarl/* scalars nor {jsonl.name}; "
        "train with trainer.v1.trainer_mode=speciarl and trainer.logger including tensorboard, "
        "or set +reward.speciarl.metrics_path"
    )


def validation_sources(series: Series) -> list[str]:
    """Data sources with their own validation figures (``speciarl/val/<source>/hm``)."""
    sources = set()
    for tag in series:
        parts = tag.split("/")
        if len(parts) == 4 and parts[1] == "val" and parts[3] == "hm" and parts[2] != "group":
            sources.add(parts[2])
    return sorted(sources)


def plot_training_curves(series: Series, out: Path, title: str = "") -> Path:
    """Three panels (correctness, specificity, HM); training as lines, validation as markers."""
    fig, axes = plt.subplots(1, len(FIGURES), figsize=(13, 3.8), sharex=True)
    sources = validation_sources(series)
    for ax, (key, label) in zip(axes, FIGURES):
        train = series.get(f"{PREFIX}/train/{key}", {})
        if train:
            steps = sorted(train)
            ax.plot(steps, [train[s] for s in steps], color="#1f77b4", label="train")
        val = series.get(f"{PREFIX}/val/{key}", {})
        if val:
            steps = sorted(val)
            ax.plot(steps, [val[s] for s in steps], color="#d62728", marker="o", label="val")
        if len(sources) > 1:
            for source in sources:
                per_source = series.get(f"{PREFIX}/val/{source}/{key}", {})
                steps = sorted(per_source)
                ax.plot(steps, [per_source[s] for s in steps], marker=".", linestyle=":", linewidth=1, label=f"val {source}")
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.set_ylim(-0.02, 1.02)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.eval.plots_training", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a training run's output folder (trainer.default_local_dir)")
    parser.add_argument("--out", type=Path, help="PNG to write (default: RUN_DIR/plots/training_curves.png)")
    parser.add_argument("--source", choices=("tensorboard", "jsonl"), help="where to read (default: TensorBoard, else JSONL)")
    args = parser.parse_args(argv)
    try:
        series, source = load_series(args.run_dir, args.source)
    except TrainingCurvesError as error:
        print(f"plots_training: {error}", file=sys.stderr)
        return 2
    out = plot_training_curves(series, args.out or args.run_dir / "plots" / "training_curves.png", title=str(args.run_dir.resolve()))
    train_steps = sorted(series.get(f"{PREFIX}/train/hm", {}))
    val_steps = sorted(series.get(f"{PREFIX}/val/hm", {}))
    print(f"wrote {out} from {source}: training steps {train_steps}, validation at {val_steps}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

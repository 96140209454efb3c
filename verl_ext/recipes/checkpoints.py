"""A training run's newest checkpoint, merged into the folder the evaluation loads.

verl 0.9's trainers write ``<run>/global_step_N/`` and name the newest N in
``<run>/latest_checkpointed_iteration.txt``. The RL trainer (``main_ppo``) keeps the policy in
``global_step_N/actor/``, the SFT trainer (``sft_trainer``) in ``global_step_N/`` itself; both
as FSDP shards (``model_world_size_*_rank_*.pt``). ``python -m verl.model_merger merge --backend
fsdp`` turns them into a Hugging Face folder, for a LoRA run the base weights plus
``lora_adapter/``, which ``python -m verl_ext.eval --model`` loads.

CLI (exit 0 = done, 2 = a problem the message explains)::

    python -m verl_ext.recipes.checkpoints latest RUN_DIR               # the newest shard folder
    python -m verl_ext.recipes.checkpoints merge RUN_DIR --out MERGED   # merge it (skipped when MERGED is current)
    python -m verl_ext.recipes.checkpoints merge RUN_DIR --out MERGED --dry-run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

from verl_ext.recipes.errors import RecipeError

TRACKER = "latest_checkpointed_iteration.txt"
SHARDS = "model_world_size_*_rank_*.pt"
#: Written into MERGED after a successful merge: the shard folder it was made from.
MARKER = ".merged_from"


def latest_checkpoint(run_dir: Path) -> Path:
    """The folder holding the newest step's FSDP shards (``actor/`` for an RL run)."""
    tracker = Path(run_dir) / TRACKER
    if not tracker.is_file():
        raise RecipeError(f"{run_dir}: no {TRACKER}; has the training run saved a checkpoint?")
    step = tracker.read_text(encoding="utf-8").strip()
    if not step.isdigit():
        raise RecipeError(f"{tracker}: expected a step number, found {step!r}")
    folder = Path(run_dir) / f"global_step_{step}"
    for candidate in (folder / "actor", folder):
        if any(candidate.glob(SHARDS)):
            return candidate
    raise RecipeError(f"{folder}: no FSDP shards ({SHARDS}) in it or in its actor/ folder")


def merge_command(shards: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
            "--local_dir", str(shards), "--target_dir", str(out)]


def merge_latest(run_dir: Path, out: Path, *, dry_run: bool = False, echo=print) -> Path:
    """Merge the newest checkpoint of ``run_dir`` into ``out`` unless ``out`` already holds it."""
    out = Path(out)
    if dry_run and not (Path(run_dir) / TRACKER).is_file():
        echo(f"[dry run] after training: {' '.join(merge_command(Path(run_dir) / 'global_step_<last>', out))}")
        return out
    shards = latest_checkpoint(run_dir)
    marker = out / MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == str(shards.resolve()):
        echo(f"{out} already holds {shards}; not merging again")
        return out
    command = merge_command(shards, out)
    if dry_run:
        echo(f"[dry run] {' '.join(command)}")
        return out
    result = subprocess.run(command)
    if result.returncode != 0:
        raise RecipeError(f"verl's model merger failed on {shards} (exit {result.returncode}; see above)")
    marker.write_text(f"{shards.resolve()}\n", encoding="utf-8")
    echo(f"merged {shards} into {out}")
    return out


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.recipes.checkpoints", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    latest = sub.add_parser("latest", help="print the folder with the newest step's FSDP shards")
    latest.add_argument("run_dir", type=Path)
    merge = sub.add_parser("merge", help="merge the newest checkpoint into a folder the evaluation loads")
    merge.add_argument("run_dir", type=Path)
    merge.add_argument("--out", type=Path, required=True)
    merge.add_argument("--dry-run", action="store_true", help="print the merger's command instead of running it")
    args = parser.parse_args(argv)
    try:
        if args.command == "latest":
            print(latest_checkpoint(args.run_dir))
        else:
            merge_latest(args.run_dir, args.out, dry_run=args.dry_run)
    except RecipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

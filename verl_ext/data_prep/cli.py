"""The command line every ``data_prep/<name>.py`` script shares, and its end summary.

``python data_prep/<name>.py`` with no arguments does the paper's job for that dataset: it
reads (or downloads) the raw data under ``<DATA_DIR>/raw/<data_source>`` and writes the files
the paper's run reads to ``<DATA_DIR>/<data_source>/``, where ``DATA_DIR`` is the environment
variable of that name (the one the recipes use) or ``~/data/speciarl``. Every default can be
overridden: ``--root DIR --out DIR [--no-download] [--splits ...] [--subset N --seed S]
[--max-pixels P] [--skip-bad] [--split-file F | --official-split]``.

Output: ``<out>/<data_source>/<split>.parquet`` (or ``<split>_sub<N>_seed<S>.parquet``), a
``.summary.json`` beside each file and, with ``--skip-bad``, a ``.skipped.json`` report.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

from .convert import SplitResult, convert_split
from .coop import COOP_SPLITS, read_coop_splits
from .download import file_digest
from .errors import DataPrepError
from .layout import DatasetLayout, check_classes_nonempty
from .locate import locate_dataset
from .spec import DatasetSpec, PaperOutput
from .subset import select_subset

OFFICIAL = "official"
COOP = "coop"
#: The environment variable the recipes read for their data folder, and its default.
DATA_DIR_VARIABLE = "DATA_DIR"
DEFAULT_DATA_DIR = Path("~/data/speciarl")
DEFAULT_SEED = 42


def data_dir() -> Path:
    """``$DATA_DIR``, else ``~/data/speciarl`` (expanded)."""
    return Path(os.environ.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR).expanduser()


def _describe_outputs(outputs: Sequence[PaperOutput], seed: object = DEFAULT_SEED) -> str:
    return ", ".join(f"{o.split} ({o.subset} images, seed {seed})" if o.subset else f"{o.split} (all images)" for o in outputs)


def build_parser(spec: DatasetSpec) -> argparse.ArgumentParser:
    """The shared argument parser; its help shows every default as it resolves here."""
    out = data_dir()
    parser = argparse.ArgumentParser(
        prog=f"data_prep/{spec.data_source}",
        description=f"Convert {spec.title} into verl parquet (<out>/{spec.data_source}/<split>.parquet). "
        f"Class names: {spec.class_name_source}. Without --splits and --subset it writes what the paper "
        f"uses: {_describe_outputs(spec.paper_outputs)}.",
    )
    parser.add_argument("--root", type=Path, metavar="DIR", help=f"folder with the raw data (official layout or its archives); "
                        f"default: <out>/raw/{spec.data_source}, here {out / 'raw' / spec.data_source}")
    parser.add_argument("--out", type=Path, default=out, metavar="DIR",
                        help=f"output folder; default: ${DATA_DIR_VARIABLE}, else {DEFAULT_DATA_DIR}; here {out}")
    parser.add_argument("--download", action=argparse.BooleanOptionalAction, default=True,
                        help="fetch the official files into --root when the dataset is not there (default: yes)")
    official = ", ".join(spec.official_splits)
    splits_help = f"splits to write (official: {official}"
    splits_help += "; CoOp: train, val, test)" if spec.coop_file_name else ")"
    parser.add_argument("--splits", nargs="+", metavar="SPLIT", help=f"{splits_help}; default: {', '.join(o.split for o in spec.paper_outputs)}")
    parser.add_argument("--subset", type=int, metavar="N", help="write a deterministic subset of N images per split; default: "
                        + ("; ".join(f"{o.split}: {o.subset or 'all'}" for o in spec.paper_outputs)))
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, metavar="S", help=f"seed of --subset (default: {DEFAULT_SEED})")
    parser.add_argument("--max-pixels", type=int, metavar="P", help="downscale (re-encode as JPEG) images above P pixels; default: never")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images and list them in a report")
    if spec.coop_file_name:
        choice = parser.add_mutually_exclusive_group()
        choice.add_argument("--split-file", type=Path, metavar="FILE", help=f"CoOp split file ({spec.coop_file_name}); default: "
                            f"{spec.coop_file_name} in --root or the dataset folder if present (where CoOp keeps it), "
                            "else the official split")
        choice.add_argument("--official-split", action="store_true", help="use the official split even if a CoOp file is present")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _split_file(spec: DatasetSpec, args: argparse.Namespace, root: Path, folder: Path) -> Optional[Path]:
    """The CoOp file in use: given, found where CoOp keeps it, or none."""
    if not spec.coop_file_name or getattr(args, "official_split", False):
        return None
    if args.split_file is not None:
        return args.split_file
    for candidate in (root / spec.coop_file_name, folder / spec.coop_file_name):
        if candidate.is_file():
            return candidate
    return None


def _choose_splits(spec: DatasetSpec, layout: DatasetLayout, split_file: Optional[Path]):
    """The split definition in use, its description, and its splits."""
    if split_file is None:
        return OFFICIAL, {"definition": OFFICIAL}, layout.splits
    splits = read_coop_splits(split_file, layout, spec.coop_image_dir, spec.coop_numbering)
    description = {"definition": COOP, "split_file": str(split_file), "split_file_sha256": file_digest(split_file)}
    return COOP, description, splits


def planned_outputs(spec: DatasetSpec, args: argparse.Namespace) -> list[PaperOutput]:
    """The paper's outputs when neither ``--splits`` nor ``--subset`` is given, else what they ask for."""
    if args.splits is None and args.subset is None:
        return list(spec.paper_outputs)
    splits = args.splits or list(dict.fromkeys(output.split for output in spec.paper_outputs))
    return [PaperOutput(split, args.subset) for split in splits]


def output_name(split: str, subset: Optional[int], seed: int) -> str:
    """``<split>.parquet`` or ``<split>_sub<N>_seed<S>.parquet`` (the project-wide naming)."""
    return f"{split}_sub{subset}_seed{seed}.parquet" if subset else f"{split}.parquet"


def _write_sidecars(result: SplitResult, definition: dict, skip_bad: bool) -> None:
    output = Path(result.output)
    stem = output.with_suffix("")
    summary = {**asdict(result), "skipped_count": result.skipped_count, "split_definition_detail": definition}
    summary.pop("skipped")
    Path(f"{stem}.summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if skip_bad:
        report = {"output": result.output, "skipped_count": result.skipped_count, "skipped": result.skipped}
        Path(f"{stem}.skipped.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


def format_summary(results: Sequence[SplitResult], seconds: float) -> str:
    """The end-of-run table: rows, classes, bytes and time per written file, then the full paths."""
    header = f"{'file':<34} {'split def':<9} {'rows':>7} {'classes':>7} {'skipped':>7} {'downscaled':>10} " \
             f"{'source MB':>10} {'file MB':>8} {'ratio':>6} {'seconds':>8}"
    lines = [header, "-" * len(header)]
    for r in results:
        ratio = r.file_bytes / r.source_bytes if r.source_bytes else float("nan")
        name = f"{r.data_source}/{Path(r.output).name}"
        lines.append(
            f"{name:<34} {r.split_definition:<9} {r.rows:>7} {r.classes:>7} {r.skipped_count:>7} {r.downscaled:>10} "
            f"{r.source_bytes / 1e6:>10.1f} {r.file_bytes / 1e6:>8.1f} {ratio:>6.3f} {r.seconds:>8.1f}"
        )
    lines.append(f"total {sum(r.rows for r in results)} rows in {seconds:.1f} s")
    lines.extend(f"wrote {r.output}" for r in results)
    return "\n".join(lines)


def run(spec: DatasetSpec, args: argparse.Namespace) -> list[SplitResult]:
    """Convert the requested splits; raises :class:`DataPrepError` on bad input."""
    started = time.perf_counter()
    if args.max_pixels is not None and args.max_pixels <= 0:
        raise DataPrepError(f"--max-pixels must be positive, got {args.max_pixels}")
    root = (args.root or args.out / "raw" / spec.data_source).expanduser()
    folder = locate_dataset(spec, root, args.download)
    layout = spec.read_layout(folder)
    split_file = _split_file(spec, args, root if root.is_dir() else root.parent, folder)
    definition_name, definition, splits = _choose_splits(spec, layout, split_file)
    available = COOP_SPLITS if definition_name == COOP else spec.official_splits
    outputs = planned_outputs(spec, args)
    unknown = [output.split for output in outputs if output.split not in available]
    if unknown:
        raise DataPrepError(f"unknown split(s) {unknown} for the {definition_name} split; choose from {list(available)}")
    print(f"{spec.title} ({layout.source_description}, {folder}): {definition_name} split definition"
          + (f" from {split_file}" if split_file else "") + f", writing {_describe_outputs(outputs, args.seed)}", file=sys.stderr)
    if split_file is None and spec.paper_needs_coop:
        print(f"note: the paper evaluates {spec.title} on the CoOp test split, not the official one; put {spec.coop_file_name} (linked from "
              "CoOp's DATASETS.md) in --root or pass --split-file to use it", file=sys.stderr)
    results = []
    for planned in outputs:
        full = splits[planned.split]
        check_classes_nonempty(full, layout.class_names, f"{spec.title} {definition_name} split {planned.split!r}")
        positions = list(range(len(full)))
        if planned.subset is not None and planned.subset > len(full):
            raise DataPrepError(f"{spec.title} {definition_name} split {planned.split!r}: a subset of {planned.subset} is "
                                f"larger than the split ({len(full)} images); is {folder} the complete dataset? "
                                "Choose another size with --subset")
        if planned.subset is not None:
            positions = select_subset(full, [record.rel_path for record in full], planned.subset, args.seed)
        output = args.out.expanduser() / spec.data_source / output_name(planned.split, planned.subset, args.seed)
        result = convert_split(
            images=layout.images,
            records=[(position, full[position]) for position in positions],
            class_names=layout.class_names,
            data_source=spec.data_source,
            split=planned.split,
            split_definition=definition_name,
            output=output,
            skip_bad=args.skip_bad,
            max_pixels=args.max_pixels,
            progress=not args.no_progress,
        )
        if planned.subset is not None:
            result.subset = {"size": planned.subset, "seed": args.seed, "of": len(full), "algorithm": "sha256-rank"}
        _write_sidecars(result, definition, args.skip_bad)
        if result.rows == 0:
            raise DataPrepError(f"{output}: every image of split {planned.split!r} was skipped as bad; nothing usable written")
        results.append(result)
    print(format_summary(results, time.perf_counter() - started))
    return results


def main(spec: DatasetSpec, argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of a dataset script; returns the process exit status."""
    args = build_parser(spec).parse_args(argv)
    try:
        run(spec, args)
    except DataPrepError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

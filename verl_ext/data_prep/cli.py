"""The command line every ``data_prep/<name>.py`` script shares, and its end summary.

``python data_prep/<name>.py --root DIR --out DIR [--download] [--splits ...]
[--subset N --seed S] [--max-pixels P] [--skip-bad] [--split-file split_zhou_<Name>.json]``

Output: ``<out>/<data_source>/<split>.parquet`` (or ``<split>_sub<N>_seed<S>.parquet``), a
``.summary.json`` beside each file and, with ``--skip-bad``, a ``.skipped.json`` report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

from .archive import is_archive, safe_extract
from .convert import SplitResult, convert_split
from .coop import COOP_SPLITS, read_coop_splits
from .download import download, verify_checksum
from .errors import DataPrepError, LayoutError
from .layout import DatasetLayout, check_classes_nonempty
from .spec import DatasetSpec
from .subset import select_subset

OFFICIAL = "official"
COOP = "coop"


def build_parser(spec: DatasetSpec) -> argparse.ArgumentParser:
    """The shared argument parser, with the dataset's split names in the help."""
    parser = argparse.ArgumentParser(
        prog=f"data_prep/{spec.data_source}",
        description=f"Convert {spec.title} into verl parquet (<out>/{spec.data_source}/<split>.parquet). "
        f"Class names: {spec.class_name_source}.",
    )
    parser.add_argument("--root", required=True, type=Path, help="folder with the official layout or its archives")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--download", action="store_true", help="fetch the official files into --root first")
    official = ", ".join(spec.official_splits)
    parser.add_argument(
        "--splits", nargs="+", help=f"splits to write (official: {official}; CoOp: train, val, test); default all"
    )
    parser.add_argument("--subset", type=int, help="write a deterministic subset of N images per split")
    parser.add_argument("--seed", type=int, default=42, help="seed of --subset (default 42)")
    parser.add_argument("--max-pixels", type=int, help="downscale (re-encode as JPEG) images above P pixels")
    parser.add_argument("--skip-bad", action="store_true", help="skip unreadable images and list them in a report")
    if spec.coop_file_name:
        parser.add_argument(
            "--split-file", type=Path, help=f"CoOp split file ({spec.coop_file_name}); default: the official split"
        )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def _has_markers(folder: Path, spec: DatasetSpec) -> bool:
    return all((folder / marker).exists() for marker in spec.marker_paths)


def _find_folder(root: Path, spec: DatasetSpec) -> Optional[Path]:
    for name in spec.folder_names:
        candidate = root / name if name else root
        if _has_markers(candidate, spec):
            return candidate
    return None


def locate_dataset(spec: DatasetSpec, root: Path, allow_download: bool) -> Path:
    """The extracted dataset folder: found, extracted from archives in ``root``, or downloaded."""
    root = root.expanduser()
    if root.is_file():  # --root names an archive itself
        root = root.parent
    found = _find_folder(root, spec)
    if found is not None:
        return found
    if allow_download:
        if spec.download_note:
            print(f"note: {spec.download_note}", file=sys.stderr)
        for remote in spec.remote_files:
            download(remote, root)
    archives = [remote for remote in spec.remote_files if is_archive(Path(remote.filename))]
    present = [remote for remote in spec.remote_files if (root / remote.filename).exists()]
    for remote in present:
        verify_checksum(root / remote.filename, remote.checksum)
        if remote in archives:
            print(f"extracting {root / remote.filename} ...", file=sys.stderr)
            safe_extract(root / remote.filename, root)
    found = _find_folder(root, spec)
    if found is not None:
        return found
    expected = " or ".join(str(root / name / spec.marker_paths[0]) if name else str(root / spec.marker_paths[0]) for name in spec.folder_names)
    files = ", ".join(remote.filename for remote in spec.remote_files)
    hint = f" ({spec.download_note})" if spec.download_note else ""
    raise LayoutError(
        f"{spec.title} not found under {root}: expected {expected}, or the official files ({files}). "
        f"Pass --download to fetch them{hint}."
    )


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _choose_splits(spec: DatasetSpec, layout: DatasetLayout, split_file: Optional[Path]):
    """The split definition in use, its description, and its splits."""
    if split_file is None:
        return OFFICIAL, {"definition": OFFICIAL}, layout.splits
    splits = read_coop_splits(split_file, layout, spec.coop_image_dir)
    description = {"definition": COOP, "split_file": str(split_file), "split_file_sha256": _file_sha256(split_file)}
    return COOP, description, splits


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
    """The end-of-run table: rows, classes, bytes and time per written file."""
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
    return "\n".join(lines)


def run(spec: DatasetSpec, args: argparse.Namespace) -> list[SplitResult]:
    """Convert the requested splits; raises :class:`DataPrepError` on bad input."""
    started = time.perf_counter()
    if args.max_pixels is not None and args.max_pixels <= 0:
        raise DataPrepError(f"--max-pixels must be positive, got {args.max_pixels}")
    split_file = getattr(args, "split_file", None)
    folder = locate_dataset(spec, args.root, args.download)
    layout = spec.read_layout(folder)
    definition_name, definition, splits = _choose_splits(spec, layout, split_file)
    available = COOP_SPLITS if definition_name == COOP else spec.official_splits
    wanted = args.splits or list(available)
    unknown = [split for split in wanted if split not in available]
    if unknown:
        raise DataPrepError(f"unknown split(s) {unknown} for the {definition_name} split; choose from {list(available)}")
    print(f"{spec.title}: {definition_name} split definition"
          + (f" from {split_file}" if split_file else "") + f", splits {wanted}", file=sys.stderr)
    results = []
    for split in wanted:
        full = splits[split]
        check_classes_nonempty(full, layout.class_names, f"{spec.title} {definition_name} split {split!r}")
        positions = list(range(len(full)))
        if args.subset is not None:
            positions = select_subset(full, [record.rel_path for record in full], args.subset, args.seed)
        output = args.out / spec.data_source / output_name(split, args.subset, args.seed)
        result = convert_split(
            folder=folder,
            records=[(position, full[position]) for position in positions],
            class_names=layout.class_names,
            data_source=spec.data_source,
            split=split,
            split_definition=definition_name,
            output=output,
            skip_bad=args.skip_bad,
            max_pixels=args.max_pixels,
            progress=not args.no_progress,
        )
        if args.subset is not None:
            result.subset = {"size": args.subset, "seed": args.seed, "of": len(full), "algorithm": "sha256-rank"}
        _write_sidecars(result, definition, args.skip_bad)
        if result.rows == 0:
            raise DataPrepError(f"{output}: every image of split {split!r} was skipped as bad; nothing usable written")
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

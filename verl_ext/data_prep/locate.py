"""Finding a dataset under ``--root``: already extracted, extracted from archives found there, or downloaded.

The order avoids needless work: a folder the script accepts is used as it is; official
archives found in ``--root`` are checksum-verified and extracted next to themselves; only
then, if downloading is allowed, the missing official files are fetched (or the dataset's own
``fetch`` runs, e.g. a Hugging Face snapshot) and the new archives extracted.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Optional

from .archive import is_archive, safe_extract
from .download import RemoteFile, download, verify_checksum
from .errors import LayoutError
from .spec import DatasetSpec


def find_dataset_folder(root: Path, spec: DatasetSpec) -> Optional[Path]:
    """The first of ``spec.folder_names`` under ``root`` that the script accepts, if any."""
    for name in spec.folder_names:
        candidate = root / name if name else root
        if candidate.is_dir() and spec.accepts(candidate):
            return candidate
    return None


def _extract(root: Path, remotes: Iterable[RemoteFile]) -> None:
    for remote in remotes:
        path = root / remote.filename
        if not path.exists():
            continue
        verify_checksum(path, remote.checksum)
        if is_archive(path):
            print(f"extracting {path} ...", file=sys.stderr)
            safe_extract(path, root)


def locate_dataset(spec: DatasetSpec, root: Path, allow_download: bool) -> Path:
    """The dataset folder: found, extracted from archives in ``root``, or downloaded (see module doc)."""
    root = root.expanduser()
    if root.is_file():  # --root names an archive or a parquet file itself
        root = root.parent
    found = find_dataset_folder(root, spec)
    if found is not None:
        return found
    _extract(root, spec.remote_files)
    found = find_dataset_folder(root, spec)
    if found is not None:
        return found
    if allow_download:
        if spec.download_note:
            print(f"note: {spec.download_note}", file=sys.stderr)
        if spec.fetch is not None:
            spec.fetch(root)
        else:
            missing = [remote for remote in spec.remote_files if not (root / remote.filename).exists()]
            for remote in missing:
                download(remote, root)
            _extract(root, [remote for remote in missing if is_archive(Path(remote.filename))])
        found = find_dataset_folder(root, spec)
        if found is not None:
            return found
    expected = " or ".join(str(root / name / spec.marker_paths[0]) if name else str(root / spec.marker_paths[0])
                           for name in spec.folder_names)
    files = ", ".join(remote.filename for remote in spec.remote_files)
    action = "The download ran but did not produce that layout" if allow_download else "Drop --no-download to fetch them"
    hint = f" ({spec.download_note})" if spec.download_note else ""
    raise LayoutError(f"{spec.title} not found under {root}: expected {expected}, or the official files ({files}). {action}{hint}.")

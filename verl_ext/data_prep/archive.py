"""Safe extraction of tar and zip archives.

Tar archives go through the standard library's own extraction filter, ``filter="data"``
(PEP 706), rather than checks of ours: it refuses members that would land outside the
destination, links whose target is absolute or resolves outside it, and device files and
FIFOs; it strips a leading ``/`` (the member then lands inside the destination) and drops
ownership and unsafe mode bits. Every member is first passed through that same filter
before anything is written, so a hostile archive leaves no partial output; extraction then
runs with the filter again, which re-checks each member against what is already on disk.
The filter exists from Python 3.12, and in 3.10.12 and 3.11.4 as security back-ports; an
older interpreter is refused rather than extracting unchecked.

The tar filter does not cover zip files, so zip members are checked here: no absolute path,
no ``..`` escape and no symbolic link, all before the first byte is written.
"""

from __future__ import annotations

import posixpath
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from .errors import UnsafeArchiveError

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")


def is_archive(path: Path) -> bool:
    """True when the file name ends with a suffix this module can extract."""
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def _extract_tar(archive: Path, destination: Path) -> None:
    data_filter = getattr(tarfile, "data_filter", None)
    if data_filter is None:  # pragma: no cover - only Pythons older than 3.10.12 / 3.11.4
        raise UnsafeArchiveError(
            f"{archive}: this Python has no tarfile extraction filters (they arrived in 3.10.12, 3.11.4 "
            "and 3.12); upgrade Python to extract archives safely"
        )
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            try:
                data_filter(member, str(destination))
            except tarfile.FilterError as error:
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r} refused by tarfile's 'data' filter "
                    f"({type(error).__name__}: {error}); nothing was extracted"
                ) from error
        tar.extractall(destination, filter="data")


def _zip_member(name: str, archive: Path) -> str:
    """The normalised relative member name, or raise if it escapes the destination."""
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    normalised = posixpath.normpath(name.replace("\\", "/"))
    if normalised == ".." or normalised.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} points outside the destination; refusing to extract")
    return normalised


def _extract_zip(archive: Path, destination: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _zip_member(info.filename, archive)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:  # a symlink stored by Unix zip tools
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to extract")
        for info in infos:
            target = destination / _zip_member(info.filename, archive)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def safe_extract(archive: Path, destination: Path) -> None:
    """Extract ``archive`` into ``destination`` after checking every member (see module doc)."""
    archive = Path(archive)
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    name = archive.name.lower()
    if name.endswith(".zip"):
        _extract_zip(archive, destination)
    elif name.endswith(ARCHIVE_SUFFIXES):
        _extract_tar(archive, destination)
    else:
        raise UnsafeArchiveError(f"{archive}: not a known archive type (expected one of {ARCHIVE_SUFFIXES})")

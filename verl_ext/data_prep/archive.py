"""Safe extraction of tar and zip archives.

A member is refused, and nothing at all is extracted, when it would land outside the
destination (absolute path, ``..`` component) or is a symbolic or hard link whose target
resolves outside it. Device files and FIFOs are refused too. The archive is checked in full
before the first byte is written, so a hostile archive leaves no partial output.
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


def _inside(name: str, archive: Path) -> str:
    """Return the normalised relative member name, or raise if it escapes the destination."""
    if name.startswith(("/", "\\")) or PurePosixPath(name).is_absolute() or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} has an absolute path; refusing to extract")
    normalised = posixpath.normpath(name.replace("\\", "/"))
    if normalised == ".." or normalised.startswith("../"):
        raise UnsafeArchiveError(f"{archive}: member {name!r} points outside the destination; refusing to extract")
    return normalised


def _check_link(member_name: str, target: str, archive: Path, hard: bool) -> None:
    """Refuse links whose target resolves outside the destination."""
    if target.startswith(("/", "\\")):
        raise UnsafeArchiveError(f"{archive}: link {member_name!r} -> {target!r} is absolute; refusing to extract")
    # A symlink target is relative to the link's folder; a hard-link target to the archive root.
    base = "" if hard else posixpath.dirname(member_name)
    resolved = posixpath.normpath(posixpath.join(base, target.replace("\\", "/")))
    if resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            f"{archive}: link {member_name!r} -> {target!r} points outside the destination; refusing to extract"
        )


def _check_tar(tar: tarfile.TarFile, archive: Path) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        name = _inside(member.name, archive)
        if member.issym():
            _check_link(name, member.linkname, archive, hard=False)
        elif member.islnk():
            _check_link(name, member.linkname, archive, hard=True)
        elif not (member.isfile() or member.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device or FIFO; refusing to extract")
    return members


def _extract_tar(archive: Path, destination: Path) -> None:
    with tarfile.open(archive) as tar:
        _check_tar(tar, archive)
        # The "data" filter re-checks the same rules inside the standard library (3.12+, 3.11.4+).
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # pragma: no cover - older Pythons; the checks above already ran
            tar.extractall(destination)


def _extract_zip(archive: Path, destination: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:
            _inside(info.filename, archive)
            mode = (info.external_attr >> 16) & 0o170000
            if mode == 0o120000:  # a symlink stored by Unix zip tools
                raise UnsafeArchiveError(f"{archive}: member {info.filename!r} is a symbolic link; refusing to extract")
        for info in infos:
            target = destination / _inside(info.filename, archive)
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

"""Resumable download with checksum verification, and the file-digest helper of the package.

The file is fetched into ``<name>.part`` with httpx (the project's HTTP stack), streamed in
1 MiB chunks. If that file already exists, the request asks for the remaining bytes with an
HTTP ``Range`` header and appends them; a server that ignores the range (status 200) makes the
download start over, and 416 (range not satisfiable) means the ``.part`` file is already
whole. Redirects are followed: the CaltechDATA record of CUB answers with one. Only a file
whose checksum matches is renamed to its final name, so a finished name is always a verified
file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import httpx
from tqdm import tqdm

from .errors import ChecksumError, DataPrepError

_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One official file: where to get it and what it must hash to.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``; ``None`` means no published value
    is known, and the download is then only size-checked by the server.
    """

    url: str
    filename: str
    checksum: Optional[str] = None

    def __post_init__(self) -> None:
        if self.checksum is not None:
            algorithm, _, digest = self.checksum.partition(":")
            if algorithm not in ("md5", "sha256") or not digest:
                raise ValueError(f"checksum of {self.filename} must look like 'md5:<hex>' or 'sha256:<hex>'")


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB chunks (``hashlib.file_digest`` needs Python 3.11)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_checksum(path: Path, checksum: Optional[str]) -> None:
    """Raise :class:`ChecksumError` if ``path`` does not hash to ``checksum``."""
    if checksum is None:
        return
    algorithm, _, expected = checksum.partition(":")
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumError(
            f"{path}: {algorithm} is {actual}, expected {expected}; the file is damaged or not the "
            "official one (delete it and download again)"
        )


def _fetch(url: str, partial: Path, filename: str, timeout_s: float) -> None:
    """Append the missing bytes of ``url`` to ``partial`` (or write it anew if the server won't resume)."""
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(timeout_s), follow_redirects=True) as response:
        if response.status_code == 416 and have:  # the .part file is already complete
            return
        if response.status_code not in (200, 206):
            raise DataPrepError(f"downloading {url} failed: HTTP {response.status_code} {response.reason_phrase}")
        resumed = response.status_code == 206
        start = have if resumed else 0
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(partial, "ab" if resumed else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=filename
        ) as bar:
            for chunk in response.iter_bytes(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def download(remote: RemoteFile, folder: Path, timeout_s: float = 60.0) -> Path:
    """Download ``remote`` into ``folder`` (resuming a ``.part`` file) and verify it."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.filename
    if final.exists():
        verify_checksum(final, remote.checksum)
        return final
    partial = folder / (remote.filename + ".part")
    try:
        _fetch(remote.url, partial, remote.filename, timeout_s)
    except httpx.HTTPError as error:  # connection refused, DNS, timeout, broken stream, ...
        raise DataPrepError(f"downloading {remote.url} failed: {type(error).__name__}: {error}") from error
    try:
        verify_checksum(partial, remote.checksum)
    except ChecksumError:
        partial.unlink()
        raise
    partial.rename(final)
    return final

"""Resumable download with checksum verification.

The file is fetched into ``<name>.part``. If that file already exists, the request asks for
the remaining bytes with an HTTP ``Range`` header and appends them; a server that ignores the
range (status 200) makes the download start over. Only a file whose checksum matches is
renamed to its final name, so a finished name is always a verified file.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

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


def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
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


def download(remote: RemoteFile, folder: Path, timeout_s: float = 60.0) -> Path:
    """Download ``remote`` into ``folder`` (resuming a ``.part`` file) and verify it."""
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / remote.filename
    if final.exists():
        verify_checksum(final, remote.checksum)
        return final
    partial = folder / (remote.filename + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(remote.url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)  # noqa: S310 - official https/http URLs
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # the .part file is already complete
            response = None
        else:
            raise DataPrepError(f"downloading {remote.url} failed: HTTP {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise DataPrepError(f"downloading {remote.url} failed: {error.reason}") from error
    if response is not None:
        with response:
            resumed = response.status == 206
            mode = "ab" if resumed else "wb"
            start = have if resumed else 0
            length = response.headers.get("Content-Length")
            total = start + int(length) if length is not None else None
            with open(partial, mode) as out, tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=remote.filename
            ) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    bar.update(len(chunk))
    try:
        verify_checksum(partial, remote.checksum)
    except ChecksumError:
        partial.unlink()
        raise
    partial.rename(final)
    return final

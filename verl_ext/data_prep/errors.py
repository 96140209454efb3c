"""Exceptions of data preparation; every message names the file, id or row at fault."""

from __future__ import annotations


class DataPrepError(Exception):
    """Base class: a problem the user can fix (missing file, bad layout, bad image, ...)."""


class LayoutError(DataPrepError):
    """The dataset folder does not match the official layout (missing file, id mismatch, ...)."""


class BadImageError(DataPrepError):
    """An image file is missing, unreadable or corrupt."""

    def __init__(self, path: str, reason: str):
        super().__init__(
            f"bad image {path}: {reason} (re-download the file, or pass --skip-bad to skip it "
            "and list it in the sidecar report)"
        )
        self.path = path
        self.reason = reason


class ChecksumError(DataPrepError):
    """A downloaded or supplied archive does not have the published checksum."""


class UnsafeArchiveError(DataPrepError):
    """An archive member would be written, or would link, outside the extraction folder."""

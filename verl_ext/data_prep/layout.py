"""Image records, where their bytes come from, annotation-file readers and validation helpers.

A dataset script reads its official files into a :class:`DatasetLayout`: the class names
(index = ``label_id``, 0-based and contiguous) and, per split, the list of
:class:`ImageRecord`. Records of a split are put in **canonical order**: sorted by their path
relative to the dataset folder (Python string order). The order therefore depends neither on
the file system's listing order nor on the order of lines in the annotation files.

A layout's :class:`ImageSource` reads the bytes of its records: :class:`FileImages` (image
files under the dataset folder, the default) or a parquet snapshot
(:class:`~verl_ext.data_prep.hf_parquet.ParquetImages`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Protocol, Sequence, Union

from .errors import BadImageError, LayoutError

_SHOW = 5  # how many offending ids an error message lists


@dataclass(frozen=True)
class ImageRecord:
    """One labelled image: its path relative to the dataset folder and its 0-based label id."""

    rel_path: str
    label_id: int


class ImageSource(Protocol):
    """Reads the bytes of a layout's images, in the order asked for."""

    def read_all(self, records: Sequence[ImageRecord], progress: bool) -> Iterator[Union[bytes, BadImageError]]:
        """One item per record, in order: its bytes, or the error that names why it is unusable."""
        ...

    def describe(self, record: ImageRecord) -> str:
        """Where the record's image is, for messages (a file path, or a parquet file and row)."""
        ...


@dataclass(frozen=True)
class FileImages:
    """Images stored as files under ``folder`` (every official archive layout)."""

    folder: Path

    def read_all(self, records: Sequence[ImageRecord], progress: bool = False) -> Iterator[Union[bytes, BadImageError]]:
        for record in records:
            try:
                yield (self.folder / record.rel_path).read_bytes()
            except OSError as error:
                yield BadImageError(self.describe(record), f"cannot read ({error.strerror or error})")

    def describe(self, record: ImageRecord) -> str:
        return str(self.folder / record.rel_path)


@dataclass
class DatasetLayout:
    """What a dataset script reads from the official files.

    ``images`` defaults to the files under ``folder``. ``coop_unavailable`` is set when a CoOp
    split file cannot be applied to this form of the dataset, and says why.
    """

    folder: Path
    class_names: list[str]
    splits: dict[str, list[ImageRecord]] = field(default_factory=dict)
    images: Optional[ImageSource] = None
    source_description: str = "official layout"
    coop_unavailable: Optional[str] = None

    def __post_init__(self) -> None:
        if self.images is None:
            self.images = FileImages(self.folder)
        duplicates = [name for name, count in Counter(self.class_names).items() if count > 1]
        if duplicates:
            raise LayoutError(f"{self.folder}: duplicate class names {duplicates[:_SHOW]}")
        for split, records in self.splits.items():
            self.splits[split] = canonical_order(records, f"{self.folder} split {split!r}")
            for record in records:
                if not 0 <= record.label_id < len(self.class_names):
                    raise LayoutError(
                        f"{self.folder}: {record.rel_path} has label id {record.label_id}, outside the "
                        f"{len(self.class_names)} known classes"
                    )


def canonical_order(records: Iterable[ImageRecord], where: str) -> list[ImageRecord]:
    """Sort records by path and refuse a path listed twice."""
    ordered = sorted(records, key=lambda record: record.rel_path)
    repeated = [path for path, count in Counter(r.rel_path for r in ordered).items() if count > 1]
    if repeated:
        raise LayoutError(f"{where}: duplicate image ids {repeated[:_SHOW]} (each image must be listed once)")
    return ordered


def require_paths(folder: Path, rel_paths: Sequence[str], what: str) -> None:
    """Raise a :class:`LayoutError` listing every missing file or folder of the layout."""
    missing = [rel for rel in rel_paths if not (folder / rel).exists()]
    if missing:
        listed = ", ".join(str(folder / rel) for rel in missing)
        raise LayoutError(
            f"{what}: missing {listed}. Point --root at the official layout (extracted, or the folder "
            "holding the archives), or pass --download."
        )


def read_columns(path: Path, min_columns: int, *, max_split: int = -1) -> list[tuple[int, list[str]]]:
    """Read a whitespace-separated text table as ``(line_number, fields)``.

    Blank lines and lines starting with ``#`` are skipped. ``max_split`` limits the number of
    splits (e.g. ``1`` for "<id> <name with spaces>").
    """
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            fields = text.split(None, max_split) if max_split >= 0 else text.split()
            if len(fields) < min_columns:
                raise LayoutError(f"{path}:{number}: expected {min_columns} columns, got {text!r}")
            rows.append((number, fields))
    return rows


def read_lines(path: Path) -> list[str]:
    """Non-empty stripped lines of a text file."""
    with open(path, encoding="utf-8") as handle:
        return [line.strip() for line in handle if line.strip()]


def unique_mapping(rows: Iterable[tuple[int, list[str]]], path: Path, value_column: int = 1) -> dict[str, str]:
    """Map column 0 to ``value_column``, refusing an id that appears twice."""
    mapping: dict[str, str] = {}
    for number, fields in rows:
        key = fields[0]
        if key in mapping:
            raise LayoutError(f"{path}:{number}: duplicate id {key!r}")
        mapping[key] = fields[value_column]
    return mapping


def parse_int(text: str, where: str) -> int:
    """``int(text)`` with an error that names the file and line."""
    try:
        return int(text)
    except ValueError:
        raise LayoutError(f"{where}: expected an integer id, got {text!r}") from None


def check_same_ids(ids_a: Iterable, name_a: str, ids_b: Iterable, name_b: str) -> None:
    """Raise if two annotation files do not list exactly the same ids."""
    set_a, set_b = set(ids_a), set(ids_b)
    only_a = sorted(set_a - set_b, key=str)
    only_b = sorted(set_b - set_a, key=str)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} ids only in {name_a} (e.g. {only_a[:_SHOW]})")
        if only_b:
            parts.append(f"{len(only_b)} ids only in {name_b} (e.g. {only_b[:_SHOW]})")
        raise LayoutError("id mismatch: " + "; ".join(parts))


def check_classes_nonempty(records: Sequence[ImageRecord], class_names: Sequence[str], where: str) -> None:
    """Raise if some class of the dataset has no image in ``records``."""
    present = {record.label_id for record in records}
    empty = [class_names[i] for i in range(len(class_names)) if i not in present]
    if empty:
        raise LayoutError(f"{where}: {len(empty)} classes have no images (e.g. {empty[:_SHOW]})")


def load_mat(path: Path, variables: Sequence[str]) -> Mapping:
    """Load a MATLAB file and check it holds ``variables``; errors name the file and variable."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=True)
    except Exception as error:  # scipy raises several unrelated types for a damaged file
        raise LayoutError(f"{path}: cannot read the MATLAB file ({error})") from error
    missing = [name for name in variables if name not in content]
    if missing:
        raise LayoutError(f"{path}: missing MATLAB variable(s) {missing}")
    return content


def packaged_class_names(table: str) -> list[str]:
    """Read a class-name table shipped in ``verl_ext/data_prep/class_names/<table>.txt``."""
    text = resources.files("verl_ext.data_prep").joinpath("class_names", f"{table}.txt").read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]


def underscores_to_spaces(name: str) -> str:
    """The SpeciaRL label rule shared by most datasets: ``_`` becomes a space."""
    return " ".join(name.replace("_", " ").split())

"""Image-classification datasets stored as Hugging Face parquet (a hub snapshot on disk).

The form ``datasets`` writes (``push_to_hub`` and the hub's parquet conversion), checked
against the installed ``datasets`` (``Features.arrow_schema``, ``Image.embed_storage``) and
the files of ``tanganke/stanford_cars``:

- files ``data/<split>-<shard:05d>-of-<count:05d>.parquet`` (e.g. ``data/test-00000-of-00001.parquet``);
- columns ``image`` = struct ``{bytes: binary, path: string}`` (the ``Image`` feature) and
  ``label`` = int64 (a ``ClassLabel``);
- class names in the schema metadata key ``huggingface``: JSON
  ``{"info": {"features": {"label": {"names": [...], "_type": "ClassLabel"}}}}``, and in the
  dataset card (``README.md``) front matter, ``dataset_info.features[].dtype.class_label.names``;
- when ``datasets`` embeds an image file it keeps only the file's base name in ``image.path``.

Rows are indexed by reading only ``label`` and ``image.path``; image bytes are read one row
group at a time when a split is converted. Records come in canonical (path) order, which
need not be the order rows are stored in (a snapshot built from class folders is grouped by
class); then a first pass copies the needed bytes, in storage order, to a temporary file
in the snapshot folder (the system's temporary folder if that is read-only) and a second pass
reads them back in canonical order, so every row group is decoded once and memory stays at
one row group.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from .errors import BadImageError, DataPrepError, LayoutError
from .layout import DatasetLayout, ImageRecord

SHARD_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_.]+)-(?P<shard>\d{5})-of-(?P<count>\d{5})\.parquet$")
IMAGE, LABEL = "image", "label"


def find_split_files(folder: Path) -> dict[str, list[Path]]:
    """``{split: shards in order}`` for the parquet files in ``folder`` or ``folder/data``; shards must be complete."""
    shards: dict[str, dict[int, Path]] = {}
    counts: dict[str, int] = {}
    for directory in (folder, folder / "data"):
        for path in sorted(directory.glob("*.parquet")) if directory.is_dir() else ():
            match = SHARD_NAME.match(path.name)
            if match is None:
                continue
            split, count = match["split"], int(match["count"])
            if counts.setdefault(split, count) != count:
                raise LayoutError(f"{path}: split {split!r} has shards 'of-{counts[split]:05d}' and 'of-{count:05d}'")
            shards.setdefault(split, {})[int(match["shard"])] = path
    for split, found in shards.items():
        missing = [f"{split}-{i:05d}-of-{counts[split]:05d}.parquet" for i in range(counts[split]) if i not in found]
        if missing:
            raise LayoutError(f"{folder}: split {split!r} is incomplete, missing {missing[:5]} (an interrupted download?)")
    return {split: [found[i] for i in sorted(found)] for split, found in shards.items()}


def _names_from_schema(path: Path) -> Optional[list[str]]:
    raw = (pq.read_schema(path).metadata or {}).get(b"huggingface")
    if raw is None:
        return None
    try:
        features = json.loads(raw).get("info", {}).get("features", {})
    except (ValueError, AttributeError) as error:
        raise LayoutError(f"{path}: the 'huggingface' schema metadata is not the JSON datasets writes ({error})") from error
    names = (features.get(LABEL) or {}).get("names")
    return [str(name) for name in names] if names else None


def _names_from_card(readme: Path) -> Optional[list[str]]:
    import yaml

    if not readme.is_file():
        return None
    parts = readme.read_text(encoding="utf-8").split("---")
    if len(parts) < 3:
        return None
    try:
        card = yaml.safe_load(parts[1]) or {}
    except yaml.YAMLError as error:
        raise LayoutError(f"{readme}: the dataset card's front matter is not YAML ({error})") from error
    infos = card.get("dataset_info") or []
    for info in infos if isinstance(infos, list) else [infos]:
        for feature in info.get("features") or []:
            dtype = feature.get("dtype")
            names = (dtype.get("class_label") or {}).get("names") if isinstance(dtype, dict) else None
            if feature.get("name") == LABEL and isinstance(names, dict):
                return [str(names[key]) for key in sorted(names, key=int)]
    return None


def class_names(folder: Path, files: dict[str, list[Path]]) -> tuple[list[str], str]:
    """The ``label`` class names and where they came from (schema metadata, else the dataset card)."""
    found = {split: _names_from_schema(paths[0]) for split, paths in files.items()}
    distinct = {tuple(names) for names in found.values() if names}
    if len(distinct) > 1:
        raise LayoutError(f"{folder}: the splits' parquet files disagree on the class names of '{LABEL}'")
    if distinct:
        return list(distinct.pop()), "the parquet schema metadata ('huggingface' features)"
    for readme in (folder / "README.md", folder.parent / "README.md"):
        names = _names_from_card(readme)
        if names:
            return names, f"the dataset card {readme.name} (dataset_info)"
    raise LayoutError(f"{folder}: no class names for '{LABEL}': neither the parquet schema metadata ('huggingface') "
                      "nor a README.md dataset card with dataset_info; download the snapshot with its README.md")


@dataclass(frozen=True)
class RowLocation:
    """Where one image is stored: parquet file, row group, row within the group (and within the file)."""

    file: Path
    row_group: int
    row: int
    file_row: int

    @property
    def key(self) -> tuple[str, int, int]:
        return str(self.file), self.row_group, self.row


def scan_rows(path: Path) -> Iterator[tuple[RowLocation, Optional[str], Optional[int]]]:
    """``(location, image.path, label)`` of every row, reading no image bytes."""
    try:
        parquet = pq.ParquetFile(path)
        image_type = parquet.schema_arrow.field(IMAGE).type if IMAGE in parquet.schema_arrow.names else None
        if LABEL not in parquet.schema_arrow.names or not pa.types.is_struct(image_type) \
                or {image_type.field(i).name for i in range(image_type.num_fields)} < {"bytes", "path"}:
            raise LayoutError(f"{path}: expected the columns '{IMAGE}' (struct bytes, path) and '{LABEL}', "
                              f"found {parquet.schema_arrow.names}")
        file_row = 0
        for group in range(parquet.num_row_groups):
            table = parquet.read_row_group(group, columns=[f"{IMAGE}.path", LABEL])
            paths = table.column(IMAGE).combine_chunks().field("path").to_pylist()
            for row, (name, label) in enumerate(zip(paths, table.column(LABEL).to_pylist())):
                yield RowLocation(path, group, row, file_row), name, label
                file_row += 1
    except (pa.ArrowException, OSError) as error:
        raise LayoutError(f"{path}: cannot read the parquet file ({error})") from error


class ParquetImages:
    """The :class:`~verl_ext.data_prep.layout.ImageSource` of a parquet snapshot (see the module doc)."""

    def __init__(self, locations: dict[str, RowLocation], spool_dir: Path):
        self._locations = locations
        self._spool_dir = spool_dir

    def describe(self, record: ImageRecord) -> str:
        where = self._locations[record.rel_path]
        return f"{where.file} row {where.file_row} ({record.rel_path})"

    def read_all(self, records: Sequence[ImageRecord], progress: bool = False) -> Iterator[Union[bytes, BadImageError]]:
        places = [self._locations[record.rel_path] for record in records]
        storage_order = sorted(range(len(places)), key=lambda i: places[i].key)
        if storage_order == list(range(len(places))):
            yield from self._in_storage_order(places, records)
        else:
            yield from self._reordered(places, records, storage_order, progress)

    def _in_storage_order(self, places, records) -> Iterator[Union[bytes, BadImageError]]:
        cached_key, column = None, None
        for place, record in zip(places, records):
            if (place.file, place.row_group) != cached_key:
                cached_key = (place.file, place.row_group)
                table = pq.ParquetFile(place.file).read_row_group(place.row_group, columns=[f"{IMAGE}.bytes"])
                column = table.column(IMAGE).combine_chunks().field("bytes")
            data = column[place.row].as_py()
            yield data if data else BadImageError(self.describe(record), "the parquet row has no image bytes")

    def _reordered(self, places, records, storage_order, progress) -> Iterator[Union[bytes, BadImageError]]:
        spans: list = [None] * len(places)
        try:
            spool = tempfile.TemporaryFile(dir=self._spool_dir, prefix=".speciarl-spool-")
        except OSError:  # a read-only snapshot (e.g. a shared cache): the system's temporary folder
            spool = tempfile.TemporaryFile(prefix=".speciarl-spool-")
        with spool:
            ordered = [places[i] for i in storage_order]
            stream = self._in_storage_order(ordered, [records[i] for i in storage_order])
            bar = tqdm(stream, total=len(ordered), desc="reading parquet rows in storage order", unit="img",
                       disable=not progress, file=sys.stderr)
            for position, data in zip(storage_order, bar):
                if isinstance(data, BadImageError):
                    spans[position] = data
                else:
                    spans[position] = (spool.tell(), len(data))
                    spool.write(data)
            for span in spans:
                if isinstance(span, BadImageError):
                    yield span
                else:
                    spool.seek(span[0])
                    yield spool.read(span[1])


OriginalPaths = Callable[[str, Sequence[Optional[str]]], Optional[list[str]]]


def read_snapshot(folder: Path, splits: Sequence[str], original_paths: OriginalPaths) -> DatasetLayout:
    """Read ``splits`` of a snapshot; other splits (e.g. corruption benchmarks) are not read at all.

    ``original_paths(split, image_paths)`` gives each row's path in the official layout when the
    snapshot kept the original file names, else ``None``; rows are then named
    ``<parquet file>#<row>`` and a CoOp split file (which names original files) cannot apply.
    """
    files = find_split_files(folder)
    missing = [split for split in splits if split not in files]
    if missing:
        raise LayoutError(f"{folder}: no parquet files for split(s) {missing} (found: {sorted(files)})")
    names, names_source = class_names(folder, {split: files[split] for split in splits})
    locations: dict[str, RowLocation] = {}
    records: dict[str, list[ImageRecord]] = {}
    renamed = []
    for split in splits:
        rows = [row for path in files[split] for row in scan_rows(path)]
        for where, _, label in rows:
            if not isinstance(label, int) or not 0 <= label < len(names):
                raise LayoutError(f"{where.file} row {where.file_row}: label {label!r} is not one of the "
                                  f"{len(names)} classes of {names_source}")
        rel_paths = original_paths(split, [name for _, name, _ in rows])
        if rel_paths is None:
            renamed.append(split)
            rel_paths = [f"{where.file.relative_to(folder).as_posix()}#{where.file_row:06d}" for where, _, _ in rows]
        records[split] = [ImageRecord(rel, label) for rel, (_, _, label) in zip(rel_paths, rows)]
        locations.update(zip(rel_paths, (where for where, _, _ in rows)))
    ignored = sorted(set(files) - set(splits))
    description = f"Hugging Face parquet snapshot, class names from {names_source}"
    if ignored:
        description += f"; splits not read: {', '.join(ignored)}"
    coop_unavailable = None
    if renamed:
        example = next(name for _, name, _ in scan_rows(files[renamed[0]][0]))
        coop_unavailable = (f"the parquet column image.path of split(s) {renamed} does not keep the original file names "
                            f"(e.g. {example!r}), so the split file's image paths cannot be matched to rows")
    return DatasetLayout(folder, names, records, images=ParquetImages(locations, folder), source_description=description,
                         coop_unavailable=coop_unavailable)


@dataclass(frozen=True)
class HubSnapshot:
    """Downloads the files of a Hugging Face dataset repository that match ``allow_patterns`` into a folder.

    A callable dataclass rather than a closure so that a ``DatasetSpec`` holding it stays
    picklable and prints what it fetches.
    """

    repo_id: str
    allow_patterns: tuple[str, ...]

    def __call__(self, root: Path) -> None:
        from huggingface_hub import snapshot_download
        import httpx

        print(f"downloading {self.repo_id} ({', '.join(self.allow_patterns)}) from the Hugging Face Hub into {root} ...",
              file=sys.stderr)
        try:
            snapshot_download(repo_id=self.repo_id, repo_type="dataset", local_dir=str(root),
                              allow_patterns=list(self.allow_patterns))
        except (OSError, httpx.HTTPError) as error:  # hub HTTP errors, no network, no disk space
            raise DataPrepError(f"downloading the Hugging Face dataset {self.repo_id} failed: {error}") from error

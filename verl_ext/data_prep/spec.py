"""The declarative description a ``data_prep/<name>.py`` script gives of its dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .coop import NUMBERINGS
from .download import RemoteFile
from .layout import DatasetLayout


@dataclass(frozen=True)
class PaperOutput:
    """One parquet file the paper's run needs: a split and, for a subset, its size."""

    split: str
    subset: Optional[int] = None


@dataclass(frozen=True)
class DatasetSpec:
    """Everything dataset-specific; the shared CLI does the rest.

    - ``folder_names``: where the extracted dataset folder may sit under ``--root``
      (``""`` = ``--root`` itself); the first one that ``is_layout`` accepts is used.
    - ``marker_paths``: the files that identify the official layout; ``is_layout`` defaults
      to "all of them exist", and a script with several accepted forms gives its own.
    - ``remote_files``: the official files the download fetches into ``--root``; the archives
      among them are extracted there. ``fetch`` replaces that step where the files come from
      elsewhere (a Hugging Face snapshot).
    - ``read_layout``: reads class names and the official splits from the dataset folder.
    - ``paper_outputs``: what a run without ``--splits``/``--subset`` writes (the paper's job).
    - ``coop_file_name`` / ``coop_image_dir`` / ``coop_numbering``: the CoOp split file this
      dataset accepts, the folder its image paths are relative to, and how CoOp numbers the
      classes (:data:`~verl_ext.data_prep.coop.NUMBERINGS`); ``None`` when the paper uses the
      official split only. ``paper_needs_coop``: the paper's test set is CoOp's and differs
      from the official one (Flowers102, Food-101), so a run without the file says so.
    """

    data_source: str
    title: str
    folder_names: tuple[str, ...]
    marker_paths: tuple[str, ...]
    remote_files: tuple[RemoteFile, ...]
    official_splits: tuple[str, ...]
    read_layout: Callable[[Path], DatasetLayout]
    class_name_source: str
    paper_outputs: tuple[PaperOutput, ...] = (PaperOutput("test"),)
    coop_file_name: Optional[str] = None
    coop_image_dir: str = ""
    coop_numbering: str = "official"
    paper_needs_coop: bool = False
    is_layout: Optional[Callable[[Path], bool]] = None
    fetch: Optional[Callable[[Path], None]] = None
    download_note: str = ""

    def __post_init__(self) -> None:
        if not self.folder_names or not self.marker_paths or not self.official_splits or not self.paper_outputs:
            raise ValueError(f"{self.data_source}: folder_names, marker_paths, official_splits and paper_outputs must be non-empty")
        if self.coop_numbering not in NUMBERINGS:
            raise ValueError(f"{self.data_source}: coop_numbering must be one of {NUMBERINGS}")
        unknown = [output.split for output in self.paper_outputs if output.split not in self.official_splits]
        if unknown:
            raise ValueError(f"{self.data_source}: paper_outputs name splits {unknown} that are not official splits")

    def accepts(self, folder: Path) -> bool:
        """Whether ``folder`` holds this dataset in a form ``read_layout`` reads."""
        if self.is_layout is not None:
            return self.is_layout(folder)
        return all((folder / marker).exists() for marker in self.marker_paths)

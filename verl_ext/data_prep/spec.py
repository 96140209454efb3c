"""The declarative description a ``data_prep/<name>.py`` script gives of its dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from .download import RemoteFile
from .layout import DatasetLayout


@dataclass(frozen=True)
class DatasetSpec:
    """Everything dataset-specific; the shared CLI does the rest.

    - ``folder_names``: where the extracted dataset folder may sit under ``--root``
      (``""`` = ``--root`` itself); the first one holding all ``marker_paths`` is used.
    - ``remote_files``: the official files ``--download`` fetches into ``--root``; the
      archives among them are extracted there.
    - ``read_layout``: reads class names and the official splits from the dataset folder.
    - ``coop_file_name`` / ``coop_image_dir``: the CoOp split file this dataset accepts through
      ``--split-file`` and the folder its image paths are relative to; ``None`` when the paper
      uses the official split only.
    """

    data_source: str
    title: str
    folder_names: tuple[str, ...]
    marker_paths: tuple[str, ...]
    remote_files: tuple[RemoteFile, ...]
    official_splits: tuple[str, ...]
    read_layout: Callable[[Path], DatasetLayout]
    class_name_source: str
    coop_file_name: Optional[str] = None
    coop_image_dir: str = ""
    download_note: str = ""

    def __post_init__(self) -> None:
        if not self.folder_names or not self.marker_paths or not self.official_splits:
            raise ValueError(f"{self.data_source}: folder_names, marker_paths and official_splits must be non-empty")

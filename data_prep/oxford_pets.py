"""Oxford-IIIT Pets -> verl parquet (out-of-domain evaluation).

Official source: https://www.robots.ox.ac.uk/~vgg/data/pets/ — ``images.tar.gz`` (all images
in ``images/``, e.g. ``Abyssinian_1.jpg``) and ``annotations.tar.gz``
(``annotations/trainval.txt`` and ``annotations/test.txt``: ``<image> <CLASS-ID 1..37>
<SPECIES> <BREED-ID>``). Class name: the breed, i.e. the image name without its trailing
``_<n>``, lower-cased, underscores turned into spaces ("abyssinian", "egyptian mau",
"american bulldog"). The file names capitalise cat breeds only (``Egyptian_Mau_1.jpg``,
``american_bulldog_1.jpg``); lower case for all 37 is what the paper's ground truth used
(lmms-owc's ``metadata.csv``, as CoOp's reader, lower-cases the breed), and it does not let the
case of a name reveal cat versus dog.

CoOp (``datasets/oxford_pets.py``) labels an image ``CLASS-ID - 1``, the same ``label_id`` as
here, and its test split is the official ``test.txt`` (3,669 images; its train 2,944 and val
736 come from ``trainval.txt``), so the paper's test set needs no split file;
``split_zhou_OxfordPets.json`` (paths relative to ``images/``) is accepted.
"""

from __future__ import annotations

from pathlib import Path

from verl_ext.data_prep.cli import main
from verl_ext.data_prep.download import RemoteFile
from verl_ext.data_prep.errors import LayoutError
from verl_ext.data_prep.layout import (
    DatasetLayout,
    ImageRecord,
    parse_int,
    read_columns,
    require_paths,
    underscores_to_spaces,
)
from verl_ext.data_prep.spec import DatasetSpec

URL = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/"
LISTS = {"trainval": "annotations/trainval.txt", "test": "annotations/test.txt"}


def read_layout(folder: Path) -> DatasetLayout:
    require_paths(folder, ("images", *LISTS.values()), "Oxford-IIIT Pets")
    breeds: dict[int, str] = {}
    splits: dict[str, list[tuple[str, int]]] = {}
    for split, rel in LISTS.items():
        splits[split] = []
        for number, fields in read_columns(folder / rel, 2):
            where = f"{folder / rel}:{number}"
            image, class_id = fields[0], parse_int(fields[1], where)
            if "_" not in image:
                raise LayoutError(f"{where}: image name {image!r} does not follow <Breed_Name>_<n>")
            breed = underscores_to_spaces(image.rsplit("_", 1)[0]).lower()
            if breeds.setdefault(class_id, breed) != breed:
                raise LayoutError(f"{where}: class id {class_id} is {breed!r} here but {breeds[class_id]!r} earlier")
            splits[split].append((f"images/{image}.jpg", class_id))
    if sorted(breeds) != list(range(1, len(breeds) + 1)):
        raise LayoutError(f"{folder / 'annotations'}: class ids must be 1..{len(breeds)} without gaps")
    class_names = [breeds[class_id] for class_id in sorted(breeds)]
    records = {split: [ImageRecord(rel, cid - 1) for rel, cid in rows] for split, rows in splits.items()}
    return DatasetLayout(folder, class_names, records)


SPEC = DatasetSpec(
    data_source="oxford_pets",
    title="Oxford-IIIT Pets",
    folder_names=("oxford-iiit-pet", ""),
    marker_paths=("images", "annotations/trainval.txt"),
    remote_files=(
        RemoteFile(URL + "images.tar.gz", "images.tar.gz", "md5:5c4f3ee8e5d25df40f4fd59a7f44e54c"),
        RemoteFile(URL + "annotations.tar.gz", "annotations.tar.gz", "md5:95a8c909bbe2e81eed6a22bccdf3f68f"),
    ),
    official_splits=("trainval", "test"),
    read_layout=read_layout,
    class_name_source="breed from the image name (without '_<n>'), lower-cased, '_' -> ' '",
    coop_file_name="split_zhou_OxfordPets.json",
    coop_image_dir="images",
)

if __name__ == "__main__":
    raise SystemExit(main(SPEC))

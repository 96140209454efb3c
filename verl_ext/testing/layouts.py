"""Miniature copies of the six official dataset layouts, for tests (ours and users').

Each builder writes, under ``root``, the folder structure, file names and id conventions of
the real archive: real JPEG files (tiny synthetic images), the real text tables, and the real
MATLAB structures (written with ``scipy.io.savemat``) where the dataset uses them. Every class
has images in every split. The returned :class:`MiniDataset` says what a correct converter
must produce: per split, ``(path relative to the dataset folder, 0-based label id)``, and,
for the datasets with a CoOp split, how CoOp's own reader writes each image's entry.

:func:`write_coop_split` writes a CoOp ``split_zhou_*.json`` file the way CoOp's ``save_split``
does; :func:`pack` turns a built layout into the official archive(s). The Stanford Cars
builders also write the Hugging Face parquet snapshot and the two Kaggle mirrors.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .images import synthetic_jpeg

IMAGE_SIZE = (40, 30)


@dataclass(frozen=True)
class CoopConvention:
    """How CoOp's reader for a dataset writes an image's entry ``[impath, label, classname]``.

    From ``KaiyangZhou/CoOp`` ``datasets/*.py``: ``impath`` is relative to ``image_dir``; the
    label is the official one except for Food-101 (``labels`` maps our ``label_id`` to CoOp's).
    """

    image_dir: str
    names: tuple[str, ...]
    labels: Optional[tuple[int, ...]] = None

    def entry(self, rel_path: str, label_id: int) -> list:
        prefix = f"{self.image_dir}/" if self.image_dir else ""
        assert rel_path.startswith(prefix), f"{rel_path} is not under {prefix}"
        label = self.labels[label_id] if self.labels is not None else label_id
        return [rel_path[len(prefix):], label, self.names[label_id]]


@dataclass
class MiniDataset:
    """A built miniature layout and the rows a correct converter writes from it."""

    root: Path
    folder: Path
    class_names: list[str]
    splits: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    coop: Optional[CoopConvention] = None

    def image_path(self, rel_path: str) -> Path:
        return self.folder / rel_path

    def label_of(self, rel_path: str) -> int:
        return next(label for rows in self.splits.values() for rel, label in rows if rel == rel_path)


class _Images:
    """Writes distinct deterministic JPEGs (each call a new seed)."""

    def __init__(self, seed: int):
        self._seed = seed * 100_003

    def next_bytes(self) -> bytes:
        self._seed += 1
        return synthetic_jpeg(self._seed, IMAGE_SIZE)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.next_bytes())


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


# --- CUB-200-2011 --------------------------------------------------------------------------

CUB_CLASSES = ("001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross", "004.Groove_billed_Ani")


def build_cub(root: Path, classes: int = 3, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> MiniDataset:
    """``CUB_200_2011/`` with images.txt, image_class_labels.txt, train_test_split.txt, classes.txt."""
    folder = Path(root) / "CUB_200_2011"
    images = _Images(seed)
    mini = MiniDataset(Path(root), folder, [], {"train": [], "test": []})
    image_lines, label_lines, split_lines, class_lines = [], [], [], []
    image_id = 0
    for class_index, class_folder in enumerate(CUB_CLASSES[:classes]):
        class_lines.append(f"{class_index + 1} {class_folder}")
        mini.class_names.append(class_folder.split(".", 1)[1].replace("_", " "))
        # Real file names capitalise differently from their folder: Black_Footed_Albatross_0046_18.jpg
        stem = "_".join(word.capitalize() for word in class_folder.split(".", 1)[1].split("_"))
        for k in range(train_per_class + test_per_class):
            image_id += 1
            is_train = k < train_per_class
            rel = f"{class_folder}/{stem}_{k + 1:04d}_{100 + image_id}.jpg"
            images.write(folder / "images" / rel)
            image_lines.append(f"{image_id} {rel}")
            label_lines.append(f"{image_id} {class_index + 1}")
            split_lines.append(f"{image_id} {1 if is_train else 0}")
            mini.splits["train" if is_train else "test"].append((f"images/{rel}", class_index))
    _write_lines(folder / "images.txt", image_lines)
    _write_lines(folder / "image_class_labels.txt", label_lines)
    _write_lines(folder / "train_test_split.txt", split_lines)
    _write_lines(folder / "classes.txt", class_lines)
    _write_lines(folder / "bounding_boxes.txt", [f"{line.split()[0]} 1.0 1.0 30.0 20.0" for line in image_lines])
    _write_lines(folder / "README", ["CUB-200-2011 miniature layout for tests"])
    return mini


# --- Oxford Flowers102 ---------------------------------------------------------------------

FLOWERS_NAMES = ("pink primrose", "hard-leaved pocket orchid", "canterbury bells", "sweet pea")


def build_flowers102(root: Path, classes: int = 3, per_split: Sequence[int] = (1, 1, 2), seed: int = 0) -> MiniDataset:
    """``jpg/image_NNNNN.jpg``, ``imagelabels.mat`` (``labels`` 1xN) and ``setid.mat`` (trnid/valid/tstid)."""
    folder = Path(root)
    images = _Images(seed)
    mini = MiniDataset(folder, folder, list(FLOWERS_NAMES[:classes]), {"train": [], "val": [], "test": []})
    labels: list[int] = []
    ids: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    # The real ids are not grouped by split or class: interleave them.
    for k in range(max(per_split)):
        for class_index in range(classes):
            for split, count in zip(("train", "val", "test"), per_split):
                if k >= count:
                    continue
                labels.append(class_index + 1)
                image_id = len(labels)
                rel = f"jpg/image_{image_id:05d}.jpg"
                images.write(folder / rel)
                ids[split].append(image_id)
                mini.splits[split].append((rel, class_index))
    import scipy.io

    scipy.io.savemat(folder / "imagelabels.mat", {"labels": np.array([labels], dtype=np.uint8)})
    scipy.io.savemat(
        folder / "setid.mat",
        {"trnid": np.array([ids["train"]], dtype=np.uint16), "valid": np.array([ids["val"]], dtype=np.uint16),
         "tstid": np.array([ids["test"]], dtype=np.uint16)},
    )
    # CoOp's OxfordFlowers: label = imagelabels.mat value - 1, name from cat_to_name.json.
    mini.coop = CoopConvention("jpg", tuple(mini.class_names))
    return mini


# --- Oxford-IIIT Pets ----------------------------------------------------------------------

# (breed as in file names, CLASS-ID, SPECIES 1=cat 2=dog, BREED-ID)
PETS_BREEDS = (("Abyssinian", 1, 1, 1), ("american_bulldog", 2, 2, 1), ("american_pit_bull_terrier", 3, 2, 2),
               ("basset_hound", 4, 2, 3), ("beagle", 5, 2, 4), ("Bengal", 6, 1, 2), ("Birman", 7, 1, 3),
               ("Bombay", 8, 1, 4), ("boxer", 9, 2, 5), ("British_Shorthair", 10, 1, 5), ("chihuahua", 11, 2, 6),
               ("Egyptian_Mau", 12, 1, 6))


def build_oxford_pets(root: Path, classes: int = 3, trainval_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> MiniDataset:
    """``images/<Breed>_<n>.jpg`` and ``annotations/{list,trainval,test}.txt``."""
    folder = Path(root)
    images = _Images(seed)
    mini = MiniDataset(folder, folder, [], {"trainval": [], "test": []})
    lines: dict[str, list[str]] = {"trainval": [], "test": []}
    for class_index, (breed, class_id, species, breed_id) in enumerate(PETS_BREEDS[:classes]):
        mini.class_names.append(breed.replace("_", " ").lower())
        for n in range(1, trainval_per_class + test_per_class + 1):
            split = "trainval" if n <= trainval_per_class else "test"
            name = f"{breed}_{n}"
            images.write(folder / "images" / f"{name}.jpg")
            lines[split].append(f"{name} {class_id} {species} {breed_id}")
            mini.splits[split].append((f"images/{name}.jpg", class_index))
    header = ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:37 Class ids", "#SPECIES: 1:Cat 2:Dog"]
    _write_lines(folder / "annotations" / "list.txt", header + lines["trainval"] + lines["test"])
    _write_lines(folder / "annotations" / "trainval.txt", lines["trainval"])
    _write_lines(folder / "annotations" / "test.txt", lines["test"])
    # CoOp's OxfordPets: label = CLASS-ID - 1, classname = the breed lower-cased, underscores kept.
    mini.coop = CoopConvention("images", tuple(breed.lower() for breed, *_ in PETS_BREEDS[:classes]))
    return mini


# --- Food-101 ------------------------------------------------------------------------------

#: The first 18 lines of the real ``meta/classes.txt`` (also Hugging Face ``ethz/food101``'s
#: ClassLabel order): ``cheesecake`` (16) comes before ``cheese_plate`` (17), while Python's sort of
#: the folder names, which CoOp's reader numbers by, puts ``cheese_plate`` first.
FOOD_CLASSES = ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad", "beignets",
                "bibimbap", "bread_pudding", "breakfast_burrito", "bruschetta", "caesar_salad", "cannoli",
                "caprese_salad", "carrot_cake", "ceviche", "cheesecake", "cheese_plate")
#: Real image ids of the real ``split_zhou_Food101.json`` (one each of its train, val and test entries).
FOOD_REAL_IDS = {"apple_pie": (3113710, 591398, 1214326), "cheesecake": (1948475, 3214388, 2005548),
                 "cheese_plate": (3602111, 1361284, 1355674)}


def build_food101(root: Path, classes: int = 3, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> MiniDataset:
    """``food-101/images/<class>/<id>.jpg`` and ``meta/{classes,labels,train,test}.txt`` (+ .json).

    Classes in ``FOOD_REAL_IDS`` use those real image ids first.
    """
    folder = Path(root) / "food-101"
    images = _Images(seed)
    names = list(FOOD_CLASSES[:classes])
    mini = MiniDataset(Path(root), folder, [n.replace("_", " ") for n in names], {"train": [], "test": []})
    entries: dict[str, list[str]] = {"train": [], "test": []}
    review_id = 1_000_000
    for class_index, name in enumerate(names):
        real = list(FOOD_REAL_IDS.get(name, ()))
        for k in range(train_per_class + test_per_class):
            review_id += 7919  # Foodspotting ids: unique, not contiguous
            split = "train" if k < train_per_class else "test"
            entry = f"{name}/{real[k] if k < len(real) else review_id}"
            images.write(folder / "images" / f"{entry}.jpg")
            entries[split].append(entry)
            mini.splits[split].append((f"images/{entry}.jpg", class_index))
    _write_lines(folder / "meta" / "classes.txt", names)
    _write_lines(folder / "meta" / "labels.txt", [n.replace("_", " ").capitalize() for n in names])
    for split in ("train", "test"):
        _write_lines(folder / "meta" / f"{split}.txt", entries[split])
        grouped = {n: [e for e in entries[split] if e.startswith(n + "/")] for n in names}
        (folder / "meta" / f"{split}.json").write_text(json.dumps(grouped), encoding="utf-8")
    # CoOp's Food101 (DTD's read_and_split_data): label = place of the folder in sorted(listdir(images)).
    by_folder = sorted(names)
    mini.coop = CoopConvention("images", tuple(names), tuple(by_folder.index(name) for name in names))
    return mini


# --- FGVC-Aircraft 2013b -------------------------------------------------------------------

AIRCRAFT_VARIANTS = ("707-320", "F/A-18", "Falcon 2000", "A340-300")


def build_fgvc_aircraft(root: Path, classes: int = 3, per_split: Sequence[int] = (1, 1, 2), seed: int = 0) -> MiniDataset:
    """``fgvc-aircraft-2013b/data/images/<7 digits>.jpg``, variants.txt, images_variant_<split>.txt."""
    folder = Path(root) / "fgvc-aircraft-2013b"
    images = _Images(seed)
    variants = list(AIRCRAFT_VARIANTS[:classes])
    mini = MiniDataset(Path(root), folder, list(variants), {"train": [], "val": [], "trainval": [], "test": []})
    lines: dict[str, list[str]] = {"train": [], "val": [], "trainval": [], "test": []}
    image_id = 34309
    for class_index, variant in enumerate(variants):
        for split, count in zip(("train", "val", "test"), per_split):
            for _ in range(count):
                image_id += 13
                name = f"{image_id:07d}"
                images.write(folder / "data" / "images" / f"{name}.jpg")
                targets = (split, "trainval") if split in ("train", "val") else (split,)
                for target in targets:
                    lines[target].append(f"{name} {variant}")
                    mini.splits[target].append((f"data/images/{name}.jpg", class_index))
    _write_lines(folder / "data" / "variants.txt", variants)
    for split, split_lines in lines.items():
        _write_lines(folder / "data" / f"images_variant_{split}.txt", split_lines)
        _write_lines(folder / "data" / f"images_{split}.txt", [line.split(" ", 1)[0] for line in split_lines])
    _write_lines(folder / "README.md", ["FGVC-Aircraft 2013b miniature layout for tests"])
    return mini


# --- Stanford Cars -------------------------------------------------------------------------

CARS_CLASSES = ("AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Audi S4 Sedan 2012", "Audi S4 Sedan 2007")

_ANNOTATION_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


def _annotations(rows: list[tuple[str, int]], with_class: bool) -> np.ndarray:
    """A MATLAB struct array (1xN) as ``scipy.io.savemat`` writes it from a record array."""
    fields = [name for name in _ANNOTATION_FIELDS if with_class or name != "class"]
    table = np.zeros((1, len(rows)), dtype=[(name, object) for name in fields])
    for i, (fname, class_id) in enumerate(rows):
        values = {"bbox_x1": np.uint8(2), "bbox_y1": np.uint8(3), "bbox_x2": np.uint8(30), "bbox_y2": np.uint8(25),
                  "class": np.uint8(class_id), "fname": fname}
        for name in fields:
            table[0, i][name] = values[name]
    return table


def _cars_samples(classes: int, train_per_class: int, test_per_class: int, seed: int) -> dict[str, list[tuple[str, int, bytes]]]:
    """``(file name, class index, JPEG bytes)`` per split; the same arguments give the same images in every form."""
    images = _Images(seed)
    samples: dict[str, list[tuple[str, int, bytes]]] = {"train": [], "test": []}
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        for _ in range(per_class):  # real images are not grouped by class: interleave
            for class_index in range(classes):
                samples[split].append((f"{len(samples[split]) + 1:05d}.jpg", class_index, images.next_bytes()))
    return samples


def _cars_coop(class_names: Sequence[str]) -> CoopConvention:
    # CoOp's StanfordCars: label = class - 1, classname = the name with its year moved first.
    return CoopConvention("", tuple(" ".join([n.split()[-1], *n.split()[:-1]]) for n in class_names))


def build_stanford_cars(root: Path, classes: int = 3, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0,
                        folder_name: str = "") -> MiniDataset:
    """``cars_train/``, ``cars_test/`` (numbering restarts), ``devkit/*.mat``, ``cars_test_annos_withlabels.mat``."""
    import scipy.io

    folder = Path(root) / folder_name if folder_name else Path(root)
    mini = MiniDataset(Path(root), folder, list(CARS_CLASSES[:classes]), {"train": [], "test": []})
    mini.coop = _cars_coop(mini.class_names)
    rows: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for split, samples in _cars_samples(classes, train_per_class, test_per_class, seed).items():
        for fname, class_index, data in samples:
            (folder / f"cars_{split}").mkdir(parents=True, exist_ok=True)
            (folder / f"cars_{split}" / fname).write_bytes(data)
            rows[split].append((fname, class_index + 1))
            mini.splits[split].append((f"cars_{split}/{fname}", class_index))
    (folder / "devkit").mkdir(parents=True, exist_ok=True)
    class_names = np.empty((1, classes), dtype=object)
    class_names[0, :] = list(CARS_CLASSES[:classes])
    scipy.io.savemat(folder / "devkit" / "cars_meta.mat", {"class_names": class_names})
    scipy.io.savemat(folder / "devkit" / "cars_train_annos.mat", {"annotations": _annotations(rows["train"], True)})
    scipy.io.savemat(folder / "devkit" / "cars_test_annos.mat", {"annotations": _annotations(rows["test"], False)})
    scipy.io.savemat(folder / "cars_test_annos_withlabels.mat", {"annotations": _annotations(rows["test"], True)})
    return mini


def build_stanford_cars_torchvision(root: Path, **kwargs) -> MiniDataset:
    """The Kaggle mirror rickyyyyyyy/torchvision-stanford-cars: torchvision's ``stanford_cars/`` folder."""
    return build_stanford_cars(root, folder_name="stanford_cars", **kwargs)


#: Splits of tanganke/stanford_cars besides train and test (corrupted copies of the test images).
CARS_CORRUPTIONS = ("contrast", "gaussian_noise", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate", "spatter")


def build_stanford_cars_hf(root: Path, classes: int = 3, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0,
                           keep_names: bool = True, metadata: bool = True, card: bool = True, test_shards: int = 2) -> MiniDataset:
    """A snapshot of the Hugging Face dataset tanganke/stanford_cars (``data/<split>-*.parquet``, ``README.md``).

    Rows are stored grouped by class, as a snapshot built from class folders is; ``image.path``
    keeps the original file names unless ``keep_names`` is false. Two corruption splits hold
    undecodable bytes and out-of-range labels, so reading them by mistake fails. The images are
    those :func:`build_stanford_cars` writes for the same arguments.
    """
    from .hf_snapshot import write_hf_snapshot

    folder = Path(root)
    names = list(CARS_CLASSES[:classes])
    mini = MiniDataset(folder, folder, names, {"train": [], "test": []})
    mini.coop = _cars_coop(names)
    splits, shards = {}, {"train": 1, "test": test_shards}
    for split, samples in _cars_samples(classes, train_per_class, test_per_class, seed).items():
        stored = sorted(samples, key=lambda sample: (sample[1], sample[0]))
        splits[split] = [(data, fname if keep_names else None, label) for fname, label, data in stored]
        per_shard = -(-len(stored) // shards[split])
        for position, (fname, label, _) in enumerate(stored):
            shard, file_row = divmod(position, per_shard)
            rel = f"cars_{split}/{fname}" if keep_names else \
                f"data/{split}-{shard:05d}-of-{shards[split]:05d}.parquet#{file_row:06d}"
            mini.splits[split].append((rel, label))
    for corruption in CARS_CORRUPTIONS[:2]:
        splits[corruption] = [(b"not an image", fname, 999) for fname, _, _ in _cars_samples(1, 0, 2, seed)["test"]]
    write_hf_snapshot(folder, splits, names, shards=shards, metadata=metadata, card=card)
    return mini


def build_stanford_cars_kaggle_nested(root: Path) -> Path:
    """The shape of the Kaggle copy jessicali9530/stanford-cars-dataset: images one folder too deep."""
    import scipy.io

    folder = Path(root)
    images = _Images(0)
    for split in ("train", "test"):
        images.write(folder / f"cars_{split}" / f"cars_{split}" / "00001.jpg")
    scipy.io.savemat(folder / "cars_annos.mat", {"annotations": _annotations([("car_ims/00001.jpg", 1)], True)})
    return folder


# --- CoOp split files and archives ---------------------------------------------------------


def write_coop_split(path: Path, mini: MiniDataset, assignment: dict[str, Sequence[str]]) -> Path:
    """Write ``split_zhou_<Name>.json`` as CoOp's ``save_split`` does for the images in ``assignment``.

    ``assignment`` maps ``train``/``val``/``test`` to image paths relative to the dataset folder.
    Each entry is ``[impath, label, classname]`` as CoOp's reader made it (``mini.coop``), and the
    file is written by Dassl's ``write_json``: ``json.dump(obj, f, indent=4, separators=(",", ": "))``.
    """
    assert mini.coop is not None, "this dataset has no CoOp split"
    content = {split: [mini.coop.entry(rel, mini.label_of(rel)) for rel in assignment.get(split, ())]
               for split in ("train", "val", "test")}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(content, handle, indent=4, separators=(",", ": "))
    return Path(path)


def pack(folder: Path, archive: Path, members: Sequence[str]) -> Path:
    """Write a ``.tgz``/``.tar.gz`` holding ``members`` (paths relative to ``folder``)."""
    with tarfile.open(archive, "w:gz") as tar:
        for member in members:
            tar.add(Path(folder) / member, arcname=member)
    return archive

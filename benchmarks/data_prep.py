"""Benchmark: data_prep/cub.py (original JPEG bytes, streamed) vs a PNG re-encoding writer.

A synthetic CUB-sized set is generated once in the real CUB layout: 11,788 JPEGs of 500x375
(25-80 KB each, photo-like texture), 200 classes, the official train/test proportions.
Then, each in a fresh child process (peak memory = the child's own ``ru_maxrss``, which
counts C allocations that ``tracemalloc`` misses):

1. ours, full: ``data_prep/cub.py`` on both splits (every image);
2. ours, a tenth: the same with ``--subset`` = a tenth of each split (memory must not grow);
3. baseline: decode each image, re-encode it as PNG and write the parquet in one go at the
   end (the original builder's approach), on a sample of the test split; its time per image
   is linear, so the speed-up is the ratio of times per image.

``--quick`` (< 1 minute) uses 1,200 images and a 60-image PNG sample. The last line is
``RESULT key=value ...`` with ``size_ratio`` (output / source JPEG bytes), ``speedup_vs_png``
and ``peak_mb`` (full run), plus the absolute times.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZE = (500, 375)
FULL = {"classes": 200, "train": 5994, "test": 5794, "png_sample": 600}
QUICK = {"classes": 20, "train": 610, "test": 590, "png_sample": 60}


# ---- synthetic CUB-format set -------------------------------------------------------------


def _pools(rng: np.random.Generator) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Shared texture and noise fields; images roll and mix them (fast, yet distinct bytes)."""
    from PIL import Image

    width, height = SIZE
    details, noises = [], []
    for _ in range(16):
        small = rng.uniform(0, 255, (height // 4, width // 4, 3)).astype(np.uint8)
        details.append(np.asarray(Image.fromarray(small).resize(SIZE, Image.BILINEAR), dtype=np.float32))
        noises.append(rng.normal(0, 1, (height, width, 3)).astype(np.float32))
    return details, noises


def generate(root: Path, plan: dict) -> None:
    """Write ``CUB_200_2011/`` with images.txt, labels, split and classes tables."""
    from PIL import Image
    from tqdm import tqdm

    folder = root / "CUB_200_2011"
    marker = folder / ".generated.json"
    if marker.exists() and json.loads(marker.read_text()) == plan:
        return
    rng = np.random.default_rng(2026)
    details, noises = _pools(rng)
    total = plan["train"] + plan["test"]
    per_class = -(-total // plan["classes"])
    images, labels, classes = [], [], []
    for class_index in range(plan["classes"]):
        classes.append(f"{class_index + 1} {class_index + 1:03d}.Synthetic_Bird_{class_index + 1}")
    with tqdm(total=total, desc="generating synthetic CUB", unit="img") as bar:
        for image_id in range(1, total + 1):
            class_index = (image_id - 1) // per_class
            class_folder = f"{class_index + 1:03d}.Synthetic_Bird_{class_index + 1}"
            base = rng.uniform(0, 255, (12, 16, 3)).astype(np.uint8)
            pixels = np.asarray(Image.fromarray(base).resize(SIZE, Image.BICUBIC), dtype=np.float32)
            shift = tuple(int(s) for s in rng.integers(0, 300, 2))
            detail = np.roll(details[image_id % 16], shift, axis=(0, 1))
            noise = np.roll(noises[(image_id * 7) % 16], shift[::-1], axis=(0, 1))
            mix = rng.uniform(0.15, 0.5)
            pixels = pixels * (1 - mix) + detail * mix + noise * rng.uniform(1.5, 5.0)
            rel = f"{class_folder}/Synthetic_Bird_{image_id:05d}.jpg"
            path = folder / "images" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=int(rng.integers(75, 92)))
            images.append(f"{image_id} {rel}")
            labels.append(f"{image_id} {class_index + 1}")
            bar.update()
    # Official proportions: pick exactly plan["test"] test images, spread over the classes.
    test_ids = set(np.linspace(1, total, plan["test"], dtype=int).tolist())
    flags = [f"{i} {0 if i in test_ids else 1}" for i in range(1, total + 1)]
    for name, lines in (("images.txt", images), ("image_class_labels.txt", labels),
                        ("train_test_split.txt", flags), ("classes.txt", classes)):
        (folder / name).write_text("\n".join(lines) + "\n")
    marker.write_text(json.dumps(plan))


# ---- child processes ------------------------------------------------------------------------


def _cub_module():
    spec = importlib.util.spec_from_file_location("data_prep_cub", REPO / "data_prep" / "cub.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def child_ours(root: str, out: str, subset_fraction: float) -> dict:
    from verl_ext.data_prep.cli import build_parser, run

    module = _cub_module()
    started = time.perf_counter()
    totals = {"rows": 0, "source_bytes": 0, "file_bytes": 0}
    layout = module.read_layout(Path(root) / "CUB_200_2011")
    for split in ("train", "test"):
        argv = ["--root", root, "--out", out, "--splits", split, "--no-progress", "--no-download"]
        if subset_fraction < 1:
            argv += ["--subset", str(max(1, int(len(layout.splits[split]) * subset_fraction)))]
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                (result,) = run(module.SPEC, build_parser(module.SPEC).parse_args(argv))
            finally:
                sys.stdout = stdout
        for key in totals:
            totals[key] += getattr(result, key)
    return {**totals, "seconds": time.perf_counter() - started}


def child_png(root: str, out: str, sample: int) -> dict:
    """The baseline: decode, re-encode as PNG, keep every row in memory, write at the end."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    from verl_ext.core.prompts import build_prompt_messages
    from verl_ext.data_prep.writer import ROW_SCHEMA, build_row

    module = _cub_module()
    started = time.perf_counter()
    layout = module.read_layout(Path(root) / "CUB_200_2011")
    rows, source_bytes = [], 0
    for index, record in enumerate(layout.splits["test"][:sample]):
        data = (layout.folder / record.rel_path).read_bytes()
        source_bytes += len(data)
        buffer = io.BytesIO()
        Image.open(io.BytesIO(data)).convert("RGB").save(buffer, format="PNG")
        rows.append(build_row(data_source="cub200", prompt=build_prompt_messages("general"), image_bytes=buffer.getvalue(),
                              split="test", index=index, label_id=record.label_id,
                              class_name=layout.class_names[record.label_id], source_file=record.rel_path,
                              split_definition="official"))
    output = Path(out) / "test_png.parquet"
    output.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), output)
    return {"rows": len(rows), "source_bytes": source_bytes, "file_bytes": output.stat().st_size,
            "seconds": time.perf_counter() - started}


def in_child(mode: str, *args) -> dict:
    """Run one measurement in a fresh interpreter; returns its numbers plus its peak RSS."""
    command = [sys.executable, __file__, "--child", json.dumps([mode, *args])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_main(spec: str) -> None:
    mode, *args = json.loads(spec)
    result = {"ours": child_ours, "png": child_png}[mode](*args)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


# ---- main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,200 images, < 1 minute")
    parser.add_argument("--workdir", type=Path, help="keep the synthetic set here (reused across runs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child_main(args.child)
        return
    plan = QUICK if args.quick else FULL
    workdir = args.workdir or Path(tempfile.gettempdir()) / f"speciarl_bench_data_prep_{'quick' if args.quick else 'full'}"
    started = time.perf_counter()
    generate(workdir / "raw", plan)
    generated = time.perf_counter() - started
    images = plan["train"] + plan["test"]
    full = in_child("ours", str(workdir / "raw"), str(workdir / "out_full"), 1.0)
    tenth = in_child("ours", str(workdir / "raw"), str(workdir / "out_tenth"), 0.1)
    png = in_child("png", str(workdir / "raw"), str(workdir / "out_png"), plan["png_sample"])

    ours_per_image = full["seconds"] / full["rows"]
    png_per_image = png["seconds"] / png["rows"]
    size_ratio = full["file_bytes"] / full["source_bytes"]
    png_ratio = png["file_bytes"] / png["source_bytes"]
    print(f"synthetic set: {images} JPEGs {SIZE[0]}x{SIZE[1]}, mean {full['source_bytes'] / full['rows'] / 1e3:.0f} KB "
          f"(generated/reused in {generated:.0f} s) in {workdir}")
    print(f"{'writer':<26} {'images':>7} {'seconds':>8} {'img/s':>8} {'out/src bytes':>14} {'peak MB':>8}")
    for name, run in (("ours (JPEG bytes), full", full), ("ours (JPEG bytes), tenth", tenth), ("PNG re-encode (sample)", png)):
        print(f"{name:<26} {run['rows']:>7} {run['seconds']:>8.2f} {run['rows'] / run['seconds']:>8.1f} "
              f"{run['file_bytes'] / run['source_bytes']:>14.3f} {run['peak_mb']:>8.0f}")
    print(f"PNG writer extrapolated to the {plan['test']}-image test split: {png_per_image * plan['test']:.0f} s")
    print(
        f"RESULT images={full['rows']} size_ratio={size_ratio:.4f} speedup_vs_png={png_per_image / ours_per_image:.1f} "
        f"peak_mb={full['peak_mb']:.0f} peak_mb_tenth={tenth['peak_mb']:.0f} ours_s={full['seconds']:.2f} "
        f"ours_ms_per_img={ours_per_image * 1e3:.3f} png_s={png['seconds']:.2f} png_images={png['rows']} "
        f"png_ms_per_img={png_per_image * 1e3:.1f} png_size_ratio={png_ratio:.2f} png_peak_mb={png['peak_mb']:.0f}"
    )


if __name__ == "__main__":
    main()

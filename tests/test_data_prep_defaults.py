"""``python data_prep/<name>.py`` with no arguments does the paper's job, where the recipes look for it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_ext.data_prep.cli import main
from verl_ext.testing import layouts

from data_prep_scripts import load_spec

REPO = Path(__file__).resolve().parents[1]
RECIPE_KEYS = ("TRAIN_FILES", "VAL_FILES", "DATA_ROOT", "DATA_SOURCE", "TRAIN_SUBSET", "VAL_SUBSET", "DATA_SEED")


def recipe_environment(data_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in RECIPE_KEYS}
    return {**env, "DATA_DIR": str(data_dir)}


def recipe_paths(env: dict[str, str]) -> tuple[Path, Path, Path]:
    """TRAIN_FILES, VAL_FILES and DATA_ROOT as recipes/common.sh resolves them."""
    done = subprocess.run(["bash", "-c", 'set -euo pipefail; source recipes/common.sh; '
                           'printf "%s\\n" "$TRAIN_FILES" "$VAL_FILES" "$DATA_ROOT"'],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True)
    train, val, raw = done.stdout.split()
    return Path(train), Path(val), Path(raw)


def test_cub_without_arguments_writes_the_training_and_validation_subsets_the_recipe_reads(tmp_path):
    env = recipe_environment(tmp_path / "data")
    train_file, val_file, raw = recipe_paths(env)
    # A miniature in the real layout, large enough for the paper's 3,000 + 500, where the download would go.
    layouts.build_cub(raw, classes=4, train_per_class=750, test_per_class=125)
    done = subprocess.run([sys.executable, str(REPO / "data_prep" / "cub.py")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert pq.ParquetFile(train_file).metadata.num_rows == 3000
    assert pq.ParquetFile(val_file).metadata.num_rows == 500
    assert f"wrote {train_file}" in done.stdout and f"wrote {val_file}" in done.stdout
    assert {row["split"] for row in pq.read_table(val_file, columns=["extra_info"]).column(0).to_pylist()} == {"test"}


def test_help_shows_the_resolved_defaults(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "1000")  # argparse wraps at hyphens otherwise, splitting the paths
    with pytest.raises(SystemExit):
        main(load_spec("cub"), ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"here {tmp_path / 'data' / 'raw' / 'cub200'}" in text and f"here {tmp_path / 'data'}" in text
    assert "default: train, test" in text and "train: 3000; test: 500" in text and "(default: 42)" in text
    assert "train (3000 images, seed 42), test (500 images, seed 42)" in text
    with pytest.raises(SystemExit):
        main(load_spec("food101"), ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: split_zhou_Food101.json in --root or the dataset folder if present" in text and "default: test" in text


def test_other_scripts_default_to_the_test_split_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    mini = layouts.build_fgvc_aircraft(tmp_path / "data" / "raw" / "fgvc_aircraft")
    assert main(load_spec("fgvc_aircraft"), ["--no-progress"]) == 0
    written = sorted(p.name for p in (tmp_path / "data" / "fgvc_aircraft").glob("*.parquet"))
    assert written == ["test.parquet"]
    assert pq.ParquetFile(tmp_path / "data" / "fgvc_aircraft" / "test.parquet").metadata.num_rows == len(mini.splits["test"])


@pytest.mark.parametrize("setting, flag", [("0", "--no-download"), ("1", "--download")])
def test_recipe_data_download_setting_reaches_data_prep(tmp_path, setting, flag):
    """recipes/common.sh must pass --no-download for DATA_DOWNLOAD=0, now that downloading is the default."""
    stub = tmp_path / "python"
    stub.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" >> {tmp_path / "argv"}\nexit 3\n')
    stub.chmod(0o755)
    env = {**recipe_environment(tmp_path / "data"), "PYTHON": str(stub), "DATA_DOWNLOAD": setting}
    done = subprocess.run(["bash", "-c", "source recipes/common.sh; speciarl_prepare_data"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0  # the stub writes nothing
    argv = (tmp_path / "argv").read_text().split()
    assert argv[0].endswith("data_prep/cub.py") and flag in argv and argv.count("--download") + argv.count("--no-download") == 1

"""The Python floor that setup.py declares holds for the shipped code, checked statically with vermin.

CI runs one interpreter, so a call that needs a newer Python than ``python_requires`` promises
(``hashlib.file_digest`` is 3.11+) passes every test and still breaks users on the floor.
vermin reads the source and reports the minimum version each construct needs.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VERMIN = "import sys; from vermin import main; sys.exit(main())"


def declared_floor() -> str:
    """``X.Y`` of ``python_requires=">=X.Y,..."`` in setup.py."""
    match = re.search(r'python_requires\s*=\s*">=\s*(\d+\.\d+)', (REPO / "setup.py").read_text(encoding="utf-8"))
    assert match, "setup.py must declare python_requires='>=X.Y,...'"
    return match.group(1)


def vermin(*paths: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", VERMIN, "--no-tips", "--violations", "--eval-annotations",
               f"--target={declared_floor()}-", *map(str, paths)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


def test_package_and_scripts_need_nothing_newer_than_the_declared_floor():
    done = vermin(REPO / "verl_ext", REPO / "data_prep")
    assert done.returncode == 0, f"code needs a newer Python than setup.py declares:\n{done.stdout}{done.stderr}"


def test_the_check_catches_a_call_newer_than_the_floor(tmp_path):
    source = tmp_path / "uses_311.py"
    source.write_text('import hashlib\n\n\ndef digest(handle):\n    return hashlib.file_digest(handle, "sha256")\n')
    done = vermin(source)
    assert done.returncode != 0 and "hashlib.file_digest" in done.stdout

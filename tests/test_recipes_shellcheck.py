"""Every recipe script passes shellcheck and runs in bash's strict mode."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
SCRIPTS = sorted(RECIPES.glob("*.sh"))


def test_recipes_folder_has_scripts():
    assert len(SCRIPTS) >= 14


def test_every_script_is_shellcheck_clean():
    """One shellcheck run over all scripts (it follows `source` into common.sh)."""
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (Debian: apt-get install shellcheck)"
    result = subprocess.run(
        [shellcheck, "--external-sources", "--severity=info", *(p.name for p in SCRIPTS)],
        cwd=RECIPES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_catches_an_unquoted_variable(tmp_path):
    """Guards the guard: the same invocation fails on the mistake the style rule forbids."""
    bad = tmp_path / "bad.sh"
    bad.write_text('#!/usr/bin/env bash\nset -euo pipefail\nrm -rf $1/tmp\n', encoding="utf-8")
    result = subprocess.run([shutil.which("shellcheck") or "shellcheck", "--severity=info", str(bad)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "SC2086" in result.stdout


@pytest.mark.parametrize("script", [p for p in SCRIPTS if os.access(p, os.X_OK)], ids=lambda p: p.name)
def test_runnable_script_uses_strict_mode(script):
    lines = script.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    assert "set -euo pipefail" in lines

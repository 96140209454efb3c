"""Run a recipe script as a user does, in a clean environment, and read what it would launch.

Shared by the recipe tests. ``DRY_RUN_EMIT`` makes the script write its final argument list
(the one it would hand to ``main_ppo`` or the dry run) instead of starting Python, so a test
can compose many recipes in one process with one verl import.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

#: The only variables of the caller's environment a recipe run sees.
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "TMPDIR")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus every recipe setting, so only the test decides them."""
    env = {k: v for k, v in os.environ.items() if k in KEPT_ENV}
    env.update(HOME=str(home), PYTHON=sys.executable, DRY_RUN="1", HF_HUB_OFFLINE="1", **extra)
    return env


def emit_arguments(script: str, home: Path, *args: str, cwd: Optional[Path] = None, **env: str) -> list[str]:
    """Run the recipe under bash and return the argument list it would hand to Python."""
    emitted = home / f"{script}.args"
    result = subprocess.run(
        ["bash", str(RECIPES / script), *args],
        env=clean_env(home, DRY_RUN_EMIT=str(emitted), **env),
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd or home,
    )
    assert result.returncode == 0, result.stderr
    return [a for a in emitted.read_text(encoding="utf-8").split("\0") if a]


def compose_emitted(arguments: list[str], out: Path) -> dict:
    """The resolved config of an emitted argument list, through the dry run's own code."""
    from verl_ext.recipes.dry_run import dry_run

    dry_run(arguments, config_out=str(out), echo=lambda _line: None)
    return yaml.safe_load(out.read_text(encoding="utf-8"))


def lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted} missing from the resolved config"
        node = node[part]
    return node

"""Run a recipe script as a user does, in a clean environment, and read what it would launch.

Shared by the recipe tests. ``DRY_RUN_EMIT`` makes the script write its final argument list
(the one it would hand to ``main_ppo`` or the dry run) instead of starting Python, so a test
can compose many recipes in one process with one verl import.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

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


def normalise(node: Any, volatile: dict[str, str]) -> Any:
    """Machine-specific text (folders, a free port) replaced by its placeholder, everywhere in the config."""
    if isinstance(node, dict):
        return {key: normalise(value, volatile) for key, value in node.items()}
    if isinstance(node, list):
        return [normalise(value, volatile) for value in node]
    if isinstance(node, str):
        for text, placeholder in volatile.items():
            node = node.replace(text, placeholder)
    return node


def folders_of(tmp_path: Path) -> tuple[Path, Path]:
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    return home, work


def placeholders(home: Path, work: Path) -> dict[str, str]:
    """What a run's config holds that differs between machines and runs, and its placeholder."""
    volatile = {str(work): "<PWD>", str(home): "<HOME>"}
    scripted_judge = work / "smoke_cpu" / "judge.url"  # smoke_cpu.sh's own judge listens on a free port
    if scripted_judge.is_file():
        volatile = {scripted_judge.read_text(encoding="utf-8").strip(): "<SCRIPTED_JUDGE_URL>", **volatile}
    return volatile


_RESOLVED: dict[tuple, dict] = {}


def resolved_recipe(script: str, env: Mapping[str, str], args: Sequence[str], root: Path) -> dict:
    """A recipe run's resolved config, machine paths normalised; composed once per test session.

    Several test modules check the same runs (each takes a bash run and a dry run), so they
    share them; ``root`` is a session folder (the ``recipe_runs_root`` fixture).
    """
    key = (script, tuple(sorted(env.items())), tuple(args))
    if key not in _RESOLVED:
        folder = root / f"run{len(_RESOLVED)}"
        home, work = folders_of(folder)
        arguments = emit_arguments(script, home, *args, cwd=work, **env)
        _RESOLVED[key] = normalise(compose_emitted(arguments, folder / "resolved.yaml"), placeholders(home, work))
    return copy.deepcopy(_RESOLVED[key])


def lookup(config: dict, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, f"{dotted} missing from the resolved config"
        node = node[part]
    return node

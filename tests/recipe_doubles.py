"""Test doubles for the recipes' launch tests (not a test module): a ``PYTHON`` that records one call."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

_RECORDING_PYTHON = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    if [[ "${{1:-}}" == "-m" && "${{2:-}}" == "{module}" ]]; then
      shift 2
      printf '%s\\0' "$@" > "${{{record_env}}}"
      exit 0
    fi
    exec {python} "$@"
    """
)


def recording_python(path: Path, module: str, record_env: str) -> Path:
    """An executable standing in for ``PYTHON``: ``-m <module> ARGS`` writes ARGS (NUL-separated) to
    the file ``$<record_env>`` names and exits 0, instead of starting what this machine cannot run
    (a GPU job); every other call goes to this interpreter."""
    path.write_text(_RECORDING_PYTHON.format(module=module, record_env=record_env, python=sys.executable), encoding="utf-8")
    path.chmod(0o755)
    return path

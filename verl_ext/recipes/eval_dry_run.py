"""Check an evaluation recipe's ``python -m verl_ext.eval`` arguments without a GPU or a judge.

Parses the arguments with the evaluation CLI's own parser, validates the sampling settings, the
prompt variant and the metrics asked, prints them, and with ``DRY_RUN_CONFIG=FILE`` writes them to FILE as YAML.

CLI: ``python -m verl_ext.recipes.eval_dry_run -- <arguments of python -m verl_ext.eval>``
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from verl_ext.recipes.errors import RecipeError

CONFIG_OUT_ENV = "DRY_RUN_CONFIG"


def check_eval_arguments(argv: Sequence[str]) -> dict[str, Any]:
    """The parsed, validated evaluation settings as plain values."""
    from verl_ext.core.prompts import PromptVariantError, resolve_prompt_text
    from verl_ext.data.prompt_file import read_prompt_file
    from verl_ext.eval.cli import build_parser, sampling_from_args
    from verl_ext.eval.open_world import parse_metrics
    from verl_ext.settings import SettingsError

    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:  # argparse already printed what is wrong
        raise RecipeError(f"python -m verl_ext.eval rejected the recipe's arguments (exit {exc.code})") from exc
    try:
        sampling_from_args(args)
    except SettingsError as exc:
        raise RecipeError(str(exc)) from exc
    try:
        resolve_prompt_text(args.prompt_variant, read_file=read_prompt_file)
    except PromptVariantError as exc:
        raise RecipeError(f"--prompt-variant: {exc}") from exc
    try:
        parse_metrics(args.metrics)
    except ValueError as exc:
        raise RecipeError(str(exc)) from exc
    return {key: (str(value) if isinstance(value, Path) else value) for key, value in sorted(vars(args).items())}


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        settings = check_eval_arguments(argv)
    except RecipeError as exc:
        print(f"[dry run] error: {exc}", file=sys.stderr)
        return 2
    print("[dry run] python -m verl_ext.eval " + " ".join(argv))
    for key, value in settings.items():
        print(f"  {key:<24} {value}")
    out = os.environ.get(CONFIG_OUT_ENV)
    if out:
        import yaml

        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(yaml.safe_dump({"eval": settings}, sort_keys=True), encoding="utf-8")
        print(f"[dry run] settings written to {out}")
    print("[dry run] OK: the evaluation arguments are valid; nothing was started")
    return 0


if __name__ == "__main__":
    sys.exit(main())

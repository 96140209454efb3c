"""The argument list a shell recipe hands to ``main_ppo``, and the settings the shell reads back.

``recipes/common.sh`` keeps only what must be shell (the GPU split, the judge's lifecycle,
data preparation, the traps); everything else is the recipe's Hydra config. This is the
bridge between the two, so that Hydra quoting and config reading happen in Python, once:

``python -m verl_ext.recipes.recipe_args names``
    the environment variables this module reads (the shell exports the ones a script set);
``python -m verl_ext.recipes.recipe_args build [--variant NAME] [--dry-run] [--string KEY VALUE]
[--list KEY VALUE] [--value KEY VALUE] -- [ARGUMENT ...]``
    composes the recipe (its config, the environment's aliases, the shell's own settings given
    as raw values, then the recipe's arguments) and prints NUL-terminated records:
    ``ARG=<argument>`` for the argument list to hand on, without the recipe's arguments (the
    shell adds its GPU count, then those arguments, last), then ``NAME=<value>`` for each
    setting in :data:`SHELL_VALUES`, as the composed config holds it.

Two settings are the machine's: with ``ATTN_IMPL`` unset or ``auto``, a config asking for
flash-attn on a machine without it falls back to ``sdpa`` (with a warning), and with
``USE_REMOVE_PADDING`` unset or ``auto``, remove-padding follows the attention (it needs flash-attn).
The output folder is made absolute: verl's default is relative to where it runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any, Mapping, Optional, Sequence

from verl_ext.recipes.compose import compose_arguments, hydra_list, hydra_quote, recipe_arguments, split_list
from verl_ext.recipes.environment import (
    ALIAS_BY_NAME,
    ALIASES,
    ATTN_KEY,
    REMOVE_PADDING_KEY,
    alias_overrides,
    alias_value,
)
from verl_ext.recipes.errors import RecipeError

OUTPUT_DIR_KEY = "trainer.default_local_dir"
FLASH_ATTENTION = "flash_attention_2"

#: shell variable -> config key: what common.sh reads back (GPU split, data, judge, preflight, logs)
SHELL_VALUES: dict[str, str] = {
    "MODEL_PATH": "actor_rollout_ref.model.path",
    "SPECIARL_JUDGE_MODEL": "reward.speciarl.judge.model",
    "ROLLOUT_TP": "actor_rollout_ref.rollout.tensor_model_parallel_size",
    "ROLLOUT_N": "actor_rollout_ref.rollout.n",
    "PPO_MINI_BATCH_SIZE": "actor_rollout_ref.actor.ppo_mini_batch_size",
    "TRAIN_FILES": "data.train_files",
    "VAL_FILES": "data.val_files",
    "EXPERIMENT_NAME": "trainer.experiment_name",
    "OUTPUT_DIR": OUTPUT_DIR_KEY,
}


def log(message: str) -> None:
    print(f"[speciarl] {message}", file=sys.stderr)


def shell_overrides(strings: Sequence[Sequence[str]], lists: Sequence[Sequence[str]], values: Sequence[Sequence[str]]) -> list[str]:
    """The shell's own settings, given as raw values, in Hydra's grammar."""
    overrides = [f"{key}={hydra_quote(value)}" for key, value in strings]
    overrides += [f"{key}={hydra_list(split_list(value))}" for key, value in lists]
    return overrides + [f"{key}={value}" for key, value in values]


def flash_attention_available() -> bool:
    try:
        importlib.import_module("flash_attn")
    except (ImportError, OSError, RuntimeError):  # absent, or built against another CUDA / torch
        return False
    return True


def machine_overrides(config: Any, environ: Mapping[str, str], *, dry_run: bool) -> list[str]:
    """Attention settings this machine needs that the config does not say (see the module docstring)."""
    from omegaconf import OmegaConf

    overrides = []
    attention = OmegaConf.select(config, ATTN_KEY)
    if alias_value(ALIAS_BY_NAME["ATTN_IMPL"], environ) is None and attention == FLASH_ATTENTION:
        if not dry_run and not flash_attention_available():
            log("flash-attn is not importable: using attn_implementation=sdpa without remove-padding (slower, more memory)")
            attention = "sdpa"
            overrides.append(f"{ATTN_KEY}={hydra_quote(attention)}")
    padding_follows = alias_value(ALIAS_BY_NAME["USE_REMOVE_PADDING"], environ) is None
    if padding_follows and attention != FLASH_ATTENTION and OmegaConf.select(config, REMOVE_PADDING_KEY):
        overrides.append(f"{REMOVE_PADDING_KEY}=False")
    return overrides


def read_back(config: Any, output_dir: str) -> dict[str, str]:
    """The :data:`SHELL_VALUES` as text: lists comma-separated, null as empty."""
    from omegaconf import ListConfig, OmegaConf

    values = {}
    for name, key in SHELL_VALUES.items():
        value = OmegaConf.select(config, key)
        if isinstance(value, ListConfig):
            value = ",".join(str(item) for item in value)
        values[name] = "" if value is None else str(value)
    values["OUTPUT_DIR"] = output_dir
    return values


def build(
    variant: Optional[str],
    shell: Sequence[str],
    arguments: Sequence[str],
    environ: Mapping[str, str],
    *,
    dry_run: bool,
) -> tuple[list[str], dict[str, str]]:
    """(the argument list up to the recipe's arguments, the values the shell reads back)."""
    selection = recipe_arguments(variant)
    aliases = alias_overrides(environ, compose_arguments(selection, verl_by_path=True))
    if aliases:
        log("from the environment: " + ", ".join(f"{name} -> {override.lstrip('+').split('=', 1)[0]}" for name, override in aliases))
    from omegaconf import OmegaConf

    head = selection + [override for _, override in aliases] + list(shell)
    config = compose_arguments(head + list(arguments), verl_by_path=True)
    output_dir = os.path.abspath(str(OmegaConf.select(config, OUTPUT_DIR_KEY)))
    head += machine_overrides(config, environ, dry_run=dry_run) + [f"{OUTPUT_DIR_KEY}={hydra_quote(output_dir)}"]
    return head, read_back(config, output_dir)


def _parse(argv: Sequence[str]) -> tuple[Any, list[str]]:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m verl_ext.recipes.recipe_args build", description=__doc__)
    parser.add_argument("--variant", help="a config in verl_ext/recipes/config/recipe/ (none: the main run)")
    parser.add_argument("--dry-run", action="store_true", help="no GPU here: assume the config's attention works")
    for kind in ("string", "list", "value"):
        parser.add_argument(f"--{kind}", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    own, separator, arguments = list(argv), "--", []
    if separator in own:
        split = own.index(separator)
        own, arguments = own[:split], own[split + 1:]
    return parser.parse_args(own), arguments


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["names"]:
        print("\n".join(alias.name for alias in ALIASES))
        return 0
    if argv[:1] != ["build"]:
        print(__doc__, file=sys.stderr)
        return 2
    options, arguments = _parse(argv[1:])
    try:
        head, values = build(
            options.variant,
            shell_overrides(options.string, options.list, options.value),
            arguments,
            os.environ,
            dry_run=options.dry_run,
        )
    except RecipeError as exc:
        log(f"error: {exc}")
        return 2
    records = [f"ARG={argument}" for argument in head] + [f"{name}={value}" for name, value in values.items()]
    sys.stdout.write("".join(f"{record}\0" for record in records))
    return 0


if __name__ == "__main__":
    sys.exit(main())

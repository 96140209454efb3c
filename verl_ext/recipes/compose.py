"""Compose a recipe's config from its argument list exactly as ``python -m verl.trainer.main_ppo`` does.

verl's ``main_ppo`` is ``@hydra.main(config_path="config", config_name="ppo_trainer")``. A recipe
hands it ``--config-path=pkg://verl_ext.recipes.config --config-name=speciarl [recipe=<variant>]``
and its overrides: ``speciarl.yaml`` extends verl's ``ppo_trainer`` (found through its
``hydra.searchpath``) with the paper's main run, and ``recipe/<variant>.yaml`` lays a variant
over it. The dry run and the shell read the same argument list through :func:`compose_arguments`,
which parses it with Hydra's own command-line parser and builds Hydra's own search path with
``main_ppo.py`` as the calling file, so ``--config-path``, ``--config-name`` and ``--config-dir``
mean exactly what they mean to ``main_ppo``.

Also the one place that writes a value in Hydra's override grammar (:func:`hydra_quote`).
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from verl_ext.recipes.errors import RecipeError

RECIPE_CONFIG_PATH = "pkg://verl_ext.recipes.config"
VERL_CONFIG_PACKAGE = "pkg://verl.trainer.config"
RECIPE_CONFIG_NAME = "speciarl"
#: The variants' config group (``recipe=<name>``, a file in ``verl_ext/recipes/config/recipe/``).
RECIPE_GROUP = "recipe"
#: ``main_ppo``'s own ``@hydra.main`` arguments: what an argument list without flags composes.
MAIN_PPO_CONFIG_PATH = "config"
MAIN_PPO_CONFIG_NAME = "ppo_trainer"
#: Hydra flags that do something other than compose one run.
_COMMAND_FLAGS = ("help", "hydra_help", "cfg", "info", "multirun", "shell_completion")


@dataclass(frozen=True)
class HydraArguments:
    """An argument list as Hydra reads it: where the config is, which one, and the overrides."""

    config_path: Optional[str]
    config_name: str
    config_dir: Optional[str]
    overrides: tuple[str, ...]


def recipe_arguments(variant: Optional[str]) -> list[str]:
    """The arguments that select a recipe's config: the main run, or a variant laid over it."""
    selection = [f"--config-path={RECIPE_CONFIG_PATH}", f"--config-name={RECIPE_CONFIG_NAME}"]
    return selection + ([f"{RECIPE_GROUP}={variant}"] if variant else [])


def verl_package_dir() -> Path:
    """verl's package folder, found without importing verl (which takes seconds)."""
    spec = importlib.util.find_spec("verl")
    if spec is None or not spec.submodule_search_locations:
        raise RecipeError("verl is not installed in this Python environment (pip install verl==0.9.1)")
    return Path(next(iter(spec.submodule_search_locations)))


def parse_arguments(argv: Sequence[str]) -> HydraArguments:
    """Split ``argv`` with Hydra's own parser (the one ``@hydra.main`` uses)."""
    from hydra._internal.utils import get_args_parser

    try:
        args = get_args_parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse has already printed the reason
        raise RecipeError(f"Hydra cannot parse the arguments {list(argv)}") from exc
    flags = [name for name in _COMMAND_FLAGS if getattr(args, name)]
    if flags:
        raise RecipeError(f"--{flags[0].replace('_', '-')} asks Hydra for something other than one run; drop it here")
    return HydraArguments(args.config_path, args.config_name or MAIN_PPO_CONFIG_NAME, args.config_dir, tuple(args.overrides))


def _search_path(arguments: HydraArguments) -> Any:
    """Hydra's search path for ``main_ppo`` given these arguments (``hydra._internal.utils._run_hydra``)."""
    from hydra._internal.utils import create_automatic_config_search_path
    from hydra.core.config_search_path import SearchPathQuery

    main_ppo = verl_package_dir() / "trainer" / "main_ppo.py"
    search_path = create_automatic_config_search_path(str(main_ppo), None, arguments.config_path or MAIN_PPO_CONFIG_PATH)
    if arguments.config_dir is not None:
        folder = os.path.abspath(arguments.config_dir)
        if not os.path.isdir(folder):
            raise RecipeError(f"--config-dir {folder} is not a folder")
        search_path.prepend(provider="command-line", path=f"file://{folder}", anchor=SearchPathQuery(provider="schema"))
    return search_path


def _verl_by_path(arguments: HydraArguments) -> list[str]:
    """``speciarl.yaml``'s own ``hydra.searchpath`` with verl's package named by its folder.

    The same files, found without importing verl: Hydra imports every ``pkg://`` package of the
    search path to check it, and ``import verl`` takes seconds. Only for our config, and only
    when the arguments do not set the search path themselves.
    """
    from omegaconf import OmegaConf

    ours = (arguments.config_path, arguments.config_name) == (RECIPE_CONFIG_PATH, RECIPE_CONFIG_NAME)
    if not ours or any(o.lstrip("+~").startswith("hydra.searchpath") for o in arguments.overrides):
        return []
    entries = OmegaConf.load(Path(__file__).parent / "config" / f"{RECIPE_CONFIG_NAME}.yaml").hydra.searchpath
    verl_config = f"file://{verl_package_dir() / 'trainer' / MAIN_PPO_CONFIG_PATH}"
    return [f"hydra.searchpath={hydra_list([verl_config if e == VERL_CONFIG_PACKAGE else e for e in entries])}"]


def compose_arguments(argv: Sequence[str], *, verl_by_path: bool = False) -> Any:
    """The config ``main_ppo`` would receive for ``argv``; :class:`RecipeError` if Hydra refuses it.

    ``verl_by_path``: read verl's configs by their file path (see :func:`_verl_by_path`).
    """
    from hydra import compose
    from hydra._internal.hydra import Hydra
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    arguments = parse_arguments(argv)
    GlobalHydra.instance().clear()
    try:
        Hydra.create_main_hydra2(task_name="main_ppo", config_search_path=_search_path(arguments))
        searchpath = _verl_by_path(arguments) if verl_by_path else []
        return compose(config_name=arguments.config_name, overrides=searchpath + list(arguments.overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise RecipeError(f"Hydra rejected the recipe's overrides: {first_line(exc)}") from exc
    finally:
        GlobalHydra.instance().clear()


def first_line(exc: BaseException) -> str:
    """An exception's message (and its cause's) on one line."""
    text = str(exc).strip()
    cause = exc.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip() not in text:
        text = f"{text} ({str(cause).strip()})"
    return " ".join(text.split())


def hydra_quote(text: str) -> str:
    r"""``text`` as one quoted string in Hydra's override grammar.

    Inside quotes Hydra keeps a backslash as it is, except before a quote or at the end,
    where backslashes come in escaped pairs; a quote is escaped with one backslash.

    >>> print(hydra_quote("it's"), hydra_quote(r".*visual\..*"), hydra_quote("C:\\"))
    'it\'s' '.*visual\..*' 'C:\\'
    """
    escaped = re.sub(r"(\\*)('|\Z)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)
    return f"'{escaped}'"


def hydra_list(items: Sequence[str]) -> str:
    """A list of quoted strings in Hydra's override grammar."""
    return "[" + ",".join(hydra_quote(item) for item in items) + "]"


def split_list(text: str) -> list[str]:
    """A comma-separated setting as its items, blanks around and empty items dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]

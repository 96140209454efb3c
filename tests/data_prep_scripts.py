"""Load the per-dataset scripts in data_prep/ (not a package) as modules, for tests."""

import importlib.util
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[1] / "data_prep"


def load_script(name: str) -> ModuleType:
    """``data_prep/<name>.py`` as a module (its ``SPEC``, ``read_layout``, ...)."""
    spec = importlib.util.spec_from_file_location(f"data_prep_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_spec(name: str):
    """The ``DatasetSpec`` declared by ``data_prep/<name>.py``."""
    return load_script(name).SPEC

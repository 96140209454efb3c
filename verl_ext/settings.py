"""One mechanism for the package's typed settings: pydantic models built once from a Hydra node.

Every group of user settings (``reward.speciarl``, its ``judge``, ``data.speciarl``) is a
:class:`Settings` model: each field states its type, default and allowed range or choices, and
:func:`load_settings` builds it from the OmegaConf node (or a plain mapping) at start-up. A
bad value or an unknown key raises the model's :class:`SettingsError` subclass with the full
key in the message::

    reward.speciarl.judge.timeout_s must be > 0, got -1
    unknown key data.speciarl.colour; known keys: on_bad_image, prompt_variant

Environment fallbacks are never part of a model: each group reads the environment in its one
factory (e.g. ``JudgeConfig.from_mapping``) before validating. The evaluation harness's
settings (``verl_ext.eval``) can adopt the same mechanism by subclassing :class:`Settings`.

Why pydantic rather than verl's ``omega_conf_to_dataclass``: OmegaConf's structured configs
check types but cannot state a range or a set of choices (no ``> 0``, no ``Literal``), so
every dataclass would keep a hand-written validator in ``__post_init__``, and their errors
name neither the full key nor the allowed values. Here constraints are declared on the field
and one formatter turns every error into a message that names the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Optional, TypeVar

from omegaconf import DictConfig, ListConfig, OmegaConf
from pydantic import BaseModel, ConfigDict, ValidationError

S = TypeVar("S", bound="Settings")


class SettingsError(ValueError):
    """A setting that cannot be used; the message names its full key and what is allowed."""


class InvalidSetting(ValueError):
    """Raised by a model-level validator about one key (``key``, relative to the model), so
    that the message names that key rather than the whole group. A message starting with
    "must" is appended to the key (``<key> must be ...``), any other after a colon."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class Settings(BaseModel):
    """Base of every settings model: immutable, and unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The exception :func:`load_settings` raises for this model (a :class:`SettingsError`).
    error: ClassVar[type[SettingsError]] = SettingsError


def plain(node: Any) -> Any:
    """An OmegaConf node as plain Python containers (interpolations resolved); anything else as is."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def load_settings(model: type[S], node: Any, key: str, derived: Optional[Mapping[str, tuple[str, Any]]] = None) -> S:
    """Validate ``node`` (a mapping, an OmegaConf node or ``None``) as ``model``.

    ``key`` is where the node sits in the trainer config (``"reward.speciarl"``); it prefixes
    every key in an error. A ``null`` value stands for the default of a field that does not
    accept ``None`` (how Hydra users reset a key). ``derived`` holds fields that come from
    elsewhere in the config, as ``{field: (source key, value)}``: the user may not set them
    under ``key``, and an error about them names their source key.
    """
    values = plain(node)
    if values is None:
        values = {}
    if not isinstance(values, Mapping):
        raise model.error(f"{key} must be a mapping of settings, got {values!r}")
    values = _drop_nulls(model, dict(values))
    derived = dict(derived or {})
    for name, (source, value) in derived.items():
        if name in values:
            raise model.error(f"{key}.{name} cannot be set: it comes from {source}")
        values[name] = value
    try:
        return model.model_validate(values)
    except ValidationError as error:
        sources = {name: source for name, (source, _) in derived.items()}
        messages = [_describe(model, problem, key, sources) for problem in error.errors()]
        raise model.error("; ".join(messages)) from None


def _drop_nulls(model: type[BaseModel], values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in values.items():
        field = model.model_fields.get(name)
        if value is None and field is not None and field.default is not None:
            continue
        sub = _settings_type(field.annotation) if field is not None else None
        out[name] = _drop_nulls(sub, value) if sub is not None and isinstance(value, dict) else value
    return out


def _settings_type(annotation: Any) -> Optional[type[BaseModel]]:
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _model_at(model: type[BaseModel], path: tuple[Any, ...]) -> Optional[type[BaseModel]]:
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        sub = _settings_type(field.annotation) if field is not None else None
        if sub is None:
            return None
        model = sub
    return model


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


#: pydantic error types -> what the value must be (the error's ``ctx`` fills the braces).
_MUST = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "literal_error": "must be one of {expected}",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def _describe(model: type[BaseModel], problem: Mapping[str, Any], key: str, sources: Mapping[str, str]) -> str:
    loc = tuple(problem["loc"])
    where = sources.get(loc[0]) if loc and loc[0] in sources else ".".join([key, *map(str, loc)])
    kind, ctx = problem["type"], problem.get("ctx") or {}
    if kind == "extra_forbidden":
        owner = _model_at(model, loc[:-1])
        settable = set(owner.model_fields) - (set(sources) if owner is model else set()) if owner else set()
        known = ", ".join(sorted(settable)) or "none"
        return f"unknown key {where}; known keys: {known}"
    if kind == "value_error":
        cause = ctx.get("error")
        if isinstance(cause, SettingsError):  # raised by a helper that named the key itself
            return str(cause)
        if isinstance(cause, InvalidSetting):
            where = f"{where}.{cause.key}"
        text = str(cause) if cause is not None else problem["msg"]
        return f"{where} {text}" if text.startswith("must") else f"{where}: {text}"
    if kind in _MUST:
        must = _MUST[kind].format(**{k: _number(v) for k, v in ctx.items()})
        return f"{where} {must}, got {problem['input']!r}"
    return f"{where}: {problem['msg']}, got {problem['input']!r}"

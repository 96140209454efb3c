"""Settings of the SpeciaRL reward manager, read once from the trainer config.

Everything lives under one key, ``reward.speciarl`` (added on the command line with
``+reward.speciarl.<name>=...``). Group sizes come from verl's own keys so they cannot
disagree with the rollout: ``actor_rollout_ref.rollout.n`` in training and
``actor_rollout_ref.rollout.val_kwargs.n`` in validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Optional

from verl_ext.core.rules import STATIC_REWARD_MAPS

RULES = ("best_in_group", *STATIC_REWARD_MAPS)
CONFIG_KEY = "reward.speciarl"


class SpeciaRLConfigError(ValueError):
    """A ``reward.speciarl`` setting is invalid; the message names the key."""


def _to_plain(node: Any) -> Any:
    """OmegaConf node (or anything mapping-like) to plain Python containers."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(node, (DictConfig, ListConfig)):
            return OmegaConf.to_container(node, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf ships with verl
        pass
    return node


def _select(config: Any, dotted: str, default: Any = None) -> Any:
    node = config
    for part in dotted.split("."):
        if node is None:
            return default
        try:
            node = node.get(part) if hasattr(node, "get") else getattr(node, part, None)
        except Exception:  # noqa: BLE001 - OmegaConf raises on missing struct keys
            return default
    return default if node is None else node


@dataclass(frozen=True)
class OverlongBufferConfig:
    """DAPO's overlong penalty: linear from ``max_len - len`` to ``max_len`` tokens, reaching -factor."""

    enable: bool = False
    len: int = 0
    penalty_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.enable and self.len <= 0:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}.overlong_buffer.len must be > 0 when enabled, got {self.len}")
        if self.penalty_factor < 0:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}.overlong_buffer.penalty_factor must be >= 0")


@dataclass(frozen=True)
class SpeciaRLRewardConfig:
    """Validated settings of the ``speciarl`` reward manager."""

    rule: str = "best_in_group"
    label_noise: float = 0.0
    seed: int = 0
    group_timeout_s: float = 600.0
    train_group_size: int = 1
    val_group_size: int = 1
    max_response_length: int = 0
    overlong_buffer: OverlongBufferConfig = field(default_factory=OverlongBufferConfig)
    judge: Mapping[str, Any] = field(default_factory=dict)
    coordinator_name: str = "speciarl_group_coordinator"
    metrics_path: Optional[str] = None

    def __post_init__(self) -> None:
        if self.rule not in RULES:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}.rule must be one of {', '.join(RULES)}; got {self.rule!r}")
        if not 0.0 <= self.label_noise <= 1.0:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}.label_noise must be in [0, 1]; got {self.label_noise}")
        if self.group_timeout_s <= 0:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}.group_timeout_s must be > 0; got {self.group_timeout_s}")
        for name in ("train_group_size", "val_group_size"):
            if getattr(self, name) < 1:
                raise SpeciaRLConfigError(f"group size must be >= 1 ({name}={getattr(self, name)})")
        if self.overlong_buffer.enable and self.overlong_buffer.len >= self.max_response_length > 0:
            raise SpeciaRLConfigError(
                f"{CONFIG_KEY}.overlong_buffer.len ({self.overlong_buffer.len}) must be smaller than "
                f"data.max_response_length ({self.max_response_length})"
            )

    @property
    def is_group_rule(self) -> bool:
        return self.rule == "best_in_group"

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any], **derived: Any) -> "SpeciaRLRewardConfig":
        """Build from the ``reward.speciarl`` mapping plus values derived from verl's keys."""
        settings = dict(_to_plain(settings) or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise SpeciaRLConfigError(f"unknown key(s) under {CONFIG_KEY}: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        overlong = settings.pop("overlong_buffer", None) or {}
        try:
            overlong_cfg = OverlongBufferConfig(**overlong)
        except TypeError as exc:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}.overlong_buffer: {exc}") from exc
        merged = {**settings, **{k: v for k, v in derived.items() if v is not None}}
        try:
            return cls(overlong_buffer=overlong_cfg, **merged)
        except TypeError as exc:
            raise SpeciaRLConfigError(f"{CONFIG_KEY}: {exc}") from exc

    @classmethod
    def from_trainer_config(cls, config: Any) -> "SpeciaRLRewardConfig":
        """Read ``reward.speciarl`` and the group sizes from the full verl trainer config."""
        settings = _to_plain(_select(config, "reward.speciarl", {})) or {}
        judge = settings.get("judge") or {}
        if not judge.get("impl"):
            _validate_judge_settings(judge)
        return cls.from_mapping(
            settings,
            train_group_size=int(_select(config, "actor_rollout_ref.rollout.n", 1)),
            val_group_size=int(_select(config, "actor_rollout_ref.rollout.val_kwargs.n", 1)),
            max_response_length=int(_select(config, "data.max_response_length", 0)),
        )


def _validate_judge_settings(judge: Mapping[str, Any]) -> None:
    """Fail at start-up on a bad judge setting, not at the first rollout."""
    from verl_ext.judge.config import JudgeConfig

    try:
        JudgeConfig.from_mapping(judge)
    except Exception as exc:  # noqa: BLE001 - re-raised with the key prefix
        raise SpeciaRLConfigError(f"{CONFIG_KEY}.judge: {exc}") from exc

"""Settings of the SpeciaRL reward manager, read once from the trainer config.

Everything lives under one key, ``reward.speciarl`` (added on the command line with
``+reward.speciarl.<name>=...``). Group sizes come from verl's own keys so they cannot
disagree with the rollout: ``actor_rollout_ref.rollout.n`` in training and
``actor_rollout_ref.rollout.val_kwargs.n`` in validation. Validation goes through the
package's one settings mechanism (``verl_ext.settings``).
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from omegaconf import DictConfig, OmegaConf
from pydantic import Field, model_validator

from verl_ext.core.rules import STATIC_REWARD_MAPS
from verl_ext.settings import InvalidSetting, Settings, SettingsError, load_settings

RULES = ("best_in_group", *STATIC_REWARD_MAPS)
CONFIG_KEY = "reward.speciarl"


class SpeciaRLConfigError(SettingsError):
    """A ``reward.speciarl`` setting is invalid; the message names the key."""


class OverlongBufferConfig(Settings):
    """DAPO's overlong penalty: linear from ``max_len - len`` to ``max_len`` tokens, reaching -factor."""

    error = SpeciaRLConfigError

    enable: bool = False
    len: int = Field(0, strict=True)
    penalty_factor: float = Field(1.0, ge=0, strict=True)

    @model_validator(mode="after")
    def _length_when_enabled(self) -> "OverlongBufferConfig":
        if self.enable and self.len <= 0:
            raise InvalidSetting("len", f"must be > 0 when enabled, got {self.len}")
        return self


class SpeciaRLRewardConfig(Settings):
    """Validated settings of the ``speciarl`` reward manager."""

    error = SpeciaRLConfigError

    rule: Literal[RULES] = "best_in_group"  # type: ignore[valid-type]
    label_noise: float = Field(0.0, ge=0, le=1, strict=True)
    seed: int = Field(0, strict=True)
    group_timeout_s: float = Field(600.0, gt=0, strict=True)
    overlong_buffer: OverlongBufferConfig = OverlongBufferConfig()
    #: The judge's settings as given: the HTTP client validates them (see ``from_trainer_config``),
    #: and a test double named by ``judge.impl`` reads its own keys.
    judge: dict[str, Any] = {}
    coordinator_name: str = "speciarl_group_coordinator"
    metrics_path: Optional[str] = None
    # Derived from verl's keys (see _DERIVED), never set under reward.speciarl.
    train_group_size: int = Field(1, ge=1, strict=True)
    val_group_size: int = Field(1, ge=1, strict=True)
    max_response_length: int = Field(0, ge=0, strict=True)

    @model_validator(mode="after")
    def _buffer_fits_the_response(self) -> "SpeciaRLRewardConfig":
        length = self.overlong_buffer.len
        if self.overlong_buffer.enable and length >= self.max_response_length > 0:
            raise InvalidSetting(
                "overlong_buffer.len",
                f"must be smaller than data.max_response_length ({self.max_response_length}), got {length}",
            )
        return self

    @classmethod
    def from_trainer_config(cls, config: Any) -> "SpeciaRLRewardConfig":
        """The factory: ``reward.speciarl`` and the group sizes from the full verl trainer config.

        The judge's settings are validated here too, with their environment fallbacks, so that
        a bad judge setting fails at start-up rather than at the first rollout.
        """
        if not isinstance(config, DictConfig):
            config = OmegaConf.create(config)
        derived = {}
        for name, (source, default) in _DERIVED.items():
            value = OmegaConf.select(config, source, default=None)
            derived[name] = (source, default if value is None else value)
        settings = load_settings(cls, OmegaConf.select(config, CONFIG_KEY, default=None), CONFIG_KEY, derived)
        if not settings.judge.get("impl"):
            from verl_ext.judge.config import JudgeConfig

            try:
                JudgeConfig.from_mapping(settings.judge, key=f"{CONFIG_KEY}.judge")
            except SettingsError as error:
                raise SpeciaRLConfigError(str(error)) from None
        return settings


#: Fields taken from verl's keys: name -> (verl key, default when the key is absent).
_DERIVED = {
    "train_group_size": ("actor_rollout_ref.rollout.n", 1),
    "val_group_size": ("actor_rollout_ref.rollout.val_kwargs.n", 1),
    "max_response_length": ("data.max_response_length", 0),
}

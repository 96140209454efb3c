"""The recipes' environment variables that name a Hydra key, and the override each one becomes.

Before the recipes' settings moved into Hydra YAML (``verl_ext/recipes/config``), every one of
them was an environment variable (``ROLLOUT_N=15 bash recipes/speciarl_qwen25vl7b.sh``). Each
such variable still works: when it is set and not empty it becomes ``KEY=VALUE``, placed after
the recipe's config and before the recipe's arguments, so a Hydra argument still wins. New
launch scripts should use the keys themselves; docs/recipes.md lists both.

The value is written for the key's node in the recipe's config: quoted for a string, a list for
a list (comma-separated), ``True``/``False`` for a flag, checked for a number; a key the config
lacks is added with ``+``. Settings that are the shell's own (GPUs, the judge's start-up, data
preparation) are not here: they stay environment variables (recipes/common.sh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from verl_ext.recipes.compose import hydra_list, hydra_quote, split_list
from verl_ext.recipes.errors import RecipeError

ATTN_KEY = "actor_rollout_ref.model.override_config.attn_implementation"
REMOVE_PADDING_KEY = "actor_rollout_ref.model.use_remove_padding"

_TRUE = ("1", "true", "yes")
_FALSE = ("0", "false", "no")
_ABSENT = object()


@dataclass(frozen=True)
class EnvironmentAlias:
    """An environment variable that sets one Hydra key."""

    name: str
    key: str
    #: a value that leaves the key to the config, as an empty one does (``ATTN_IMPL=auto``)
    unset: Optional[str] = None
    #: a value that sets the key to null (``JUDGE_CACHE_PATH=none``: no cache)
    null: Optional[str] = None


ALIASES: tuple[EnvironmentAlias, ...] = (
    # model
    EnvironmentAlias("MODEL_PATH", "actor_rollout_ref.model.path"),
    EnvironmentAlias("ATTN_IMPL", ATTN_KEY, unset="auto"),
    EnvironmentAlias("USE_REMOVE_PADDING", REMOVE_PADDING_KEY, unset="auto"),
    EnvironmentAlias("GRADIENT_CHECKPOINTING", "actor_rollout_ref.model.enable_gradient_checkpointing"),
    EnvironmentAlias("LORA_RANK", "actor_rollout_ref.model.lora_rank"),
    EnvironmentAlias("LORA_ALPHA", "actor_rollout_ref.model.lora_alpha"),
    EnvironmentAlias("LORA_TARGET_MODULES", "actor_rollout_ref.model.target_modules"),
    EnvironmentAlias("LORA_EXCLUDE_MODULES", "actor_rollout_ref.model.exclude_modules"),
    EnvironmentAlias("ACTOR_STRATEGY", "actor_rollout_ref.actor.strategy"),
    # data
    EnvironmentAlias("PROMPT_VARIANT", "data.speciarl.prompt_variant"),
    EnvironmentAlias("ON_BAD_IMAGE", "data.speciarl.on_bad_image"),
    EnvironmentAlias("MAX_PROMPT_LENGTH", "data.max_prompt_length"),
    EnvironmentAlias("MAX_RESPONSE_LENGTH", "data.max_response_length"),
    EnvironmentAlias("TRAIN_BATCH_SIZE", "data.train_batch_size"),
    EnvironmentAlias("GEN_BATCH_SIZE", "data.gen_batch_size"),
    # algorithm
    EnvironmentAlias("ADV_ESTIMATOR", "algorithm.adv_estimator"),
    EnvironmentAlias("NORM_ADV_BY_STD", "algorithm.norm_adv_by_std_in_grpo"),
    EnvironmentAlias("FILTER_GROUPS", "algorithm.filter_groups.enable"),
    EnvironmentAlias("FILTER_GROUPS_METRIC", "algorithm.filter_groups.metric"),
    EnvironmentAlias("FILTER_GROUPS_MAX_INFLIGHT", "algorithm.filter_groups.max_inflight_gen_batches"),
    EnvironmentAlias("LR", "actor_rollout_ref.actor.optim.lr"),
    EnvironmentAlias("PPO_MINI_BATCH_SIZE", "actor_rollout_ref.actor.ppo_mini_batch_size"),
    EnvironmentAlias("PPO_MICRO_BATCH_SIZE_PER_GPU", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"),
    EnvironmentAlias("LOG_PROB_MICRO_BATCH_SIZE_PER_GPU", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu"),
    EnvironmentAlias("USE_DYNAMIC_BSZ", "actor_rollout_ref.actor.use_dynamic_bsz"),
    EnvironmentAlias("PPO_MAX_TOKEN_LEN_PER_GPU", "actor_rollout_ref.actor.ppo_max_token_len_per_gpu"),
    EnvironmentAlias("USE_KL_LOSS", "actor_rollout_ref.actor.use_kl_loss"),
    EnvironmentAlias("KL_LOSS_COEF", "actor_rollout_ref.actor.kl_loss_coef"),
    EnvironmentAlias("KL_LOSS_TYPE", "actor_rollout_ref.actor.kl_loss_type"),
    EnvironmentAlias("ENTROPY_COEFF", "actor_rollout_ref.actor.entropy_coeff"),
    EnvironmentAlias("LOSS_AGG_MODE", "actor_rollout_ref.actor.loss_agg_mode"),
    EnvironmentAlias("CLIP_RATIO_LOW", "actor_rollout_ref.actor.clip_ratio_low"),
    EnvironmentAlias("CLIP_RATIO_HIGH", "actor_rollout_ref.actor.clip_ratio_high"),
    EnvironmentAlias("CLIP_RATIO_C", "actor_rollout_ref.actor.clip_ratio_c"),
    # rollout
    EnvironmentAlias("ROLLOUT_ENGINE", "actor_rollout_ref.rollout.name"),
    EnvironmentAlias("ROLLOUT_N", "actor_rollout_ref.rollout.n"),
    EnvironmentAlias("ROLLOUT_TP", "actor_rollout_ref.rollout.tensor_model_parallel_size"),
    EnvironmentAlias("ROLLOUT_GPU_MEMORY_UTILIZATION", "actor_rollout_ref.rollout.gpu_memory_utilization"),
    EnvironmentAlias("ROLLOUT_TEMPERATURE", "actor_rollout_ref.rollout.temperature"),
    # reward
    EnvironmentAlias("REWARD_RULE", "reward.speciarl.rule"),
    EnvironmentAlias("LABEL_NOISE", "reward.speciarl.label_noise"),
    EnvironmentAlias("REWARD_SEED", "reward.speciarl.seed"),
    EnvironmentAlias("GROUP_TIMEOUT_S", "reward.speciarl.group_timeout_s"),
    EnvironmentAlias("REWARD_NUM_WORKERS", "reward.num_workers"),
    EnvironmentAlias("OVERLONG_BUFFER", "reward.speciarl.overlong_buffer.enable"),
    EnvironmentAlias("OVERLONG_BUFFER_LEN", "reward.speciarl.overlong_buffer.len"),
    EnvironmentAlias("OVERLONG_PENALTY_FACTOR", "reward.speciarl.overlong_buffer.penalty_factor"),
    # judge (the recipes start or check the judge the config names)
    EnvironmentAlias("SPECIARL_JUDGE_MODEL", "reward.speciarl.judge.model"),
    EnvironmentAlias("JUDGE_ON_FAILURE", "reward.speciarl.judge.on_failure"),
    EnvironmentAlias("JUDGE_CONSTRAINT", "reward.speciarl.judge.constraint"),
    EnvironmentAlias("JUDGE_CACHE_PATH", "reward.speciarl.judge.cache_path", null="none"),
    # trainer
    EnvironmentAlias("PROJECT_NAME", "trainer.project_name"),
    EnvironmentAlias("EXPERIMENT_NAME", "trainer.experiment_name"),
    EnvironmentAlias("OUTPUT_DIR", "trainer.default_local_dir"),
    EnvironmentAlias("LOGGERS", "trainer.logger"),
    EnvironmentAlias("TOTAL_EPOCHS", "trainer.total_epochs"),
    EnvironmentAlias("TOTAL_TRAINING_STEPS", "trainer.total_training_steps"),
    EnvironmentAlias("TEST_FREQ", "trainer.test_freq"),
    EnvironmentAlias("SAVE_FREQ", "trainer.save_freq"),
    EnvironmentAlias("VAL_BEFORE_TRAIN", "trainer.val_before_train"),
)
ALIAS_BY_NAME = {alias.name: alias for alias in ALIASES}


def alias_value(alias: EnvironmentAlias, environ: Mapping[str, str]) -> Optional[str]:
    """The variable's value, or None when it leaves the key to the config (unset, empty, ``unset``)."""
    value = environ.get(alias.name, "")
    if not value.strip() or (alias.unset is not None and value.strip().lower() == alias.unset):
        return None
    return value


def _select(config: Any, key: str) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(config, key, default=_ABSENT, throw_on_missing=False)


def _number(alias: EnvironmentAlias, value: str) -> str:
    try:
        float(value)
    except ValueError:
        raise RecipeError(f"{alias.name}={value!r}: {alias.key} takes a number") from None
    return value.strip()


def render(alias: EnvironmentAlias, value: str, current: Any) -> str:
    """``value`` in Hydra's grammar for a key that now holds ``current``."""
    from omegaconf import ListConfig

    if alias.null is not None and value.strip().lower() == alias.null:
        return "null"
    if isinstance(current, (list, ListConfig)):
        return hydra_list(split_list(value))
    if isinstance(current, bool):
        word = value.strip().lower()
        if word not in _TRUE + _FALSE:
            raise RecipeError(f"{alias.name}={value!r}: {alias.key} takes true or false")
        return "True" if word in _TRUE else "False"
    if isinstance(current, (int, float)):
        return _number(alias, value)
    if current is None:  # verl leaves it unset; numbers stay numbers, as the bash recipes wrote them
        try:
            return _number(alias, value)
        except RecipeError:
            return hydra_quote(value)
    return hydra_quote(value)


def alias_overrides(environ: Mapping[str, str], config: Any) -> list[tuple[str, str]]:
    """``(variable, override)`` for every alias set in ``environ``, written for ``config``'s nodes."""
    overrides = []
    for alias in ALIASES:
        value = alias_value(alias, environ)
        if value is None:
            continue
        current = _select(config, alias.key)
        prefix = "+" if current is _ABSENT else ""
        overrides.append((alias.name, f"{prefix}{alias.key}={render(alias, value, None if current is _ABSENT else current)}"))
    return overrides

"""Compose and validate a recipe's full verl config on any machine, without a GPU.

A misspelt Hydra override otherwise fails only once a cluster job has started. The recipes
call this module instead of ``verl.trainer.main_ppo`` when ``DRY_RUN=1``, with the same
arguments:

1. compose the config exactly as ``main_ppo`` would (``verl_ext.recipes.compose``: the
   recipe's YAML over verl's ``ppo_trainer``; Hydra rejects unknown keys that lack a ``+``);
2. run verl's own ``validate_config``, exactly as ``main_ppo`` does;
3. run ours: the ``reward.speciarl`` settings, the judge settings, that the reward manager and
   the dataset class can be loaded, and the GPU arithmetic verl leaves to runtime;
4. print the settings that define the experiment and, with ``DRY_RUN_CONFIG=FILE``, write the
   whole resolved config to FILE as YAML.

CLI: ``python -m verl_ext.recipes.dry_run [--config-path=... --config-name=...] OVERRIDE ...``
(exit 0 = valid, 2 = not).
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from verl_ext.recipes.compose import compose_arguments, first_line, parse_arguments
from verl_ext.recipes.errors import RecipeError

CONFIG_OUT_ENV = "DRY_RUN_CONFIG"
#: verl's fallback list of LoRA ranks vLLM accepts (used when vLLM itself is not installed).
VLLM_MAX_LORA_RANK = 512


def _select(cfg: Any, key: str, default: Any = None) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, key, default=default)


def run_verl_validation(cfg: Any) -> list[str]:
    """verl's ``validate_config`` as ``main_ppo`` calls it; returns notes on checks done our way."""
    notes: list[str] = []
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config

    checked = cfg
    lora_rank = int(_select(cfg, "actor_rollout_ref.model.lora_rank", 0) or 0)
    uses_vllm = _select(cfg, "actor_rollout_ref.rollout.name") == "vllm"
    if lora_rank > 0 and uses_vllm and importlib.util.find_spec("vllm") is None:
        # verl asks vLLM for its allowed LoRA ranks, importing vLLM (absent on CPU machines).
        # Check the rank against verl's own fallback list instead and validate the rest as is.
        if lora_rank > VLLM_MAX_LORA_RANK:
            raise RecipeError(f"actor_rollout_ref.model.lora_rank={lora_rank} exceeds vLLM's maximum {VLLM_MAX_LORA_RANK}")
        checked = copy.deepcopy(cfg)
        checked.actor_rollout_ref.model.lora_rank = 0
        notes.append(f"vLLM not installed here: LoRA rank {lora_rank} checked against vLLM's maximum {VLLM_MAX_LORA_RANK}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # need_critic warns that GRPO has no critic, which is intended
        use_ref, use_critic = need_reference_policy(checked), need_critic(checked)
    try:
        validate_config(config=checked, use_reference_policy=use_ref, use_critic=use_critic)
    except (AssertionError, ValueError, TypeError, KeyError) as exc:
        raise RecipeError(f"verl's validate_config rejected the config: {first_line(exc) or type(exc).__name__}") from exc
    return notes


def _load_class(path: str, name: str, what: str) -> type:
    """Load ``name`` from ``path`` with verl's own loader (``pkg://`` or a file), as verl will at run time."""
    from verl.utils.import_utils import load_extern_object

    try:
        return load_extern_object(path, name)
    except (ImportError, FileNotFoundError, AttributeError, RuntimeError) as exc:
        cause = exc.__cause__ or exc
        raise RecipeError(f"{what}: cannot load {name!r} from {path}: {first_line(cause) or type(cause).__name__}") from exc


def check_reward_manager(cfg: Any) -> str:
    """Resolve the reward manager now; verl would only fail once the reward loop starts."""
    source = _select(cfg, "reward.reward_manager.source", "register")
    name = _select(cfg, "reward.reward_manager.name")
    if source == "importlib":
        path = _select(cfg, "reward.reward_manager.module.path")
        if not path:
            raise RecipeError("reward.reward_manager.source=importlib needs reward.reward_manager.module.path")
        cls = _load_class(path, name, "reward.reward_manager")
        return f"{cls.__module__}.{cls.__qualname__}"
    if source != "register":
        raise RecipeError(f"reward.reward_manager.source must be 'register' or 'importlib', got {source!r}")
    import verl  # noqa: F401  loads plugins (our entry point registers "speciarl")
    import verl.experimental.reward_loop.reward_manager  # noqa: F401  registers verl's own managers
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER

    if name not in REWARD_MANAGER:
        known = ", ".join(sorted(REWARD_MANAGER))
        raise RecipeError(f"reward.reward_manager.name={name!r} is not a registered reward manager; known: {known}")
    cls = REWARD_MANAGER[name]
    return f"{cls.__module__}.{cls.__qualname__}"


def check_trainer_mode(cfg: Any) -> str:
    """``trainer.v1.trainer_mode`` must name a registered trainer; verl would fail in the TaskRunner."""
    mode = _select(cfg, "trainer.v1.trainer_mode", "sync")
    if not _select(cfg, "trainer.use_v1", True):
        return "legacy trainer (trainer.use_v1=False)"
    import verl  # noqa: F401  loads plugins (our entry point registers the "speciarl" mode)
    from verl.trainer.ppo.v1 import get_trainer_cls

    try:
        cls = get_trainer_cls(mode)
    except ValueError as exc:
        raise RecipeError(f"trainer.v1.trainer_mode={mode!r}: {exc}") from exc
    return f"{cls.__module__}.{cls.__qualname__}"


def check_agent_loop_manager(cfg: Any) -> Optional[str]:
    """A custom agent-loop manager class must load; verl would fail only at start-up."""
    fqn = _select(cfg, "actor_rollout_ref.rollout.agent.agent_loop_manager_class")
    if not fqn:
        return None
    from verl.utils.import_utils import load_class_from_fqn

    try:
        cls = load_class_from_fqn(fqn, "AgentLoopManager")
    except (ImportError, AttributeError, ValueError) as exc:
        raise RecipeError(f"actor_rollout_ref.rollout.agent.agent_loop_manager_class={fqn!r}: {exc}") from exc
    return f"{cls.__module__}.{cls.__qualname__}"


def check_dataset_class(cfg: Any) -> Optional[str]:
    path, name = _select(cfg, "data.custom_cls.path"), _select(cfg, "data.custom_cls.name")
    if not path:
        return None
    cls = _load_class(path, name, "data.custom_cls")
    if cls.__module__.startswith("verl_ext."):
        from verl_ext.data.dataset import DatasetSettingsError, FineGrainedDataSettings

        try:
            FineGrainedDataSettings.from_data_config(cfg.data)
        except DatasetSettingsError as exc:
            raise RecipeError(str(exc)) from exc
    elif _select(cfg, "data.speciarl") is not None:
        raise RecipeError(f"data.speciarl.* is set but the dataset class is {cls.__module__}.{cls.__qualname__}, which ignores it")
    return f"{cls.__module__}.{cls.__qualname__}"


def _uses_speciarl_manager(manager: str) -> bool:
    return manager.startswith("verl_ext.")


def check_speciarl_settings(cfg: Any, manager: str) -> Any:
    """Our reward and judge settings, validated exactly as the reward workers will."""
    if not _uses_speciarl_manager(manager):
        if _select(cfg, "reward.speciarl") is not None:
            raise RecipeError(f"reward.speciarl.* is set but the reward manager is {manager}, which ignores it")
        return None
    from verl_ext.reward.config import SpeciaRLRewardConfig
    from verl_ext.reward.capacity import check_worker_capacity
    from verl_ext.settings import SettingsError

    try:
        settings = SpeciaRLRewardConfig.from_trainer_config(cfg)  # the judge's settings too
        check_worker_capacity(cfg)
    except SettingsError as exc:
        raise RecipeError(str(exc)) from exc
    return settings


def check_filter_groups(cfg: Any, manager: str) -> None:
    """DAPO dynamic sampling reads a ``reward_extra_info`` key; a wrong name fails mid-run in verl."""
    if not _select(cfg, "algorithm.filter_groups.enable", False):
        return
    metric = _select(cfg, "algorithm.filter_groups.metric")
    if not metric:
        raise RecipeError("algorithm.filter_groups.enable=True needs algorithm.filter_groups.metric")
    if metric == "reward" or not _uses_speciarl_manager(manager):
        return
    from verl_ext.reward.extra_info import EXTRA_INFO_KEYS

    if metric not in EXTRA_INFO_KEYS:
        raise RecipeError(
            f"algorithm.filter_groups.metric={metric!r} is not a reward_extra_info key of the speciarl reward "
            f"manager; use 'reward' or one of: {', '.join(EXTRA_INFO_KEYS)}"
        )


def check_gpu_arithmetic(cfg: Any) -> list[str]:
    """What verl checks only once workers start: rollout TP fits the GPUs, batches split evenly."""
    notes: list[str] = []
    n_gpus = int(_select(cfg, "trainer.n_gpus_per_node")) * int(_select(cfg, "trainer.nnodes"))
    tp = int(_select(cfg, "actor_rollout_ref.rollout.tensor_model_parallel_size"))
    if n_gpus % tp:
        raise RecipeError(
            f"trainer.n_gpus_per_node x trainer.nnodes = {n_gpus} GPUs is not a multiple of "
            f"actor_rollout_ref.rollout.tensor_model_parallel_size={tp}"
        )
    mini = int(_select(cfg, "actor_rollout_ref.actor.ppo_mini_batch_size")) * int(_select(cfg, "actor_rollout_ref.rollout.n"))
    if mini % n_gpus:
        notes.append(
            f"WARNING: {mini} responses per mini-batch do not split evenly over {n_gpus} GPUs; "
            "verl pads every step with no-op samples (wasted compute)"
        )
    return notes


def _file_state(files: Any) -> str:
    items = [files] if isinstance(files, str) else list(files or [])
    return ", ".join(f"{f} ({'present' if Path(os.path.expanduser(str(f))).exists() else 'missing'})" for f in items)


SUMMARY_KEYS: tuple[tuple[str, str], ...] = (
    ("model", "actor_rollout_ref.model.path"),
    ("LoRA rank / alpha", "actor_rollout_ref.model.lora_rank|actor_rollout_ref.model.lora_alpha"),
    ("LoRA target / exclude", "actor_rollout_ref.model.target_modules|actor_rollout_ref.model.exclude_modules"),
    ("attention", "actor_rollout_ref.model.override_config.attn_implementation"),
    ("advantage estimator", "algorithm.adv_estimator|algorithm.norm_adv_by_std_in_grpo"),
    ("lr", "actor_rollout_ref.actor.optim.lr"),
    ("prompts x rollouts", "data.train_batch_size|actor_rollout_ref.rollout.n"),
    ("mini-batch / micro per GPU", "actor_rollout_ref.actor.ppo_mini_batch_size|actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu"),
    ("dynamic bsz / max tokens per GPU", "actor_rollout_ref.actor.use_dynamic_bsz|actor_rollout_ref.actor.ppo_max_token_len_per_gpu"),
    ("KL loss / coef / type", "actor_rollout_ref.actor.use_kl_loss|actor_rollout_ref.actor.kl_loss_coef|actor_rollout_ref.actor.kl_loss_type"),
    ("entropy coef", "actor_rollout_ref.actor.entropy_coeff"),
    ("loss aggregation", "actor_rollout_ref.actor.loss_agg_mode"),
    ("clip low / high / c", "actor_rollout_ref.actor.clip_ratio_low|actor_rollout_ref.actor.clip_ratio_high|actor_rollout_ref.actor.clip_ratio_c"),
    ("prompt / response tokens", "data.max_prompt_length|data.max_response_length"),
    ("epochs / test_freq / save_freq", "trainer.total_epochs|trainer.test_freq|trainer.save_freq"),
    ("GPUs per node x nodes", "trainer.n_gpus_per_node|trainer.nnodes"),
    ("rollout engine / TP / mem", "actor_rollout_ref.rollout.name|actor_rollout_ref.rollout.tensor_model_parallel_size|actor_rollout_ref.rollout.gpu_memory_utilization"),
    ("DAPO filter groups", "algorithm.filter_groups.enable|algorithm.filter_groups.metric|algorithm.filter_groups.max_inflight_gen_batches"),
    ("reward manager", "reward.reward_manager.source|reward.reward_manager.name|reward.reward_manager.module.path"),
    ("reward workers", "reward.num_workers"),
    ("reward rule / label noise", "reward.speciarl.rule|reward.speciarl.label_noise"),
    ("overlong buffer", "reward.speciarl.overlong_buffer.enable|reward.speciarl.overlong_buffer.len|reward.speciarl.overlong_buffer.penalty_factor"),
    ("judge URLs / model", "reward.speciarl.judge.urls|reward.speciarl.judge.model"),
    ("dataset class", "data.custom_cls.path|data.custom_cls.name"),
    ("prompt variant", "data.speciarl.prompt_variant"),
    ("logger / experiment", "trainer.logger|trainer.experiment_name"),
    ("trainer mode", "trainer.v1.trainer_mode"),
)


def summarise(cfg: Any, summary_keys: Sequence[tuple[str, str]] = SUMMARY_KEYS) -> list[str]:
    """One line per setting that defines the experiment (``summary_keys``: label, ``key|key...``), then the data files."""
    lines = []
    for label, keys in summary_keys:
        values = [_select(cfg, key) for key in keys.split("|")]
        rendered = " / ".join("-" if v is None else str(v) for v in values)
        lines.append(f"  {label:<34} {rendered}")
    lines.append(f"  {'train files':<34} {_file_state(_select(cfg, 'data.train_files'))}")
    lines.append(f"  {'val files':<34} {_file_state(_select(cfg, 'data.val_files'))}")
    return lines


def echo_notes_and_write(cfg: Any, notes: Sequence[str], config_out: Optional[str], echo: Callable[[str], None]) -> None:
    """The end of every dry run's report: its notes, then the resolved YAML if asked for."""
    for note in notes:
        echo(f"  note: {note}")
    if config_out:
        write_resolved_yaml(cfg, config_out)
        echo(f"[dry run] resolved config written to {config_out}")


def write_resolved_yaml(cfg: Any, path: str) -> None:
    from omegaconf import OmegaConf

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")


def describe_selection(argv: Sequence[str]) -> str:
    """Which config the arguments compose, in words."""
    arguments = parse_arguments(argv)
    where = arguments.config_path or "verl's own config folder"
    return f"config {arguments.config_name} from {where} with {len(arguments.overrides)} overrides"


def dry_run(
    overrides: Sequence[str],
    *,
    config_out: Optional[str] = None,
    echo: Callable[[str], None] = print,
) -> Any:
    """Compose, validate, summarise and optionally write the config; raises RecipeError if invalid."""
    cfg = compose_arguments(overrides)
    notes = run_verl_validation(cfg)
    manager = check_reward_manager(cfg)
    dataset = check_dataset_class(cfg)
    trainer = check_trainer_mode(cfg)
    check_agent_loop_manager(cfg)
    check_filter_groups(cfg, manager)  # a misspelt metric before the sizes it would change
    check_speciarl_settings(cfg, manager)
    notes += check_gpu_arithmetic(cfg)
    echo(f"[dry run] {describe_selection(overrides)}")
    for line in summarise(cfg):
        echo(line)
    echo(f"  {'reward manager class':<34} {manager}")
    echo(f"  {'trainer class':<34} {trainer}")
    echo(f"  {'dataset class (resolved)':<34} {dataset or 'verl RLHFDataset'}")
    echo_notes_and_write(cfg, notes, config_out, echo)
    echo("[dry run] OK: the config is valid; nothing was started")
    return cfg


def main(argv: Optional[Sequence[str]] = None) -> int:
    overrides = list(sys.argv[1:] if argv is None else argv)
    if overrides[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    try:
        dry_run(overrides, config_out=os.environ.get(CONFIG_OUT_ENV) or None)
    except RecipeError as exc:
        print(f"[dry run] error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

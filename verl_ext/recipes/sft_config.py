"""Compose and check the SFT recipe's config before anything starts: the dry run and the preflight.

``recipes/sft_qwen25vl7b.sh`` runs verl 0.9's own SFT trainer (``torchrun -m
verl.trainer.sft_trainer``) with the primary config ``recipes/config/sft_qwen25vl7b.yaml``,
which extends verl's ``sft_trainer_engine``. A wrong setting otherwise fails only once torchrun
has started a process per GPU and each has loaded the model. This module, on any machine:

1. composes the config as the trainer's ``@hydra.main`` does with ``--config-path`` and
   ``--config-name`` (Hydra rejects a mistyped key that has no ``+``);
2. builds the dataclasses ``SFTTrainer._build_config`` builds (engine, optim, checkpoint,
   profiler) and checks its profiler interval as verl does, minus verl's bare asserts;
3. checks what verl leaves to runtime or gets silently wrong: a global batch that does not
   split over the GPUs (verl gives each rank ``train_batch_size // world`` rows, so a step
   trains on fewer rows than asked), flash-attention asked for where it is not installed, the
   LoRA exclusion regex, a custom dataset class, the data files;
4. prints the settings that define the run and, with ``DRY_RUN_CONFIG=FILE``, writes the whole
   resolved config as YAML.

The model config (``HFModelConfig``) is not built: it loads the tokenizer and weights' config
from ``model.path``, which a dry run does not have.

CLI (exit 0 = fine, 2 = a problem the message explains)::

    python -m verl_ext.recipes.sft_config dry-run   --config recipes/config/sft_qwen25vl7b.yaml OVERRIDE...
    python -m verl_ext.recipes.sft_config preflight --config recipes/config/sft_qwen25vl7b.yaml OVERRIDE...
    python -m verl_ext.recipes.sft_config gpus      # the GPUs torch sees (what torchrun would use)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from verl_ext.recipes.compose import compose_arguments, first_line
from verl_ext.recipes.dry_run import _select, echo_notes_and_write, summarise
from verl_ext.recipes.errors import RecipeError

CONFIG_OUT_ENV = "DRY_RUN_CONFIG"
#: The sections ``SFTTrainer._build_config`` turns into dataclasses (``verl/trainer/sft_trainer.py``).
DATACLASS_SECTIONS = ("engine", "optim", "checkpoint", "profiler")
#: What verl's ``MultiTurnSFTDataset`` accepts (it asserts them one row at a time).
PAD_MODES, TRUNCATIONS = ("right", "no_padding"), ("error", "left", "right")
SFT_COLUMNS = ("messages", "images")

SUMMARY_KEYS: tuple[tuple[str, str], ...] = (
    ("model", "model.path"),
    ("LoRA rank / alpha", "model.lora_rank|model.lora_alpha"),
    ("LoRA target / exclude", "model.target_modules|model.exclude_modules"),
    ("attention / remove padding", "model.override_config.attn_implementation|model.use_remove_padding"),
    ("engine strategy", "engine.strategy"),
    ("lr / scheduler / warm-up ratio", "optim.lr|optim.lr_scheduler_type|optim.lr_warmup_steps_ratio"),
    ("weight decay / grad clip", "optim.weight_decay|optim.clip_grad"),
    ("images per step", "data.train_batch_size"),
    ("dynamic bsz / max tokens per GPU", "data.use_dynamic_bsz|data.max_token_len_per_gpu"),
    ("max length / truncation / padding", "data.max_length|data.truncation|data.pad_mode"),
    ("epochs / total steps", "trainer.total_epochs|trainer.total_training_steps"),
    ("save_freq / test_freq", "trainer.save_freq|trainer.test_freq"),
    ("GPUs per node x nodes", "trainer.n_gpus_per_node|trainer.nnodes"),
    ("logger / experiment", "trainer.logger|trainer.experiment_name"),
    ("checkpoints", "trainer.default_local_dir"),
)


def compose_sft_config(config_file: str | Path, overrides: Sequence[str]) -> Any:
    """The config ``--config-path DIR --config-name NAME`` plus ``overrides`` give the SFT trainer."""
    path = Path(config_file).resolve()
    if not path.is_file():
        raise RecipeError(f"SFT config {path} does not exist")
    return compose_arguments([f"--config-path={path.parent}", f"--config-name={path.stem}", *overrides])


def build_trainer_dataclasses(cfg: Any) -> None:
    """What ``SFTTrainer._build_config`` builds first; a bad value fails here with its section."""
    from hydra.errors import HydraException
    from verl.utils.config import omega_conf_to_dataclass

    for section in DATACLASS_SECTIONS:
        try:
            omega_conf_to_dataclass(cfg[section])
        except HydraException as exc:  # instantiation wraps the dataclass's own assert / ValueError
            cause = exc.__cause__ or exc
            raise RecipeError(f"{section}: verl rejected the settings: {first_line(cause) or type(cause).__name__}") from exc
        except (AssertionError, ValueError, TypeError, KeyError) as exc:
            raise RecipeError(f"{section}: verl rejected the settings: {first_line(exc) or type(exc).__name__}") from exc
    interval = list(_select(cfg, "trainer.profile_interval", [-1, -1]))
    if len(interval) != 2 or interval[1] < interval[0] or (interval[0] < 0 <= interval[1]):
        raise RecipeError(f"trainer.profile_interval={interval}: give [start, end] with end >= start, or [-1, -1]")


def check_data(cfg: Any, strict: bool) -> None:
    """Settings verl's dataset asserts row by row, and (``strict``) the files themselves."""
    pad, truncation = _select(cfg, "data.pad_mode"), _select(cfg, "data.truncation")
    if pad not in PAD_MODES:
        raise RecipeError(f"data.pad_mode={pad!r}: verl's SFT dataset accepts {list(PAD_MODES)}")
    if truncation not in TRUNCATIONS:
        raise RecipeError(f"data.truncation={truncation!r}: verl's SFT dataset accepts {list(TRUNCATIONS)}")
    if not _files(_select(cfg, "data.train_files")):
        raise RecipeError("data.train_files is empty: the recipe sets it to the SFT parquet it builds")
    if not strict:
        return
    import pyarrow.parquet as pq

    for key in ("data.train_files", "data.val_files"):
        for file in _files(_select(cfg, key)):
            if not Path(file).is_file():
                raise RecipeError(f"{key}: {file} does not exist")
            columns = pq.ParquetFile(file).schema_arrow.names
            missing = [c for c in SFT_COLUMNS if c not in columns]
            if missing:
                raise RecipeError(f"{key}: {file} has no column(s) {missing}; build it with python -m verl_ext.data_prep.sft")


def _files(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def check_batch_split(cfg: Any) -> None:
    """verl's SFT trainer floors the per-rank batch; a remainder silently shrinks every step."""
    world = int(_select(cfg, "trainer.n_gpus_per_node")) * int(_select(cfg, "trainer.nnodes"))
    batch = int(_select(cfg, "data.train_batch_size"))
    if world < 1:
        raise RecipeError(f"trainer.n_gpus_per_node x trainer.nnodes = {world}: need at least one GPU")
    if batch % world:
        raise RecipeError(
            f"data.train_batch_size={batch} does not split over {world} GPUs: verl's SFT trainer gives each rank "
            f"{batch} // {world} = {batch // world} rows, so every step would train on {batch // world * world}; "
            f"use a multiple of {world}"
        )


def check_model_settings(cfg: Any, strict: bool) -> list[str]:
    """The LoRA exclusion regex, and flash-attention where the config asks for it."""
    notes: list[str] = []
    exclude = _select(cfg, "model.exclude_modules")
    if isinstance(exclude, str):
        try:
            re.compile(exclude)
        except re.error as exc:
            raise RecipeError(f"model.exclude_modules={exclude!r} is not a regular expression: {exc}") from exc
    attention = _select(cfg, "model.override_config.attn_implementation", "flash_attention_2")
    wants_flash = attention == "flash_attention_2" or bool(_select(cfg, "model.use_remove_padding"))
    if wants_flash and importlib.util.find_spec("flash_attn") is None:
        message = ("flash-attn is not installed here, but the config asks for it (attn_implementation="
                   f"{attention}, use_remove_padding={_select(cfg, 'model.use_remove_padding')}); install it "
                   "(pip install -e '.[gpu]') or pass ++model.override_config.attn_implementation=sdpa "
                   "model.use_remove_padding=False")
        if strict:
            raise RecipeError(message)
        notes.append(message)
    return notes


def check_dataset_class(cfg: Any) -> str:
    """A ``data.custom_cls`` must load now; verl would fail only once every rank has started."""
    path, name = _select(cfg, "data.custom_cls.path"), _select(cfg, "data.custom_cls.name")
    if not path:
        return "verl.utils.dataset.multiturn_sft_dataset.MultiTurnSFTDataset"
    from verl.utils.import_utils import load_extern_object

    try:
        cls = load_extern_object(path, name)
    except (ImportError, AttributeError, OSError, ValueError) as exc:
        raise RecipeError(f"data.custom_cls: cannot load {name!r} from {path}: {first_line(exc)}") from exc
    return f"{cls.__module__}.{cls.__qualname__}"


def check_sft_config(
    config_file: str | Path,
    overrides: Sequence[str],
    *,
    strict: bool,
    config_out: Optional[str] = None,
    echo: Callable[[str], None] = print,
) -> Any:
    """Compose and check; ``strict`` (the preflight) also needs the files and flash-attention."""
    cfg = compose_sft_config(config_file, overrides)
    build_trainer_dataclasses(cfg)
    check_data(cfg, strict)
    check_batch_split(cfg)
    notes = check_model_settings(cfg, strict)
    dataset = check_dataset_class(cfg)
    echo(f"[{'preflight' if strict else 'dry run'}] SFT config {config_file} composed with {len(overrides)} overrides")
    for line in summarise(cfg, SUMMARY_KEYS):
        echo(line)
    echo(f"  {'dataset class':<34} {dataset}")
    echo_notes_and_write(cfg, notes, config_out, echo)
    return cfg


def visible_gpu_count() -> int:
    """The GPUs torch sees (``CUDA_VISIBLE_DEVICES`` respected): what ``torchrun --nproc-per-node gpu`` uses."""
    import torch

    return torch.cuda.device_count()


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verl_ext.recipes.sft_config", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("dry-run", "compose and check; missing files and flash-attn are notes"),
                            ("preflight", "the same before a real launch: files and flash-attn must be there")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("--config", required=True, help="the primary SFT config (a YAML file)")
        command.add_argument("overrides", nargs=argparse.REMAINDER, help="Hydra overrides, as on the trainer's command line")
    sub.add_parser("gpus", help="print the number of GPUs torch sees")
    args = parser.parse_args(argv)
    if args.command == "gpus":
        count = visible_gpu_count()
        if count < 1:
            print("error: no GPU visible to torch (CUDA_VISIBLE_DEVICES, driver?); SFT training needs GPUs "
                  "(DRY_RUN=1 checks the config without one)", file=sys.stderr)
            return 2
        print(count)
        return 0
    strict = args.command == "preflight"
    try:
        check_sft_config(args.config, args.overrides, strict=strict,
                         config_out=None if strict else os.environ.get(CONFIG_OUT_ENV) or None)
    except RecipeError as exc:
        print(f"[{args.command}] error: {exc}", file=sys.stderr)
        return 2
    if not strict:
        print("[dry run] OK: the SFT config is valid; nothing was started")
    return 0


if __name__ == "__main__":
    sys.exit(main())

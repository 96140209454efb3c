"""A CPU backend for verl 0.9.1: run the real ``main_ppo`` without a GPU, for tests only.

It lets CI and a laptop run the whole training loop (FSDP2 over gloo, the V1 trainer, Ray,
TransferQueue, the agent loop, the reward loop, checkpoints) with the offline kit's tiny
model. It proves that the pieces work together; it says nothing about speed, GPU memory,
vLLM, FSDP1 or flash-attention, which stay untested here (docs/testing.md).

Never on by accident. It is loaded into every verl process through verl's own
``VERL_USE_EXTERNAL_MODULES`` and activates only when ``VERL_PLATFORM=cpu`` asks for it too::

    export VERL_USE_EXTERNAL_MODULES=verl_ext.testing.cpu_backend VERL_PLATFORM=cpu

(``cpu_backend_env()`` returns these). Then it registers

* the ``cpu`` platform with verl's platform registry (``platform.py``),
* the ``hf_cpu`` rollout (``rollout.py``) with verl's rollout registries,
* the small patches in ``patches.py``,

and ``cpu_overrides()`` gives the Hydra overrides a CPU run of ``main_ppo`` needs on top of a
recipe's own; ``cpu_sft_overrides()`` those of the SFT trainer (``verl.trainer.sft_trainer``,
launched by torchrun), which the same platform and patches run.
"""

from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

logger = logging.getLogger(__name__)

MODULE = __name__
PLATFORM_ENV = "VERL_PLATFORM"
EXTERNAL_MODULES_ENV = "VERL_USE_EXTERNAL_MODULES"
PLATFORM_NAME = "cpu"
ROLLOUT_NAME = "hf_cpu"

_activated = False


def requested() -> bool:
    """Whether this process was asked to run verl on the CPU platform."""
    return os.environ.get(PLATFORM_ENV, "").strip().lower() == PLATFORM_NAME


def cpu_backend_env() -> dict[str, str]:
    """The environment that turns the backend on in every verl process of a run."""
    return {EXTERNAL_MODULES_ENV: MODULE, PLATFORM_ENV: PLATFORM_NAME}


def activate() -> None:
    """Register the platform, the rollout and the patches (idempotent)."""
    global _activated
    if _activated:
        return
    from verl.plugin.platform.platform_manager import PlatformRegistry
    from verl.workers.rollout import base as rollout_base
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    from verl_ext.testing.cpu_backend import patches
    from verl_ext.testing.cpu_backend.platform import PlatformCPU

    PlatformRegistry.register(platform=PLATFORM_NAME)(PlatformCPU)

    def load_replica():
        from verl_ext.testing.cpu_backend.rollout import HFReplica

        return HFReplica

    RolloutReplicaRegistry.register(ROLLOUT_NAME, load_replica)
    # verl finds the worker-side adapter of a rollout through this private table
    # (get_rollout_class in verl/workers/rollout/base.py); it has no public register.
    rollout_base._ROLLOUT_REGISTRY[(ROLLOUT_NAME, "async")] = f"{MODULE}.rollout.HFServerAdapter"
    patches.apply_all()
    _activated = True


def cpu_overrides(
    *,
    gpus: int = 1,
    answers_file: Optional[str] = None,
    log_dir: Optional[str] = None,
    logical_cpus: int = 16,
) -> list[str]:
    """Hydra overrides that make a recipe's config run on the CPU backend.

    ``gpus`` simulated GPU ranks (FSDP2 world size). ``logical_cpus``: Ray must believe it has
    enough CPUs for verl's ``{CPU: 3, GPU: 1}`` placement bundles, or the run waits forever.
    """
    overrides = [
        f"actor_rollout_ref.rollout.name={ROLLOUT_NAME}",
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        # FSDP1 needs GPU tensors (verl hard-codes sync_module_states=True); FSDP2 runs on gloo.
        "actor_rollout_ref.actor.strategy=fsdp2",
        # The CPU server loads full tensors; it does not apply adapters.
        "actor_rollout_ref.model.lora.merge=True",
        # No flash-attn on CPU: verl's defaults (flash_attention_2, remove-padding) need it.
        "actor_rollout_ref.model.use_remove_padding=False",
        "++actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "trainer.device=cpu",
        f"trainer.n_gpus_per_node={gpus}",
        f"+ray_kwargs.ray_init.num_gpus={gpus}",
        f"+ray_kwargs.ray_init.num_cpus={logical_cpus}",
        "+ray_kwargs.ray_init.include_dashboard=False",
        # verl's defaults start 8 storage actors and 8 agent-loop workers: slow on 2 cores.
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "data.dataloader_num_workers=0",
    ]
    if answers_file:
        overrides.append(f"+actor_rollout_ref.rollout.custom.cpu_backend.answers_file={answers_file}")
    if log_dir:
        overrides.append(f"+actor_rollout_ref.rollout.custom.cpu_backend.log_dir={log_dir}")
    return overrides


def cpu_sft_overrides() -> list[str]:
    """Hydra overrides that make an SFT recipe's config (verl's ``sft_trainer_engine``) run on CPU.

    The SFT trainer is launched by torchrun, not Ray: the world size is torchrun's
    ``--nproc-per-node``, and nothing needs simulated GPUs or logical CPUs.
    """
    return [
        # FSDP1 needs GPU tensors (verl hard-codes sync_module_states=True); FSDP2 runs on gloo.
        "engine.strategy=fsdp2",
        # No flash-attn on CPU: verl's defaults (flash_attention_2, remove-padding) need it.
        "model.use_remove_padding=False",
        "++model.override_config.attn_implementation=sdpa",
        # Compiling verl's loss helpers takes longer on 2 cores than the whole run.
        "engine.use_torch_compile=False",
        "trainer.device=cpu",
        # verl's default of 8 dataloader processes per rank is slow on 2 cores.
        "data.num_workers=0",
    ]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m verl_ext.testing.cpu_backend overrides|env``: for shell scripts."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m verl_ext.testing.cpu_backend", description=main.__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    over = sub.add_parser("overrides", help="print the Hydra overrides of a CPU run, one per line")
    over.add_argument("--trainer", choices=("ppo", "sft"), default="ppo",
                      help="ppo: main_ppo's config (default); sft: the SFT trainer's (verl.trainer.sft_trainer)")
    over.add_argument("--gpus", type=int, default=1, help="simulated GPU ranks (default 1; ppo only)")
    over.add_argument("--answers-file", help="JSON list of answer labels the CPU rollout scripts")
    over.add_argument("--log-dir", help="folder for the rollout's weight-sync and request logs")
    sub.add_parser("env", help="print the environment that turns the backend on, as NAME=VALUE lines")
    args = parser.parse_args(argv)
    if args.command == "overrides" and args.trainer == "sft":
        lines = cpu_sft_overrides()
    elif args.command == "overrides":
        lines = cpu_overrides(gpus=args.gpus, answers_file=args.answers_file, log_dir=args.log_dir)
    else:
        lines = [f"{name}={value}" for name, value in cpu_backend_env().items()]
    print("\n".join(lines))
    return 0


if requested():
    activate()

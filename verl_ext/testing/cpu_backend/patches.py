"""The few changes verl 0.9.1 needs to train on CPU, each in one place, each checked by a test.

Every patch names the verl function it targets and why. ``tests/test_cpu_backend.py``
asserts that each target still looks the way the patch expects, so a verl upgrade that moves
or changes one fails there, with the name of the patch, instead of deep inside a training run.
"""

from __future__ import annotations

import inspect
import os
from datetime import timedelta

#: The process-group backend string on CPU: gloo for every tensor.
CPU_PROCESS_GROUP_BACKEND = "cpu:gloo"

#: verl's own switch for the engine registry's device lookup (``EngineRegistry.get_engine_cls``
#: in ``verl/workers/engine/base.py``): its FSDP engines are registered for ``cuda`` and
#: ``npu`` only, and they run unchanged on CPU once the platform says so.
ENGINE_DEVICE_ENV = "VERL_ENGINE_DEVICE"


def patch_process_group_backend() -> None:
    """``verl.utils.distributed.initialize_global_process_group_ray``: default backend gloo only.

    verl builds ``f"cpu:gloo,{device}:{backend}"``, which on the CPU platform is
    ``"cpu:gloo,cpu:gloo"``, and torch rejects a device type named twice. Its callers import
    the function by name (``from verl.utils.distributed import ...``), so rebinding the module
    attribute would miss them: the function object's own default for ``backend`` changes.
    """
    from verl.utils.distributed import initialize_global_process_group_ray

    parameters = list(inspect.signature(initialize_global_process_group_ray).parameters)
    if parameters != ["timeout_second", "backend"]:
        raise RuntimeError(
            "verl changed initialize_global_process_group_ray's signature to "
            f"{parameters}; update verl_ext/testing/cpu_backend/patches.py"
        )
    initialize_global_process_group_ray.__defaults__ = (None, CPU_PROCESS_GROUP_BACKEND)


def patch_spmd_process_group() -> None:
    """``verl.utils.distributed.initialize_global_process_group``: the same process group on gloo only.

    torchrun's entry (``verl.trainer.sft_trainer.run_sft``, the SFT trainer) builds the same
    ``"cpu:gloo,cpu:gloo"`` string as the Ray one, but takes no ``backend`` argument. Its one
    caller imports it inside ``run_sft`` at call time, so rebinding the module attribute
    reaches it. Same steps as verl's: init the group from torchrun's environment, then return
    ``(local_rank, rank, world_size)``.
    """
    from verl.utils import distributed

    current = distributed.initialize_global_process_group
    if getattr(current, "_cpu_backend", False):
        return
    parameters = list(inspect.signature(current).parameters)
    if parameters != ["timeout_second"]:
        raise RuntimeError(
            "verl changed initialize_global_process_group's signature to "
            f"{parameters}; update verl_ext/testing/cpu_backend/patches.py"
        )
    default_timeout = current.__defaults__[0]

    def initialize_global_process_group(timeout_second=default_timeout):
        import torch.distributed

        torch.distributed.init_process_group(
            backend=CPU_PROCESS_GROUP_BACKEND,
            timeout=timedelta(seconds=timeout_second),
            init_method=os.environ.get("DIST_INIT_METHOD", None),
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    initialize_global_process_group._cpu_backend = True
    distributed.initialize_global_process_group = initialize_global_process_group


def select_fsdp_engines() -> None:
    """Make verl's engine registry pick its FSDP engines (registered for ``cuda``) on CPU."""
    os.environ.setdefault(ENGINE_DEVICE_ENV, "cuda")


def apply_all() -> None:
    patch_process_group_backend()
    patch_spmd_process_group()
    select_fsdp_engines()

"""The few changes verl 0.9.1 needs to train on CPU, each in one place, each checked by a test.

Every patch names the verl function it targets and why. ``tests/test_cpu_backend.py``
asserts that each target still looks the way the patch expects, so a verl upgrade that moves
or changes one fails there, with the name of the patch, instead of deep inside a training run.
"""

from __future__ import annotations

import inspect
import os

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


def select_fsdp_engines() -> None:
    """Make verl's engine registry pick its FSDP engines (registered for ``cuda``) on CPU."""
    os.environ.setdefault(ENGINE_DEVICE_ENV, "cuda")


def apply_all() -> None:
    patch_process_group_backend()
    select_fsdp_engines()

"""verl's platform interface answered for a machine without accelerators.

verl 0.9.1 ships platforms for NVIDIA, Ascend and ROCm only (``verl/plugin/platform``) and, on
a machine with none of them, falls back to NVIDIA: device ``cuda``, backend ``nccl``. This
platform says what a CPU run needs instead:

* device ``cpu`` and a stand-in for ``torch.cuda`` (``device.py``);
* collectives over gloo (FSDP2 needs all-gather, reduce-scatter, all-reduce and barrier,
  which gloo supports on this torch);
* Ray resource name ``GPU``: verl's resource pools ask Ray for GPUs unconditionally
  (``RayResourcePoolManager.create_resource_pool`` passes ``use_gpu=True``), so the run
  declares simulated GPUs with ``ray_init.num_gpus`` and every rank takes one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Optional

from verl.plugin.platform.platform_base import PlatformBase

from verl_ext.testing.cpu_backend.device import CPU_DEVICE

#: The name ``VERL_PLATFORM`` selects this platform by.
PLATFORM_NAME = "cpu"


class PlatformCPU(PlatformBase):
    """verl on CPUs only, for tests and for checking an install (never for real training)."""

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> Any:
        return CPU_DEVICE

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        # Never auto-detected: only VERL_PLATFORM=cpu selects it (see cpu_backend/__init__.py).
        return False

    def current_device(self) -> str:
        # verl passes get_device_id() to tensor.to(...); an int would mean cuda:N.
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: Optional[int] = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        CPU_DEVICE.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        CPU_DEVICE.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None  # expandable segments etc. are CUDA allocator settings

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[Optional[int], Optional[int]]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray sets it for the simulated GPUs it hands out; nothing reads it on CPU.
        return "CUDA_VISIBLE_DEVICES"

    @contextmanager
    def nvtx_range(self, msg: str):
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "GPU"

    def ray_noset_envvars(self) -> list[str]:
        return ["RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES"]

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None

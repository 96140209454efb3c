"""A stand-in for ``torch.cuda`` on a machine without GPUs (what verl's ``get_torch_device()`` returns).

verl calls ``get_torch_device().<name>`` for device selection, synchronisation, memory
bookkeeping and RNG state. On the CPU platform every one of those has a harmless answer:
there is one device called ``"cpu"``, nothing to synchronise, no cache to empty, and the RNG
state is the CPU generator's. What ``torch.cpu`` already provides (streams, events, device
count) is used as it is. A name verl asks for that is not here raises ``AttributeError``
naming it, so a new verl call shows up as a clear failure instead of a silent no-op.
"""

from __future__ import annotations

import psutil
import torch


class CpuDeviceModule:
    """The answers verl 0.9.1 needs from ``torch.cuda``, for the CPU."""

    # torch.cpu's own: Stream, Event, StreamContext, stream, current_stream, synchronize, ...
    Stream = torch.cpu.Stream
    Event = torch.cpu.Event
    StreamContext = torch.cpu.StreamContext
    stream = staticmethod(torch.cpu.stream)
    current_stream = staticmethod(torch.cpu.current_stream)
    synchronize = staticmethod(torch.cpu.synchronize)

    @staticmethod
    def is_available() -> bool:
        return True

    @staticmethod
    def current_device() -> str:
        return "cpu"

    @staticmethod
    def device_count() -> int:
        return 1

    @staticmethod
    def set_device(device: object) -> None:
        return None

    @staticmethod
    def get_device_name(device: object = None) -> str:
        return "cpu"

    # ---- memory: nothing is cached; report the process and the machine honestly
    @staticmethod
    def empty_cache() -> None:
        return None

    @staticmethod
    def ipc_collect() -> None:
        return None

    @staticmethod
    def mem_get_info(device: object = None) -> tuple[int, int]:
        memory = psutil.virtual_memory()
        return int(memory.available), int(memory.total)

    @staticmethod
    def memory_allocated(device: object = None) -> int:
        return int(psutil.Process().memory_info().rss)

    memory_reserved = memory_allocated
    max_memory_allocated = memory_allocated
    max_memory_reserved = memory_allocated

    @staticmethod
    def reset_peak_memory_stats(device: object = None) -> None:
        return None

    @staticmethod
    def set_per_process_memory_fraction(fraction: float, device: object = None) -> None:
        return None

    # ---- RNG: the CPU generator
    @staticmethod
    def get_rng_state(device: object = None) -> torch.Tensor:
        return torch.get_rng_state()

    @staticmethod
    def set_rng_state(state: torch.Tensor, device: object = None) -> None:
        torch.set_rng_state(state)

    @staticmethod
    def manual_seed(seed: int) -> None:
        torch.manual_seed(seed)

    manual_seed_all = manual_seed

    def __getattr__(self, name: str):  # only reached for names not defined above
        raise AttributeError(
            f"the CPU test backend's stand-in for torch.cuda has no {name!r}: verl called something new; "
            "add a harmless CPU answer to verl_ext/testing/cpu_backend/device.py"
        )


#: The single instance verl's platform hands out as ``device_module``.
CPU_DEVICE = CpuDeviceModule()

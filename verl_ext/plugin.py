"""verl plugin module: imported by ``import verl`` through the ``verl.plugins`` entry point.

verl loads this module in every process that imports verl (driver, TaskRunner, reward-loop
and agent-loop workers) and swallows import errors at DEBUG level, so everything imported
here must import cleanly on a CPU-only machine. Registration happens at import time.
"""

from verl_ext.reward import manager as _reward_manager  # noqa: F401  registers "speciarl"

#: Set at import; tests use it to prove that the entry point ran.
LOADED = True

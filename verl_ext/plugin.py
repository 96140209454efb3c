"""verl plugin module: imported by ``import verl`` through the ``verl.plugins`` entry point.

verl loads this module in every process that imports verl (driver, TaskRunner, reward-loop
and agent-loop workers) and swallows import errors at DEBUG level, so everything imported
here must import cleanly on a CPU-only machine. Registration happens at import time:

* the ``speciarl`` reward manager, at once (every reward worker needs it);
* the ``speciarl`` trainer mode, when verl's V1 trainer module is imported. Importing that
  module here would pull verl's training engines into every process (about a second each)
  and resolve verl's device platform before an explicitly chosen one could be registered,
  so a post-import hook (``wrapt``) registers it in the processes that load the trainer.
"""

import logging

import wrapt

from verl_ext.reward import manager as _reward_manager  # noqa: F401  registers "speciarl"

logger = logging.getLogger(__name__)

#: verl's module that holds ``register_trainer`` and the trainer registry.
TRAINER_MODULE = "verl.trainer.ppo.v1.trainer_base"


@wrapt.when_imported(TRAINER_MODULE)
def _register_trainer_mode(_module) -> None:
    try:
        from verl_ext.trainer import speciarl  # noqa: F401  registers trainer.v1.trainer_mode=speciarl
    except Exception:  # noqa: BLE001 - verl would hide this at DEBUG level; say it where users look
        logger.exception("verl_ext: could not register the 'speciarl' trainer mode")
        raise


#: Set at import; tests use it to prove that the entry point ran.
LOADED = True

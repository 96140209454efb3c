"""verl finds our plugin through the `verl.plugins` entry point, in a fresh interpreter."""

import json
import os
import subprocess
import sys

PROBE = """
import json, sys
import verl
from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
print(json.dumps({
    "plugin_loaded": "verl_ext.plugin" in sys.modules,
    "registered": "speciarl" in REWARD_MANAGER,
    "cls": REWARD_MANAGER["speciarl"].__module__ + "." + REWARD_MANAGER["speciarl"].__name__ if "speciarl" in REWARD_MANAGER else None,
}))
"""


def _probe(extra_env=None):
    env = {k: v for k, v in os.environ.items() if k not in ("VERL_USE_EXTERNAL_MODULES", "VERL_USE_EXTERNAL_PLUGINS")}
    env.update(extra_env or {})
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=180, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_verl_loads_our_plugin_through_the_entry_point_alone():
    result = _probe()
    assert result == {
        "plugin_loaded": True,
        "registered": True,
        "cls": "verl_ext.reward.manager.SpeciaRLRewardManager",
    }


def test_plugin_is_not_loaded_when_verl_plugins_are_disabled():
    """Shows the first test can fail: with plugins off, nothing imports verl_ext."""
    result = _probe({"VERL_USE_EXTERNAL_PLUGINS": "none"})
    assert result["plugin_loaded"] is False and result["registered"] is False


def test_manager_resolves_by_name_and_by_importlib():
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import resolve_reward_manager_cls

    from verl_ext.reward.manager import SpeciaRLRewardManager

    by_name = OmegaConf.create({"reward": {"reward_manager": {"source": "register", "name": "speciarl"}}})
    by_module = OmegaConf.create(
        {"reward": {"reward_manager": {"source": "importlib", "name": "SpeciaRLRewardManager",
                                        "module": {"path": "pkg://verl_ext.reward.manager"}}}}
    )
    assert resolve_reward_manager_cls(by_name) is SpeciaRLRewardManager
    assert resolve_reward_manager_cls(by_module) is SpeciaRLRewardManager

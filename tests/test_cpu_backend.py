"""The CPU test backend: opt-in only, and every assumption it makes about verl 0.9.1 still holds.

Each patch and registration in ``verl_ext.testing.cpu_backend`` targets a verl function or
table by name; these tests fail, naming the assumption, when a verl upgrade changes one. The
rollout server's own behaviour (generation, scripted answers, weight loading) is tested in
process with the offline kit, without Ray.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

VERL = Path(__import__("importlib").util.find_spec("verl").submodule_search_locations[0])


def _probe(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter (verl resolves its platform once per process)."""
    import os

    base = {k: v for k, v in os.environ.items() if k not in ("VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES")}
    result = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


STATE = """
import json, sys
import verl
from verl.plugin.platform.platform_manager import PlatformRegistry
from verl.workers.rollout.replica import RolloutReplicaRegistry
from verl.workers.rollout import base
from verl.utils import distributed
from verl.utils.distributed import initialize_global_process_group_ray
from verl.utils.device import get_device_name

def state():
    return {
        "platforms": list(PlatformRegistry.registered_names()),
        "replicas": sorted(RolloutReplicaRegistry._registry),
        "adapters": sorted(name for name, _ in base._ROLLOUT_REGISTRY),
        "pg_defaults": list(initialize_global_process_group_ray.__defaults__),
        "spmd_patched": getattr(distributed.initialize_global_process_group, "_cpu_backend", False),
        "device": get_device_name(),
        "plugin_loaded": "verl_ext.plugin" in sys.modules,
        "testing_imported": any(m.startswith("verl_ext.testing") for m in sys.modules),
    }
"""


def test_a_plain_verl_process_never_gets_the_cpu_backend():
    """What a GPU user runs: our plugin loads, nothing of the test backend does, and importing
    the backend without ``VERL_PLATFORM=cpu`` registers nothing either."""
    seen = _probe(STATE + """
plain = state()
import verl_ext.testing.cpu_backend
print(json.dumps({"plain": plain, "imported": state()}))
""")
    plain, imported = seen["plain"], seen["imported"]
    assert plain["plugin_loaded"] and not plain["testing_imported"]
    for current in (plain, imported):
        assert "cpu" not in current["platforms"] and "hf_cpu" not in current["replicas"] and "hf_cpu" not in current["adapters"]
        assert current["pg_defaults"] == [None, None] and current["device"] == "cuda" and not current["spmd_patched"]


def test_the_documented_environment_turns_it_on_in_every_verl_process():
    from verl_ext.testing.cpu_backend import cpu_backend_env

    seen = _probe(STATE + "print(json.dumps(state()))", **cpu_backend_env())
    assert "cpu" in seen["platforms"] and "hf_cpu" in seen["replicas"] and "hf_cpu" in seen["adapters"]
    assert seen["device"] == "cpu" and seen["pg_defaults"] == [None, "cpu:gloo"] and seen["spmd_patched"]


# ------------------------------------------------------------------ verl's side of each patch
def test_process_group_patch_target_still_builds_the_duplicate_backend_string():
    """patches.patch_process_group_backend: verl still builds ``cpu:gloo,<device>:<backend>``."""
    from verl.utils.distributed import initialize_global_process_group_ray

    assert list(inspect.signature(initialize_global_process_group_ray).parameters) == ["timeout_second", "backend"]
    assert 'f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"' in inspect.getsource(initialize_global_process_group_ray)


def test_spmd_process_group_patch_target_is_still_imported_by_the_sft_trainer_at_call_time():
    """patches.patch_spmd_process_group: the torchrun entry builds the same string and is looked up late."""
    from verl.trainer import sft_trainer
    from verl.utils.distributed import initialize_global_process_group

    assert list(inspect.signature(initialize_global_process_group).parameters) == ["timeout_second"]
    assert 'f"cpu:gloo,{get_device_name()}:{get_nccl_backend()}"' in inspect.getsource(initialize_global_process_group)
    # rebinding the module attribute reaches run_sft only because it imports the name inside the function
    assert "from verl.utils.distributed import initialize_global_process_group" in inspect.getsource(sft_trainer.run_sft)
    assert "initialize_global_process_group" not in vars(sft_trainer)


def test_engine_lookup_still_needs_verls_device_override():
    """patches.select_fsdp_engines: FSDP engines are registered for cuda, and VERL_ENGINE_DEVICE is read."""
    from verl.workers.engine.base import EngineRegistry

    registry = EngineRegistry._engines["language_model"]["fsdp2"]
    assert "cuda" in registry and "cpu" not in registry
    assert 'os.getenv("VERL_ENGINE_DEVICE")' in inspect.getsource(EngineRegistry.get_engine_cls)


def test_rollout_adapter_table_is_still_the_private_dict_we_extend():
    from verl.workers.rollout import base

    assert isinstance(base._ROLLOUT_REGISTRY, dict) and ("vllm", "async") in base._ROLLOUT_REGISTRY
    assert "_ROLLOUT_REGISTRY[(rollout_name, mode)]" in inspect.getsource(base.get_rollout_class)


def test_the_cpu_device_answers_every_torch_cuda_call_verl_makes():
    """Every ``get_torch_device().<name>`` in verl's source has a CPU answer."""
    from verl_ext.testing.cpu_backend.device import CPU_DEVICE

    called = set()
    for path in VERL.rglob("*.py"):
        called |= set(re.findall(r"get_torch_device\(\)\.([A-Za-z_]+)", path.read_text(encoding="utf-8", errors="ignore")))
    assert len(called) > 10
    missing = sorted(name for name in called if not hasattr(CPU_DEVICE, name))
    assert not missing, f"verl calls get_torch_device().{missing}: add CPU answers to cpu_backend/device.py"
    with pytest.raises(AttributeError, match="cpu_backend/device.py"):
        CPU_DEVICE.some_new_cuda_call  # noqa: B018


def test_the_cpu_platform_implements_verls_whole_platform_interface():
    from verl_ext.testing.cpu_backend.platform import PlatformCPU

    platform = PlatformCPU()  # an abstract method left out would raise TypeError here
    assert (platform.device_name, platform.communication_backend_name(), platform.ray_resource_name()) == ("cpu", "gloo", "GPU")
    assert platform.current_device() == "cpu"  # verl passes it to tensor.to(...)
    assert not platform.is_platform_available(use_smi_check=True)  # never auto-detected


def test_the_rollout_server_answers_every_call_verls_replicas_make():
    """The server calls in verl's replica and checkpoint code exist on ``HFRolloutServer``."""
    from verl_ext.testing.cpu_backend.rollout import HFRolloutServer

    sources = [VERL / "workers/rollout/replica.py", VERL / "checkpoint_engine/base.py", VERL / "workers/rollout/llm_server.py"]
    called = set()
    for path in sources:
        called |= set(re.findall(r"server\.([a-z_]+)\.remote", path.read_text(encoding="utf-8")))
    assert {"generate", "wake_up", "sleep", "abort_all_requests", "resume_generation"} <= called
    missing = sorted(name for name in called if not callable(getattr(HFRolloutServer, name, None)))
    assert not missing, f"verl calls server.{missing}; HFRolloutServer lacks them"


# ------------------------------------------------------------------ the rollout itself
def _server(offline_kit, tmp_path, **script):
    from omegaconf import OmegaConf

    from verl_ext.recipes.compose import compose_arguments
    from verl_ext.testing.cpu_backend.rollout import HFRolloutServer
    from verl_ext.testing.cpu_backend.scripted import CUSTOM_KEY

    config = compose_arguments([
        "actor_rollout_ref.rollout.name=vllm", f"actor_rollout_ref.model.path={offline_kit.path}",
        "data.max_prompt_length=256", "data.max_response_length=48",
    ])
    rollout = config.actor_rollout_ref.rollout
    OmegaConf.update(rollout, "custom", {CUSTOM_KEY: {"log_dir": str(tmp_path), **script}}, force_add=True)
    return HFRolloutServer(rollout, config.actor_rollout_ref.model, None, replica_rank=0)


def _prompt(offline_kit, image):
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Classify the image."}]}]
    text = offline_kit.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return offline_kit.processor(text=[text], images=[image], return_tensors="pt")["input_ids"][0].tolist()


async def test_generation_is_real_images_included_and_never_emits_placeholder_tokens(offline_kit, tmp_path):
    from verl_ext.testing import synthetic_image

    server = _server(offline_kit, tmp_path)  # no scripted answers: the model's own tokens
    image = synthetic_image(1, size=(64, 48))
    prompt = _prompt(offline_kit, image)
    out = await server.generate(prompt, {"temperature": 1.0, "top_p": 1.0, "top_k": -1, "logprobs": True}, "r1", image_data=[image])
    assert 1 <= len(out.token_ids) <= 48 and len(out.log_probs) == len(out.token_ids)
    assert all(lp <= 0.0 for lp in out.log_probs)
    assert not set(out.token_ids) & set(server.suppressed_ids)
    assert offline_kit.image_token_id in server.suppressed_ids
    greedy = [(await server.generate(prompt, {"temperature": 0}, f"g{i}", image_data=[image])).token_ids for i in range(2)]
    assert greedy[0] == greedy[1]  # temperature 0 is greedy
    short = await server.generate(prompt, {"temperature": 0, "max_tokens": 5}, "m1", image_data=[image])
    assert len(greedy[0]) > 5 and short.token_ids == greedy[0][:5]  # max_tokens cuts the same greedy answer short


async def test_scripted_answers_vary_across_siblings_and_keep_the_policy_format(offline_kit, tmp_path):
    from verl_ext.core.answer import extract_answer
    from verl_ext.testing import synthetic_image

    labels = ["Laysan Albatross", "albatross", "bird", "None"]
    server = _server(offline_kit, tmp_path, answers=labels, raw_share=0.0, uniform_share=0.0)  # every prompt varied
    image = synthetic_image(2, size=(64, 48))
    prompt = _prompt(offline_kit, image)
    texts = []
    for i in range(12):
        out = await server.generate(prompt, {"temperature": 1.0}, f"s{i}", image_data=[image])
        assert out.token_ids[-1] == server.eos_token_id
        texts.append(offline_kit.tokenizer.decode(out.token_ids, skip_special_tokens=True))
    answers = [extract_answer(t) for t in texts]
    assert set(answers) <= set(labels) and len(set(answers)) > 1
    events = [json.loads(line) for line in (tmp_path / "rollout_server_0.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "generate" and e["scripted"] for e in events) == 12


async def test_weights_load_by_name_with_a_checksum_and_unknown_names_fail_loudly(offline_kit, tmp_path):
    import torch

    from verl_ext.testing.cpu_backend.rollout import weights_checksum

    server = _server(offline_kit, tmp_path)
    state = server.model.state_dict()
    name = next(k for k in state if k.endswith("q_proj.weight"))
    new = [(name, torch.full_like(state[name], 0.5))]
    checksum = await server.update_weights(new, global_steps=3)
    assert checksum == weights_checksum(new) and torch.all(server.model.state_dict()[name] == 0.5)
    assert server.global_steps == 3
    with pytest.raises(KeyError, match="not in the rollout model"):
        await server.update_weights([("model.no_such.weight", torch.zeros(1))])


def test_script_settings_reject_unknown_keys_and_bad_shares():
    from verl_ext.testing.cpu_backend.scripted import ScriptSettings

    class Rollout:
        custom = {"cpu_backend": {"answer": ["x"]}}

    with pytest.raises(ValueError, match="unknown key.*answer"):
        ScriptSettings.from_rollout_config(Rollout())
    with pytest.raises(ValueError, match="raw_share must be in"):
        ScriptSettings(raw_share=1.5)


def test_a_prompts_mode_decides_its_siblings_answers_whatever_replica_serves_them():
    from verl_ext.testing.cpu_backend.scripted import AnswerScript, ScriptSettings

    answers = ("a", "b", "c", "d")
    uniform = AnswerScript(ScriptSettings(answers=answers, raw_share=0.0, uniform_share=1.0))
    assert len({uniform.choose([1, 2, 3], []) for _ in range(8)}) == 1
    raw = AnswerScript(ScriptSettings(answers=answers, raw_share=1.0, uniform_share=0.0))
    assert {raw.choose([1, 2, 3], []) for _ in range(8)} == {None}
    varied = [AnswerScript(ScriptSettings(answers=answers, raw_share=0.0, uniform_share=0.0)) for _ in range(2)]
    labels = [[script.choose([1, 2, 3], []) for _ in range(8)] for script in varied]
    assert sorted(labels[0][:4]) == list(answers)  # siblings on one replica never repeat a label early
    assert labels[0] == labels[1]  # and the same replica rank repeats the same labels in every run
    replicas = [AnswerScript(ScriptSettings(answers=answers, seed=4)) for _ in range(2)]
    assert len({r.mode([7, 8], []) for r in replicas}) == 1  # no state: every replica agrees
    with pytest.raises(ValueError, match="raw_share \\+ uniform_share must be <= 1"):
        ScriptSettings(raw_share=0.6, uniform_share=0.6)


def test_the_cpu_overrides_compose_with_verls_config_and_pass_its_validation():
    from verl.utils.config import validate_config

    from verl_ext.recipes.compose import compose_arguments
    from verl_ext.testing.cpu_backend import cpu_overrides

    config = compose_arguments(
        ["actor_rollout_ref.model.path=/x", "+actor_rollout_ref.model.override_config.attn_implementation=flash_attention_2",
         "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4", "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4",
         *cpu_overrides(gpus=2, answers_file="/a.json", log_dir="/logs")]
    )
    validate_config(config, use_reference_policy=False, use_critic=False)
    assert config.actor_rollout_ref.rollout.name == "hf_cpu" and config.trainer.n_gpus_per_node == 2
    assert config.actor_rollout_ref.model.override_config.attn_implementation == "sdpa"  # ++ wins over a recipe's +
    assert config.actor_rollout_ref.rollout.custom.cpu_backend.answers_file == "/a.json"

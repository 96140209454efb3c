"""The vLLM backend up to the engine call: engine arguments, sampling parameters, prompts, LoRA.

``FakeVLLM`` is a TEST DOUBLE for the three vLLM names we use (``LLM``, ``SamplingParams``,
``LoRARequest``): vLLM cannot be installed on a CPU machine (it pins a CUDA torch build).
Everything before the engine call (the real Qwen2.5-VL processor and chat template, image
decoding, per-image seeds, adapter discovery) is real.
"""

import json
import shutil
import sys
from types import SimpleNamespace

import pytest
from PIL import Image

from verl_ext.eval.backends import build_backend
from verl_ext.eval.backends.base import GenerationRequest
from verl_ext.eval.backends.vllm import (
    BackendUnavailableError,
    VLLMBackend,
    import_vllm,
    lora_rank_for_vllm,
)
from verl_ext.eval.model_source import resolve_model
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.testing import synthetic_jpeg


class FakeVLLM:
    """Records what the backend hands to vLLM and answers with canned completions."""

    def __init__(self):
        self.engines, self.calls = [], []
        fake = self

        class LLM:
            def __init__(self, **kwargs):
                self.kwargs = kwargs
                fake.engines.append(self)

            def generate(self, prompts, sampling_params=None, lora_request=None, use_tqdm=True):
                fake.calls.append(SimpleNamespace(prompts=prompts, params=sampling_params, lora=lora_request))
                return [SimpleNamespace(outputs=[SimpleNamespace(text=f"<answer>label {i}.{k}</answer>")
                                                 for k in range(p.kwargs["n"])])
                        for i, p in enumerate(sampling_params)]

        class SamplingParams:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

        class LoRARequest:
            def __init__(self, name, int_id, path):
                self.args = (name, int_id, path)

        self.api = SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, LoRARequest=LoRARequest)


def requests(settings, count=2):
    return [GenerationRequest(f"img{i}", synthetic_jpeg(i, size=(80, 60)), "Classify the image.",
                              settings.seed_for(f"img{i}")) for i in range(count)]


@pytest.fixture()
def lora_checkpoint(offline_kit, tmp_path):
    root = tmp_path / "merged"
    shutil.copytree(offline_kit.path, root)
    (root / "lora_adapter").mkdir()
    (root / "lora_adapter" / "adapter_config.json").write_text(json.dumps({"r": 48, "lora_alpha": 32}))
    return root


def test_engine_arguments_for_a_plain_model(offline_kit):
    fake = FakeVLLM()
    settings = SamplingSettings(max_new_tokens=512, seed=7)
    backend = VLLMBackend(resolve_model(offline_kit.path), settings, vllm_api=fake.api, max_model_len=4096)
    kwargs = fake.engines[0].kwargs
    assert kwargs["model"] == str(offline_kit.path) and kwargs["limit_mm_per_prompt"] == {"image": 1}
    assert kwargs["seed"] == 7 and kwargs["max_model_len"] == 4096
    assert "enable_lora" not in kwargs and backend.lora_request is None


def test_greedy_sampling_parameters_and_prompts(offline_kit):
    fake = FakeVLLM()
    settings = SamplingSettings(max_new_tokens=2048)
    backend = VLLMBackend(resolve_model(offline_kit.path), settings, vllm_api=fake.api, max_pixels=56 * 56)
    batch = requests(settings)
    out = backend.generate(batch)
    call = fake.calls[0]
    assert [p.kwargs for p in call.params] == [
        {"n": 1, "max_tokens": 2048, "seed": r.seed, "temperature": 0.0, "top_p": 1.0, "top_k": -1} for r in batch]
    prompt = call.prompts[0]
    assert "<|vision_start|><|image_pad|><|vision_end|>Classify the image." in prompt["prompt"]
    assert prompt["prompt"].rstrip().endswith("<|im_start|>assistant")
    image = prompt["multi_modal_data"]["image"]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.width * image.height <= 56 * 56
    assert out == [["<answer>label 0.0</answer>"], ["<answer>label 1.0</answer>"]]
    assert backend.calls == 2


def test_best_of_n_sampling_parameters_use_a_seed_per_image(offline_kit):
    fake = FakeVLLM()
    settings = SamplingSettings(n=64, temperature=0.6, top_p=0.95, max_new_tokens=2048, seed=1)
    backend = VLLMBackend(resolve_model(offline_kit.path), settings, vllm_api=fake.api)
    out = backend.generate(requests(settings))
    params = [p.kwargs for p in fake.calls[0].params]
    assert {(p["n"], p["temperature"], p["top_p"], p["top_k"]) for p in params} == {(64, 0.6, 0.95, -1)}
    assert params[0]["seed"] != params[1]["seed"]
    assert params[0]["seed"] == settings.seed_for("img0")
    assert [len(o) for o in out] == [64, 64]


def test_lora_checkpoint_is_served_as_an_adapter(lora_checkpoint):
    fake = FakeVLLM()
    settings = SamplingSettings()
    backend = VLLMBackend(resolve_model(lora_checkpoint), settings, vllm_api=fake.api)
    kwargs = fake.engines[0].kwargs
    assert kwargs["model"] == str(lora_checkpoint)  # the base weights the merger left next to the adapter
    assert (kwargs["enable_lora"], kwargs["max_loras"], kwargs["max_lora_rank"]) == (True, 1, 64)  # 48 -> 64
    backend.generate(requests(settings, 1))
    assert fake.calls[0].lora.args == ("speciarl", 1, str(lora_checkpoint / "lora_adapter"))


def test_lora_rank_rounds_up_to_what_vllm_supports():
    assert [lora_rank_for_vllm(r) for r in (1, 8, 9, 64, 65, 512)] == [8, 8, 16, 64, 128, 512]
    with pytest.raises(ValueError, match="exceeds"):
        lora_rank_for_vllm(1024)


def test_missing_vllm_is_a_clear_error(monkeypatch, offline_kit):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    with pytest.raises(BackendUnavailableError, match="--backend hf"):
        import_vllm()
    with pytest.raises(BackendUnavailableError):
        build_backend("vllm", resolve_model(offline_kit.path), SamplingSettings())


def test_pipeline_runs_through_the_vllm_backend(offline_kit, tmp_path):
    from verl_ext.eval.pipeline import EvalConfig, run_evaluation
    from verl_ext.testing.eval_data import write_eval_parquet

    data = write_eval_parquet(tmp_path / "pets.parquet", "oxford_pets", ["samoyed", "pug"])
    fake = FakeVLLM()
    config = EvalConfig(model=str(offline_kit.path), data=[str(data)], out=tmp_path / "run", backend="vllm",
                        judge={"impl": "verl_ext.testing.rule_judge:from_settings", "default": "generic"},
                        batch_size=8, progress=False)
    outcome = run_evaluation(config, backend_factory=lambda: VLLMBackend(
        resolve_model(offline_kit.path), config.sampling, vllm_api=fake.api))
    assert len(fake.calls) == 1 and len(fake.calls[0].prompts) == 2
    assert outcome.metrics["datasets"]["oxford_pets"]["samples"]["correctness"] == 1.0

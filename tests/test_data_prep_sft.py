"""The SFT parquet: built from the RL parquet's rows, read by verl's own SFT dataset, both target modes.

The RL parquet comes from ``data_prep/cub.py`` on a miniature CUB layout. The rejection-sampling
rollouts come from the real evaluation pipeline (predict -> judge -> samples.jsonl) with two
test doubles: a backend that writes scripted answers (the offline kit's random model never
writes an ``<answer>``) and the rule-table judge server (a judge LLM cannot run here).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from verl_ext.core.answer import extract_answer
from verl_ext.core.prompts import policy_response
from verl_ext.data_prep.cli import main as data_prep_main
from verl_ext.data_prep.sft import FIXED_REASONING, SftDataError, build_sft_parquet, main
from verl_ext.testing import layouts
from verl_ext.testing.judge_server import ScriptableJudgeServer

from data_prep_scripts import load_spec


@pytest.fixture(scope="module")
def rl_parquet(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sft_data")
    layouts.build_cub(root / "raw", classes=3, train_per_class=3, test_per_class=1)
    argv = ["--root", str(root / "raw"), "--out", str(root), "--splits", "train", "--subset", "6", "--no-progress"]
    assert data_prep_main(load_spec("cub"), argv) == 0
    return root / "cub200" / "train_sub6_seed42.parquet"


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def test_label_targets_keep_every_rl_row_its_image_and_its_prompt(rl_parquet, tmp_path):
    out = tmp_path / "sft.parquet"
    result = build_sft_parquet(rl_parquet, target="label", output=out, progress=False)
    rl, sft = _rows(rl_parquet), _rows(out)
    assert result.rows == result.images == result.source_rows == len(rl) == len(sft) == 6
    for source, row in zip(rl, sft):
        assert row["images"] == source["images"]  # the same bytes, not re-encoded
        assert row["messages"][:-1] == source["prompt"]
        assert row["messages"][-1] == {"role": "assistant", "content": policy_response(FIXED_REASONING, source["reward_model"]["ground_truth"])}
        assert extract_answer(row["messages"][-1]["content"]) == source["reward_model"]["ground_truth"]
        assert (row["extra_info"], row["data_source"]) == (source["extra_info"], source["data_source"])
        assert row["sft"] == {"target": "label", "sample": None, "category": None}
    summary = json.loads((tmp_path / "sft.summary.json").read_text())
    assert summary["source_sha256"] == hashlib.sha256(rl_parquet.read_bytes()).hexdigest() and summary["rows"] == 6


def test_verls_sft_dataset_trains_on_the_target_only_and_sees_the_image(rl_parquet, tmp_path, offline_kit):
    """What verl.trainer.sft_trainer builds from the file: image tokens in the prompt, loss on the answer."""
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    out = build_sft_parquet(rl_parquet, target="label", output=tmp_path / "sft.parquet", progress=False).output
    tokenizer, processor = offline_kit.load_tokenizer(), offline_kit.load_processor()
    config = {"pad_mode": "no_padding", "max_length": 1024, "truncation": "error", "enable_thinking_default": None}
    dataset = MultiTurnSFTDataset(out, tokenizer, config, processor)
    item, row = dataset[0], _rows(Path(out))[0]
    trained = tokenizer.decode(item["input_ids"][item["loss_mask"].bool()])
    assert trained == row["messages"][-1]["content"] + "<|im_end|>\n"
    grid = item["multi_modal_inputs"]["image_grid_thw"]
    merge = processor.image_processor.merge_size ** 2
    assert int((item["input_ids"] == offline_kit.image_token_id).sum()) == int(grid.prod()) // merge > 0
    assert item["position_ids"].shape[0] == 4  # text + mrope rows, as verl builds for Qwen-VL


def test_a_custom_reasoning_line_is_used_and_a_closing_tag_in_it_is_refused(rl_parquet, tmp_path):
    out = build_sft_parquet(rl_parquet, target="label", output=tmp_path / "a.parquet", reasoning="A bird.", progress=False)
    assert all(r["messages"][-1]["content"].startswith("<think>A bird.</think>") for r in _rows(Path(out.output)))
    with pytest.raises(SftDataError, match="</think>"):
        build_sft_parquet(rl_parquet, target="label", output=tmp_path / "b.parquet", reasoning="x</think>", progress=False)


# ------------------------------------------------------------------------- rejection sampling
class ScriptedAnswers:
    """Stands in for the base model: per image, a fixed list of answers (the kit's model writes noise)."""

    name = "scripted"

    def __init__(self, answers_by_image: dict[str, list[str]]):
        self.answers_by_image = answers_by_image

    def generate(self, requests):
        return [self.answers_by_image[hashlib.sha256(r.image_bytes).hexdigest()] for r in requests]

    def close(self):
        pass


def _answers(truth: str, position: int) -> list[str]:
    """Three samples per image; which of them is specific or better depends on the image."""
    plans = [
        [policy_response("a bird", "bird"), policy_response("it is", truth), "no tags at all"],  # sample 1 specific
        [policy_response("a male", f"{truth} male"), policy_response("x", truth), "none"],   # 0 more specific, 1 specific
        [policy_response("a bird", "bird"), policy_response("a cat", "cat"), policy_response("?", "None")],  # none
    ]
    return plans[position % 3]


@pytest.fixture(scope="module")
def rollouts(rl_parquet, tmp_path_factory, offline_kit):
    """An evaluation run of the RL parquet, n=3, through the real pipeline; its samples.jsonl is what SFT reads."""
    from verl_ext.eval.pipeline import EvalConfig, run_evaluation
    from verl_ext.eval.sampling import SamplingSettings

    rows = _rows(rl_parquet)
    answers = {hashlib.sha256(r["images"][0]["bytes"]).hexdigest(): _answers(r["reward_model"]["ground_truth"], i)
               for i, r in enumerate(rows)}
    rules = {}
    for r in rows:
        truth = r["reward_model"]["ground_truth"]
        rules[(truth, "bird")] = "generic"
        rules[(truth, f"{truth} male")] = "more specific"
    out = tmp_path_factory.mktemp("rollouts") / "run"
    with ScriptableJudgeServer(rules, default="wrong").start_in_thread() as server:
        config = EvalConfig(model=str(offline_kit.path), data=[str(rl_parquet)], out=out, backend="hf",
                            judge={"urls": [server.url], "model": "scripted-judge", "on_failure": "degrade"},
                            sampling=SamplingSettings(n=3, temperature=1.0), method="base rollouts", progress=False)
        run_evaluation(config, backend_factory=lambda: ScriptedAnswers(answers))
    return out, rows


def test_rejection_keeps_the_first_specific_or_better_answer_of_each_image(rl_parquet, rollouts, tmp_path):
    run, rows = rollouts
    out = tmp_path / "rejection.parquet"
    result = build_sft_parquet(rl_parquet, target="rejection", output=out, rollouts=run, progress=False)
    sft = _rows(out)
    expected = [(i, 1 if i % 3 == 0 else 0) for i in range(len(rows)) if i % 3 != 2]
    assert [(r["extra_info"]["index"], r["sft"]["sample"]) for r in sft] == [
        (rows[i]["extra_info"]["index"], sample) for i, sample in expected]
    for row in sft:
        source = next(r for r in rows if r["extra_info"]["index"] == row["extra_info"]["index"])
        assert row["images"] == source["images"] and row["messages"][:-1] == source["prompt"]
        assert row["messages"][-1]["content"] == _answers(source["reward_model"]["ground_truth"], rows.index(source))[row["sft"]["sample"]]
    assert [r["sft"]["category"] for r in sft] == ["specific", "more specific", "specific", "more specific"]
    assert (result.images, result.images_without_target, result.rows) == (4, 2, 4)
    assert result.sample_status == {"generic": 4, "specific": 4, "more specific": 2, "parse_failure": 4, "wrong": 2,
                                    "abstain": 2}
    assert result.rollouts["sampling"]["n"] == 3 and result.rollouts["prompt_variant"] == "general"


def test_rejection_keeps_up_to_per_image_answers(rl_parquet, rollouts, tmp_path):
    run, rows = rollouts
    result = build_sft_parquet(rl_parquet, target="rejection", output=tmp_path / "r.parquet", rollouts=run, per_image=2, progress=False)
    samples = [r["sft"]["sample"] for r in _rows(Path(result.output))]
    assert samples == [1, 0, 1, 1, 0, 1] and result.rows == 6 and result.images == 4


def _copy_run(run: Path, into: Path, edit_line=None, edit_metrics=None) -> Path:
    into.mkdir()
    lines = [json.loads(l) for l in (run / "samples.jsonl").read_text().splitlines()]
    lines = [edit_line(l) for l in lines] if edit_line else lines
    (into / "samples.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines if l is not None))
    metrics = json.loads((run / "metrics.json").read_text())
    (into / "metrics.json").write_text(json.dumps(edit_metrics(metrics) if edit_metrics else metrics))
    return into


@pytest.mark.parametrize(
    ("edit_line", "edit_metrics", "message"),
    [
        (lambda l: None if l["index"] == 0 else l, None, "no sample of cub200 index 0"),
        (lambda l: {**l, "ground_truth": "Mallard"}, None, "ground truth 'Mallard'"),
        (None, lambda m: {**m, "run": {**m["run"], "prompt_variant": "specific"}}, "prompt differs"),
        (lambda l: {k: v for k, v in l.items() if k != "response"}, None, "no 'response'"),
        (lambda l: {k: v for k, v in l.items() if k not in ("status", "category")}, None, "without the judge"),
    ],
    ids=["image-missing", "other-ground-truth", "other-prompt", "older-run", "no-judge"],
)
def test_rollouts_that_do_not_belong_to_the_file_are_refused(rl_parquet, rollouts, tmp_path, edit_line, edit_metrics, message):
    run = _copy_run(rollouts[0], tmp_path / "run", edit_line, edit_metrics)
    out = tmp_path / "r.parquet"
    with pytest.raises(SftDataError, match=message):
        build_sft_parquet(rl_parquet, target="rejection", output=out, rollouts=run, progress=False)
    assert not out.exists() and not Path(f"{out}.partial").exists()


def test_no_accepted_answer_at_all_is_an_error_and_leaves_no_file(rl_parquet, rollouts, tmp_path):
    run = _copy_run(rollouts[0], tmp_path / "run", lambda l: {**l, "category": "generic"} if l["status"] == "judged" else l)
    out = tmp_path / "r.parquet"
    with pytest.raises(SftDataError, match="nothing to train on"):
        build_sft_parquet(rl_parquet, target="rejection", output=out, rollouts=run, progress=False)
    assert not out.exists()


def test_cli_writes_next_to_the_rl_file_and_reports_bad_input_with_exit_2(rl_parquet, capsys):
    assert main(["--from", str(rl_parquet), "--target", "label", "--no-progress"]) == 0
    assert rl_parquet.with_name("train_sub6_seed42.sft_label.parquet").is_file()
    assert "6 SFT rows (label targets) from 6 of 6 images" in capsys.readouterr().out
    assert main(["--from", str(rl_parquet), "--target", "rejection", "--no-progress"]) == 2
    assert "needs --rollouts" in capsys.readouterr().err
    assert main(["--from", str(rl_parquet.with_name("missing.parquet")), "--target", "label"]) == 2

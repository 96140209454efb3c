"""Stage plumbing: parquet validation, the resumable store, judge errors, and compare."""

import asyncio
import json

import pandas as pd
import pytest

from verl_ext.core.categories import Category
from verl_ext.eval.compare import CompareError, main as compare_main
from verl_ext.eval.items import EvalDataError, read_eval_items
from verl_ext.eval.judging import run_judge_stage
from verl_ext.eval.pipeline import judge_and_score
from verl_ext.eval.store import JsonlStore
from verl_ext.testing.eval_data import write_eval_parquet
from verl_ext.judge.base import JudgeUnavailableError
from verl_ext.testing.rule_judge import RuleTableJudge


def test_rows_missing_ground_truth_name_file_row_and_field(tmp_path):
    path = write_eval_parquet(tmp_path / "x.parquet", "cub200", ["a", "b"])
    frame = pd.read_parquet(path)
    frame.at[1, "reward_model"] = {"style": "model", "ground_truth": " "}
    frame.to_parquet(path)
    with pytest.raises(EvalDataError, match=r"x\.parquet: row 1: field 'reward_model.ground_truth'"):
        read_eval_items(path)


def test_rows_without_image_bytes_are_rejected(tmp_path):
    path = write_eval_parquet(tmp_path / "x.parquet", "cub200", ["a"])
    frame = pd.read_parquet(path)
    frame.at[0, "images"] = [{"bytes": b"", "path": "0.jpg"}]
    frame.to_parquet(path)
    with pytest.raises(EvalDataError, match=r"row 0: field 'images\[0\].bytes'"):
        read_eval_items(path)


def test_store_ignores_a_torn_last_line_and_appends_after_it(tmp_path):
    store = JsonlStore(tmp_path / "s.jsonl")
    store.append([{"key": "a", "v": 1}])
    with (tmp_path / "s.jsonl").open("a") as handle:
        handle.write('{"key": "b", "v"')  # the process died mid-write
    assert set(store.load()) == {"a"} and store.torn_lines == 1
    store.append([{"key": "c", "v": 3}])
    assert set(store.load()) == {"a", "c"}



def _items_and_responses(tmp_path):
    items = read_eval_items(write_eval_parquet(tmp_path / "d.parquet", "food101", ["pizza", "ramen", "sushi"]))
    answers = ["pizza slice", "ramen", "maki"]
    return items, {i.image_sha256: [f"<answer>{a}</answer>"] for i, a in zip(items, answers)}


def test_judge_errors_are_counted_left_out_and_retried_by_the_next_run(tmp_path):
    items, responses = _items_and_responses(tmp_path)
    table = {("pizza", "pizza slice"): Category.MORE_SPECIFIC, ("ramen", "ramen"): Category.SPECIFIC,
             ("sushi", "maki"): Category.SPECIFIC}
    failing = RuleTableJudge(table, errors=[("sushi", "maki")])
    metrics, judged = judge_and_score(items, responses, n=1, judge=failing, judge_settings={"impl": "t"},
                                      out=tmp_path / "run", method="m", progress=False)
    assert not metrics["complete"] and metrics["n_judge_errors"] == 1
    food = metrics["datasets"]["food101"]["samples"]
    assert food["n_graded"] == 2 and food["correctness"] == 1.0  # the error is not counted as wrong
    assert "Re-run the same command" in (tmp_path / "run" / "report.md").read_text()

    healthy = RuleTableJudge(table)
    metrics, judged = judge_and_score(items, responses, n=1, judge=healthy, judge_settings={"impl": "t"},
                                      out=tmp_path / "run", method="m", progress=False)
    assert healthy.calls == 1 and judged.reused == 2  # only the failed pair is asked again
    assert metrics["complete"] and metrics["datasets"]["food101"]["samples"]["n_graded"] == 3


class DownJudge:
    def __init__(self):
        self.calls = 0

    async def grade_many(self, pairs):
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("network blip")
        raise JudgeUnavailableError("down for good")

    def pop_metrics(self):
        return {}


def test_network_error_and_outage_end_the_stage_without_raising(tmp_path):
    pairs = [(f"gt{i}", f"p{i}") for i in range(5)]
    result = asyncio.run(run_judge_stage(pairs, DownJudge(), store_path=tmp_path / "j.jsonl", chunk_size=2,
                                         progress=False))
    assert len(result.errors) == 5 and not result.verdicts
    assert result.errors[("gt0", "p0")].startswith("ConnectionError")
    assert result.stopped_early.startswith("judge unavailable")


def test_compare_prints_runs_side_by_side_and_plots(tmp_path, capsys):
    items, responses = _items_and_responses(tmp_path)
    for name, category in (("base", Category.GENERIC), ("speciarl", Category.SPECIFIC)):
        judge = RuleTableJudge({}, default=category)
        judge_and_score(items, responses, n=1, judge=judge, judge_settings={"impl": name}, out=tmp_path / name,
                        method=name, progress=False)
    assert compare_main([str(tmp_path / "base"), str(tmp_path / "speciarl"), "--out", str(tmp_path / "cmp")]) == 0
    text = capsys.readouterr().out
    # Fine-grained group: W A G S- S S+ and parse-failure shares (%), then Spec, Corr, HM.
    assert "| base | 0.0 | 0.0 | 100.0 | 0.0 | 0.0 | 0.0 | 0.0 | 0.000 | 1.000 | 0.000 |" in text
    assert "| speciarl | 0.0 | 0.0 | 0.0 | 0.0 | 100.0 | 0.0 | 0.0 | 1.000 | 1.000 | 1.000 |" in text
    assert "Protocol 2" not in text  # neither run computed it
    for plot in ("spec_vs_corr.png", "categories.png", "figure1.png"):
        assert (tmp_path / "cmp" / plot).is_file()


def test_compare_rejects_a_folder_without_metrics(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 2
    assert "no metrics.json" in capsys.readouterr().err
    (tmp_path / "metrics.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(CompareError, match="schema"):
        from verl_ext.eval.compare import load_run

        load_run(tmp_path)


def test_cli_rejects_a_misspelt_prompt_variant_before_asking_the_judge(tmp_path, capsys):
    from verl_ext.eval.cli import main

    code = main(["--model", str(tmp_path), "--data", str(tmp_path / "d.parquet"), "--out", str(tmp_path / "r"),
                 "--judge-url", "http://127.0.0.1:9/v1", "--prompt-variant", "specfic"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown prompt variant 'specfic'" in err
    assert not (tmp_path / "r").exists()  # nothing was started

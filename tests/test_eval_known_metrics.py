"""Judge + score stages on predictions whose categories are known: hand-computed metrics.

Real parts: the OpenAI-compatible judge client over HTTP and the scriptable judge server on
127.0.0.1 (its rule table stands in for a judge LLM, which cannot run here).
"""

import json

import pytest

from verl_ext.eval.items import read_eval_items
from verl_ext.eval.pipeline import judge_and_score
from verl_ext.testing.eval_data import write_eval_parquet
from verl_ext.testing.judge_server import ScriptableJudgeServer

A = "<think>looks like it</think><answer>{}</answer>"

# (data_source, ground truth, [(response, category the rule table gives)]); None = parse failure.
FIXTURE = [
    ("cub200", "Laysan Albatross", [(A.format("Laysan Albatross"), "specific"), (A.format("albatross"), "less specific")]),
    ("cub200", "Arctic Tern", [(A.format("bird"), "generic"), ("<think>no tags at all", None)]),
    ("cub200", "Mallard", [(A.format("None"), "abstain"), (A.format("American Black Duck"), "wrong")]),
    ("cub200", "Golden winged Warbler", [(A.format("Blue-winged Warbler"), "wrong"),
                                         (A.format("Golden-winged Warbler, male"), "more specific")]),
    ("flowers102", "pink primrose", [(A.format("primrose"), "less specific"), (A.format("flower"), "generic")]),
    ("flowers102", "sunflower", [(A.format("Helianthus annuus"), "specific"), (A.format("Sunflower"), "specific")]),
    ("flowers102", "rose", [(A.format("daisy"), "wrong"), (A.format("I don't know"), "abstain")]),
    ("food101", "pizza", [(A.format("margherita pizza"), "more specific"), (A.format("pizza"), "specific")]),
    ("food101", "ramen", [(A.format("noodle soup"), "less specific"), ("<answer>  </answer>", None)]),
    ("fgvc_aircraft", "707-320", [(A.format("Boeing 707"), "less specific"), (A.format("airplane"), "generic")]),
]

# Hand-computed: correctness = correct/graded, specificity = (S + S+)/correct, HM of the two.
EXPECTED = {
    "cub200": {"samples": (4 / 8, 2 / 4), "best_of_n": (3 / 4, 2 / 3)},
    "flowers102": {"samples": (4 / 6, 2 / 4), "best_of_n": (2 / 3, 1 / 2)},
    "food101": {"samples": (3 / 4, 2 / 3), "best_of_n": (2 / 2, 1 / 2)},
    "fgvc_aircraft": {"samples": (2 / 2, 0 / 2), "best_of_n": (1 / 1, 0 / 1)},
}


def hm(c, s):
    return 0.0 if c + s == 0 else 2 * c * s / (c + s)


@pytest.fixture()
def fixture_run(tmp_path):
    by_source = {}
    for source, truth, _ in FIXTURE:
        by_source.setdefault(source, []).append(truth)
    items = []
    for k, (source, truths) in enumerate(by_source.items()):
        items += read_eval_items(write_eval_parquet(tmp_path / "data" / f"{source}.parquet", source, truths, seed=k))
    responses = {}
    rules = {}
    for item, (_, truth, samples) in zip(items, FIXTURE):
        assert item.ground_truth == truth
        responses[item.image_sha256] = [r for r, _ in samples]
        for response, category in samples:
            if category is not None:
                answer = response.split("<answer>")[1].split("</answer>")[0]
                rules[(truth, answer)] = category
    return items, responses, rules


def _judge_settings(server):
    return {"urls": [server.url], "model": "scripted-judge", "on_failure": "degrade", "max_concurrency": 8,
            "failure_budget_s": 5.0, "backoff_base_s": 0.01}


def test_metrics_match_hand_computed_values(tmp_path, fixture_run):
    items, responses, rules = fixture_run
    with ScriptableJudgeServer(rules, default="wrong").start_in_thread() as server:
        metrics, judged = judge_and_score(items, responses, n=2, judge=None, judge_settings=_judge_settings(server),
                                          out=tmp_path / "run", method="fixture", progress=False)
    assert judged.complete and metrics["complete"]
    for source, views in EXPECTED.items():
        for view, (corr, spec) in views.items():
            got = metrics["datasets"][source][view]
            assert got["correctness"] == pytest.approx(corr), (source, view)
            assert got["specificity"] == pytest.approx(spec), (source, view)
            assert got["hm"] == pytest.approx(hm(corr, spec)), (source, view)
    cub = metrics["datasets"]["cub200"]["samples"]
    assert cub["counts"] == {"wrong": 2, "abstain": 1, "generic": 1, "less specific": 1, "specific": 1,
                             "more specific": 1, "parse failure": 1, "judge error": 0}
    assert cub["parse_failure_rate"] == pytest.approx(1 / 8)
    assert metrics["datasets"]["food101"]["samples"]["share/parse failure"] == pytest.approx(1 / 4)

    fine = metrics["groups"]["samples"]["fine_grained"]
    flowers, food = EXPECTED["flowers102"]["samples"], EXPECTED["food101"]["samples"]
    assert fine["datasets"] == ["flowers102", "food101"]
    assert fine["correctness"] == pytest.approx((flowers[0] + food[0]) / 2)
    assert fine["specificity"] == pytest.approx((flowers[1] + food[1]) / 2)
    assert fine["hm"] == pytest.approx((hm(*flowers) + hm(*food)) / 2)  # mean of per-dataset HMs
    assert metrics["groups"]["best_of_n"]["very_fine_grained"]["hm"] == pytest.approx(0.0)
    assert metrics["groups"]["samples"]["in_domain"]["hm"] == pytest.approx(hm(*EXPECTED["cub200"]["samples"]))


def test_outputs_are_written_and_samples_carry_their_grades(tmp_path, fixture_run):
    items, responses, rules = fixture_run
    with ScriptableJudgeServer(rules).start_in_thread() as server:
        judge_and_score(items, responses, n=2, judge=None, judge_settings=_judge_settings(server),
                        out=tmp_path / "run", method="fixture", progress=False)
    run = tmp_path / "run"
    on_disk = json.loads((run / "metrics.json").read_text())
    assert on_disk["method"] == "fixture" and on_disk["definitions"]["status"].startswith("inferred")
    report = (run / "report.md").read_text()
    assert "| fixture BoN-2 |" in report and "Fine-grained Spec" in report
    for png in ("categories.png", "spec_vs_corr.png"):
        assert (run / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = [json.loads(l) for l in (run / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 20
    assert {(l["ground_truth"], l["category"]) for l in lines if l["answer"] == "Golden-winged Warbler, male"} == {
        ("Golden winged Warbler", "more specific")}
    # the whole response travels with its grade (what rejection-sampled SFT targets are built from)
    # every judged sample names its category, "wrong" (Category 0, falsy) included
    judged = [l for l in lines if l["status"] == "judged"]
    assert all(l["category"] for l in judged) and sum(l["category"] == "wrong" for l in judged) > 0
    expected = [responses[item.image_sha256][k] for item in items for k in range(2)]
    assert [l["response"] for l in lines] == expected and [l["sample"] for l in lines] == [0, 1] * len(items)


class SimulatedCrash(BaseException):
    """Stands in for the process being killed mid-stage (not an Exception: nothing may swallow it)."""


class CrashAfterChunks:
    """Delegates to a real judge for ``chunks`` grade_many calls, then crashes."""

    def __init__(self, inner, chunks):
        self.inner, self.left = inner, chunks

    async def grade(self, gt, pred):
        return await self.inner.grade(gt, pred)

    async def grade_many(self, pairs):
        if self.left == 0:
            raise SimulatedCrash()
        self.left -= 1
        return await self.inner.grade_many(pairs)

    def pop_metrics(self):
        return self.inner.pop_metrics()

    async def aclose(self):
        await self.inner.aclose()


def test_interrupted_judge_stage_resumes_without_resending_finished_pairs(tmp_path, fixture_run):
    import asyncio

    from verl_ext.eval.pipeline import judge_and_score_async
    from verl_ext.judge.factory import build_judge

    items, responses, rules = fixture_run
    out = tmp_path / "run"
    with ScriptableJudgeServer(rules).start_in_thread() as server:
        settings = _judge_settings(server)

        async def crash_run():
            judge = CrashAfterChunks(build_judge(settings), chunks=2)
            try:
                await judge_and_score_async(items, responses, n=2, judge=judge, judge_settings=settings, out=out,
                                            method="fixture", judge_chunk_size=3, progress=False)
            finally:
                await judge.aclose()

        with pytest.raises(SimulatedCrash):
            asyncio.run(crash_run())
        first = sum(server.pair_counts.values())
        assert first > 0 and not (out / "metrics.json").exists()

        metrics, judged = judge_and_score(items, responses, n=2, judge=None, judge_settings=settings, out=out,
                                          method="fixture", judge_chunk_size=3, progress=False)
        assert judged.reused == 6 and judged.sent == len(judged.verdicts) - 6
        # Every pair reached the server exactly once over both runs: nothing finished was redone.
        assert max(server.pair_counts.values()) == 1
        assert metrics["datasets"]["cub200"]["samples"]["correctness"] == pytest.approx(0.5)

        requests_before = server.stats["requests"]
        again, judged = judge_and_score(items, responses, n=2, judge=None, judge_settings=settings, out=out,
                                        method="fixture", progress=False)
        assert server.stats["requests"] == requests_before and judged.sent == 0
        assert again["datasets"] == metrics["datasets"]


class RaisingJudge(CrashAfterChunks):
    """Delegates to a real judge, except that one chunk raises ``error`` (a transport loss or a bug)."""

    def __init__(self, inner, error, at_chunk=1):
        super().__init__(inner, chunks=0)
        self.error, self.at_chunk, self.calls = error, at_chunk, 0

    async def grade_many(self, pairs):
        self.calls += 1
        if self.calls == self.at_chunk + 1:
            raise self.error
        return await self.inner.grade_many(pairs)


def _judge_with(error, fixture_run, tmp_path):
    import asyncio

    from verl_ext.eval.pipeline import judge_and_score_async
    from verl_ext.judge.factory import build_judge

    items, responses, rules = fixture_run
    with ScriptableJudgeServer(rules).start_in_thread() as server:
        settings = _judge_settings(server)

        async def run():
            judge = RaisingJudge(build_judge(settings), error)
            try:
                return await judge_and_score_async(items, responses, n=2, judge=judge, judge_settings=settings,
                                                   out=tmp_path / "run", method="fixture", judge_chunk_size=3,
                                                   progress=False)
            finally:
                await judge.aclose()

        return asyncio.run(run())


def test_a_chunk_lost_in_transport_is_counted_as_judge_errors_and_the_rest_is_judged(fixture_run, tmp_path):
    import httpx

    metrics, judged = _judge_with(httpx.ConnectError("connection reset"), fixture_run, tmp_path)
    assert len(judged.errors) == 3 and all("ConnectError: connection reset" in e for e in judged.errors.values())
    assert judged.verdicts and not metrics["complete"]


def test_a_bug_in_the_judge_ends_the_stage_with_its_traceback(fixture_run, tmp_path):
    """A TypeError is no judge verdict: recording it as per-pair judge errors would hide the bug."""
    with pytest.raises(TypeError, match="a bug"):
        _judge_with(TypeError("a bug, not a judge error"), fixture_run, tmp_path)


def test_eval_cli_lets_a_programming_error_surface(monkeypatch, tmp_path):
    from verl_ext.eval import cli, pipeline

    def buggy(config):
        raise ValueError("a bug, not a usage error")

    monkeypatch.setattr(pipeline, "run_evaluation", buggy)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["--model", str(tmp_path), "--data", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "o"),
                  "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m"])


def test_eval_cli_names_a_bad_sampling_setting_and_exits_as_a_usage_error(tmp_path, capsys):
    from verl_ext.eval import cli

    code = cli.main(["--model", str(tmp_path), "--data", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "o"),
                     "--judge-url", "http://127.0.0.1:9/v1", "--judge-model", "m", "--n", "4"])
    assert code == cli.EXIT_USAGE
    assert "sampling.n must be 1 with temperature 0, got 4" in capsys.readouterr().err

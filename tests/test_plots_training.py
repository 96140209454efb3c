"""The training-curves CLI on a run that has only the reward's JSONL file, and on an empty folder."""

from __future__ import annotations

import json

from verl_ext.eval import plots_training


def _record(role: str, step: int, correct: float, specific: float) -> dict:
    hm = 2 * correct * specific / (correct + specific)
    prefix = f"speciarl/{role}"
    return {"role": role, "step": step, f"{prefix}/correct": correct, f"{prefix}/specific": specific,
            f"{prefix}/hm": hm, f"{prefix}/judge/requests": 3}


def test_a_run_without_tensorboard_is_drawn_from_the_jsonl_file(tmp_path, capsys):
    records = [_record("val", 0, 0.5, 0.2), _record("train", 1, 0.6, 0.3), _record("train", 2, 0.7, 0.4)]
    (tmp_path / "speciarl_reward_metrics.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    out = tmp_path / "curves.png"
    assert plots_training.main([str(tmp_path), "--out", str(out)]) == 0
    assert "from jsonl: training steps [1, 2], validation at [0]" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    series, source = plots_training.load_series(tmp_path)
    assert source == "jsonl" and series["speciarl/train/specific"] == {1: 0.3, 2: 0.4}


def test_a_folder_without_figures_says_what_was_looked_for(tmp_path, capsys):
    assert plots_training.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "speciarl_reward_metrics.jsonl" in err and "trainer.v1.trainer_mode=speciarl" in err
    assert not (tmp_path / "plots").exists()

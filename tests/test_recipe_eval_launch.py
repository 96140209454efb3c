"""The evaluation recipe's launch path: a hub model id reaches the harness as its local snapshot folder.

``python -m verl_ext.eval --model`` loads local folders only. Test doubles, because this machine
has no GPU and no hub: a fake ``nvidia-smi``, a Hugging Face cache holding a snapshot of
``org/tiny``, the rule-table judge server (real HTTP on 127.0.0.1), and a ``PYTHON`` wrapper
that records the ``verl_ext.eval`` call instead of generating.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from verl_ext.testing.judge_server import ScriptableJudgeServer

from recipe_doubles import recording_python

RECIPES = Path(__file__).resolve().parents[1] / "recipes"



def _hub_cache(root: Path, repo: str, revision: str = "0123abcd") -> Path:
    """The layout ``huggingface_hub`` keeps: ``models--org--name/{refs/main, snapshots/<rev>/}``."""
    folder = root / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(revision)
    (snapshot / "config.json").write_text("{}")
    (snapshot / "model.safetensors").write_bytes(b"\0")
    return snapshot


def test_a_hub_model_id_is_evaluated_from_its_local_snapshot(tmp_path):
    snapshot = _hub_cache(tmp_path / "hub", "org/tiny")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/usr/bin/env bash\nprintf '0\\n'\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    recording_python(bin_dir / "python", "verl_ext.eval", "FAKE_EVAL_RECORD")
    (tmp_path / "data" / "cub200").mkdir(parents=True)
    (tmp_path / "data" / "cub200" / "test.parquet").write_bytes(b"")  # existence is all the launcher checks
    record = tmp_path / "eval.args"
    with ScriptableJudgeServer({}).start_in_thread() as judge:
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(RECIPES.parent),
            "PYTHON": str(bin_dir / "python"), "FAKE_EVAL_RECORD": str(record), "HF_HUB_CACHE": str(tmp_path / "hub"),
            "HF_HUB_OFFLINE": "1", "EVAL_MODEL": "org/tiny", "EVAL_DATA_SOURCES": "cub200", "DATA_DIR": str(tmp_path / "data"),
            "SPECIARL_JUDGE_URLS": judge.url, "SPECIARL_JUDGE_MODEL": "scripted-judge", "EVAL_OUT": str(tmp_path / "out"),
        }
        result = subprocess.run(["bash", str(RECIPES / "eval_be_specific_qwen25vl7b.sh")], env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    arguments = [a for a in record.read_text().split("\0") if a]
    assert arguments[arguments.index("--model") + 1] == str(snapshot)
    assert arguments[arguments.index("--prompt-variant") + 1] == "specific"

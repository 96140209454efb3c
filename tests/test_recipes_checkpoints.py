"""Finding a run's newest checkpoint in the layouts verl 0.9's two trainers write.

``main_ppo`` keeps the policy's shards in ``global_step_N/actor/``, the SFT trainer in
``global_step_N/``; both name N in ``latest_checkpointed_iteration.txt``. The folders here are
written in those layouts (the real SFT checkpoint is merged in ``test_train_sft_cpu.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from verl_ext.recipes.checkpoints import latest_checkpoint, main
from verl_ext.recipes.errors import RecipeError


def _run(root: Path, steps: list[int], latest: int, actor: bool) -> Path:
    for step in steps:
        folder = root / f"global_step_{step}" / ("actor" if actor else "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "model_world_size_2_rank_0.pt").write_bytes(b"")
    (root / "latest_checkpointed_iteration.txt").write_text(f"{latest}\n")
    return root


def test_the_rl_run_keeps_its_shards_in_actor_and_the_sft_run_in_the_step_folder(tmp_path):
    rl = _run(tmp_path / "rl", [5, 165], 165, actor=True)
    sft = _run(tmp_path / "sft", [46, 138], 138, actor=False)
    assert latest_checkpoint(rl) == rl / "global_step_165" / "actor"
    assert latest_checkpoint(sft) == sft / "global_step_138"


@pytest.mark.parametrize(("setup", "fragment"), [
    (lambda root: root.mkdir(), "no latest_checkpointed_iteration.txt"),
    (lambda root: _run(root, [3], 4, actor=True), "global_step_4: no FSDP shards"),
    (lambda root: (root.mkdir(), (root / "latest_checkpointed_iteration.txt").write_text("last")), "expected a step number"),
])
def test_a_run_without_a_usable_checkpoint_is_a_clear_error(tmp_path, setup, fragment):
    setup(tmp_path / "run")
    with pytest.raises(RecipeError, match=fragment):
        latest_checkpoint(tmp_path / "run")


def test_dry_run_prints_the_merge_before_the_run_exists_and_with_the_real_step_after(tmp_path, capsys):
    assert main(["merge", str(tmp_path / "run"), "--out", str(tmp_path / "m"), "--dry-run"]) == 0
    assert "global_step_<last>" in capsys.readouterr().out
    _run(tmp_path / "run", [7], 7, actor=True)
    assert main(["merge", str(tmp_path / "run"), "--out", str(tmp_path / "m"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"--local_dir {tmp_path / 'run' / 'global_step_7' / 'actor'} --target_dir {tmp_path / 'm'}" in out
    assert not (tmp_path / "m").exists()
    assert main(["latest", str(tmp_path / "nothing")]) == 2

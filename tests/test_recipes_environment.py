"""The recipes' older environment variables keep setting their Hydra keys, written for each key's node.

The whole set is pinned end to end by ``test_recipes_resolved_configs.py`` (one run with every
variable set); these tests state the rules one at a time, on the real composed config.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from recipe_runs import RECIPES, clean_env, emit_arguments
from verl_ext.recipes.compose import compose_arguments, recipe_arguments
from verl_ext.recipes.environment import ALIASES, alias_overrides
from verl_ext.recipes.errors import RecipeError
from verl_ext.recipes.recipe_args import machine_overrides

#: keys the main run's config leaves to the reward and judge defaults, so an alias adds them
ADDED_KEYS = {"reward.speciarl.judge.constraint"}


@pytest.fixture(scope="module")
def main_run():
    return compose_arguments(recipe_arguments(None), verl_by_path=True)


def overrides(main_run, **environ: str) -> list[str]:
    return [override for _, override in alias_overrides(environ, main_run)]


def test_every_variable_names_a_key_of_the_main_run_or_adds_it(main_run):
    written = overrides(main_run, **{alias.name: "1" for alias in ALIASES})
    added = {o[1:].split("=", 1)[0] for o in written if o.startswith("+")}
    assert added == ADDED_KEYS
    assert len(written) == len(ALIASES)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"ROLLOUT_N": "6"}, "actor_rollout_ref.rollout.n=6"),
        ({"LR": "1e-5"}, "actor_rollout_ref.actor.optim.lr=1e-5"),
        ({"USE_KL_LOSS": "no"}, "actor_rollout_ref.actor.use_kl_loss=False"),
        ({"VAL_BEFORE_TRAIN": "1"}, "trainer.val_before_train=True"),
        ({"LOGGERS": "console, wandb"}, "trainer.logger=['console','wandb']"),
        ({"MODEL_PATH": "/models/it's here"}, r"actor_rollout_ref.model.path='/models/it\'s here'"),
        ({"LORA_EXCLUDE_MODULES": r".*visual\..*"}, r"actor_rollout_ref.model.exclude_modules='.*visual\..*'"),
        ({"JUDGE_CACHE_PATH": "none"}, "reward.speciarl.judge.cache_path=null"),
        ({"JUDGE_CONSTRAINT": "choice"}, "+reward.speciarl.judge.constraint='choice'"),
        ({"TOTAL_TRAINING_STEPS": "20"}, "trainer.total_training_steps=20"),
    ],
)
def test_a_variable_is_written_for_its_keys_node(main_run, environ, expected):
    assert overrides(main_run, **environ) == [expected]


@pytest.mark.parametrize("environ", [{"ATTN_IMPL": "auto"}, {"USE_REMOVE_PADDING": "AUTO"}, {"LR": ""}, {"ROLLOUT_N": "  "}])
def test_empty_or_auto_leaves_the_key_to_the_config(main_run, environ):
    assert overrides(main_run, **environ) == []


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LR": "3e-5x"}, "LR='3e-5x': actor_rollout_ref.actor.optim.lr takes a number"),
        ({"USE_DYNAMIC_BSZ": "maybe"}, "USE_DYNAMIC_BSZ='maybe': actor_rollout_ref.actor.use_dynamic_bsz takes true or false"),
    ],
)
def test_a_value_the_key_cannot_take_names_the_variable_and_the_key(main_run, environ, message):
    with pytest.raises(RecipeError, match=message.replace(".", r"\.").replace("(", r"\(")):
        overrides(main_run, **environ)


def test_without_flash_attn_the_attention_falls_back_to_sdpa(main_run):
    """flash-attn cannot be installed here, which is the case the fallback is for."""
    assert machine_overrides(main_run, {}, dry_run=False) == [
        "actor_rollout_ref.model.override_config.attn_implementation='sdpa'",
        "actor_rollout_ref.model.use_remove_padding=False",
    ]


def test_a_dry_run_assumes_the_configs_attention(main_run):
    assert machine_overrides(main_run, {}, dry_run=True) == []


def test_remove_padding_follows_an_attention_the_user_chose_unless_set_too():
    chosen = compose_arguments(recipe_arguments(None) + ["actor_rollout_ref.model.override_config.attn_implementation=eager"])
    assert machine_overrides(chosen, {}, dry_run=False) == ["actor_rollout_ref.model.use_remove_padding=False"]
    assert machine_overrides(chosen, {"USE_REMOVE_PADDING": "True"}, dry_run=False) == []


def test_a_variable_a_script_sets_without_exporting_still_applies(tmp_path):
    """Old-style custom recipe: defaults set with ``: "${NAME:=value}"`` before sourcing common.sh."""
    script = tmp_path / "my_recipe.sh"
    script.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        ': "${ROLLOUT_N:=5}"\n: "${EXPERIMENT_NAME:=mine}"\n'
        f'source "{RECIPES}/common.sh"\nspeciarl_main "$@"\n',
        encoding="utf-8",
    )
    emitted = tmp_path / "args"
    result = subprocess.run(["bash", str(script)], env=clean_env(tmp_path, DRY_RUN_EMIT=str(emitted)),
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    arguments = emitted.read_text(encoding="utf-8").split("\0")
    assert "actor_rollout_ref.rollout.n=5" in arguments and "trainer.experiment_name='mine'" in arguments
    assert f"trainer.default_local_dir='{tmp_path}/checkpoints/speciarl/mine'" in arguments


def test_the_environment_loses_to_the_recipes_arguments(tmp_path):
    arguments = emit_arguments("speciarl_qwen25vl7b.sh", Path(tmp_path), "reward.speciarl.rule=scala1", REWARD_RULE="binary")
    assert arguments.index("reward.speciarl.rule='binary'") < arguments.index("reward.speciarl.rule=scala1")


def test_the_docs_list_every_variable_with_its_key():
    rows = [line for line in (RECIPES.parent / "docs" / "recipes.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `")]
    missing = [a.name for a in ALIASES if not any(f"`{a.name}`" in row and f"`{a.key}`" in row for row in rows)]
    assert not missing, f"docs/recipes.md lacks these variables' rows: {missing}"

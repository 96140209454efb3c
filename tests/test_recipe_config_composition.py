"""The recipes' Hydra YAML is found by verl's own ``main_ppo`` and composes as our code reads it.

``verl_ext/recipes/compose.py`` builds Hydra's search path the way ``@hydra.main`` does, so the
dry run and the shell see the config ``main_ppo`` trains with; these tests hold it to that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from verl_ext.recipes.compose import compose_arguments, hydra_list, hydra_quote, recipe_arguments
from verl_ext.recipes.errors import RecipeError

CONFIG = Path(__file__).resolve().parents[1] / "verl_ext" / "recipes" / "config"
VARIANTS = sorted(p.stem for p in (CONFIG / "recipe").glob("*.yaml"))
DATA = ["data.train_files=[/d/train.parquet]", "data.val_files=[/d/val.parquet]"]


def _resolved(argv: list[str], **kwargs) -> dict:
    return OmegaConf.to_container(compose_arguments(argv, **kwargs), resolve=True)


def test_main_ppo_composes_a_variant_exactly_as_the_recipes_read_it(tmp_path):
    """verl's real CLI (``--cfg job`` prints the config and stops) against our composition."""
    argv = recipe_arguments("dapo_dynamic_sampling_qwen25vl7b") + DATA + ["trainer.total_epochs=2"]
    result = subprocess.run(
        [sys.executable, "-m", "verl.trainer.main_ppo", *argv, "--cfg", "job", "--resolve"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert yaml.safe_load(result.stdout) == _resolved(argv)


@pytest.mark.parametrize("variant", [None, *VARIANTS])
def test_reading_verl_by_its_folder_gives_the_same_config(variant):
    """The shell's fast path (no ``import verl``) and main_ppo's search path agree for every recipe."""
    argv = recipe_arguments(variant) + DATA
    assert _resolved(argv, verl_by_path=True) == _resolved(argv)


def test_an_unknown_variant_names_the_ones_there_are():
    with pytest.raises(RecipeError, match=r"recipe/dapo_qwen25vl7.*dapo_qwen25vl7b"):
        compose_arguments(recipe_arguments("dapo_qwen25vl7") + DATA, verl_by_path=True)


def test_arguments_without_a_config_compose_verls_own_defaults():
    """No ``--config-name``: ``main_ppo``'s own ``ppo_trainer``, as the README's reuse recipe runs it."""
    config = compose_arguments(["algorithm.adv_estimator=grpo"])
    assert config.algorithm.adv_estimator == "grpo" and config.trainer.project_name == "verl_examples"


def test_a_hydra_command_other_than_a_run_is_refused():
    with pytest.raises(RecipeError, match="--cfg"):
        compose_arguments([*recipe_arguments(None), "--cfg", "job"])


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=30))
def test_a_quoted_value_reaches_the_config_unchanged(text):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    assert parser.parse_override(f"key={hydra_quote(text)}").value() == text
    assert parser.parse_override(f"key={hydra_list([text, 'x'])}").value() == [text, "x"]


def test_a_variant_of_your_own_builds_on_ours_from_its_own_folder(tmp_path):
    """What docs/recipes.md tells users: ``--config-dir=FOLDER recipe=mine`` with FOLDER/recipe/mine.yaml."""
    (tmp_path / "recipe").mkdir()
    (tmp_path / "recipe" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - dapo_qwen25vl7b\n  - _self_\ntrainer:\n  experiment_name: mine\n",
        encoding="utf-8",
    )
    config = compose_arguments(recipe_arguments(None) + [f"--config-dir={tmp_path}", "recipe=mine"] + DATA, verl_by_path=True)
    assert config.trainer.experiment_name == "mine"
    assert config.actor_rollout_ref.actor.clip_ratio_high == 0.28

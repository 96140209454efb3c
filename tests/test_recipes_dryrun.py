"""Every recipe composes into a valid verl 0.9.1 config, through the real shell scripts.

Each script runs under bash with ``DRY_RUN=1``. To keep the suite fast, most tests ask the
script for its final Hydra argument list (``DRY_RUN_EMIT``) and feed it to the same
``verl_ext.recipes.dry_run`` code in this process (one verl import instead of one per recipe).
Two tests run the full path the user runs (bash -> ``python -m verl_ext.recipes.dry_run``):
the main recipe writing its YAML, and a mistyped override that must fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from recipe_runs import RECIPES, clean_env, compose_emitted, emit_arguments, lookup, resolved_recipe

from verl_ext.recipes.dry_run import dry_run
from verl_ext.recipes.errors import RecipeError

#: Settings every training recipe shares with the paper's main run unless it says otherwise.
MAIN_RUN = {
    "reward.reward_manager.source": "register",  # the entry-point path the README tells users to rely on
    "reward.reward_manager.name": "speciarl",
    "trainer.v1.trainer_mode": "speciarl",  # judge guard before the update, reward figures every step
    "data.custom_cls.path": "pkg://verl_ext.data.dataset",
    "data.custom_cls.name": "FineGrainedImageDataset",
    "actor_rollout_ref.model.path": "Qwen/Qwen2.5-VL-7B-Instruct",
    "actor_rollout_ref.model.lora_rank": 64,
    "actor_rollout_ref.model.lora_alpha": 32,
    "actor_rollout_ref.model.target_modules": "all-linear",
    "actor_rollout_ref.model.exclude_modules": ".*visual.*",
    "actor_rollout_ref.actor.optim.lr": 3e-5,
    "data.train_batch_size": 256,
    "actor_rollout_ref.rollout.n": 10,
    "actor_rollout_ref.actor.ppo_mini_batch_size": 128,
    "actor_rollout_ref.actor.use_kl_loss": True,
    "actor_rollout_ref.actor.kl_loss_coef": 0.01,
    "actor_rollout_ref.actor.kl_loss_type": "low_var_kl",
    "actor_rollout_ref.actor.entropy_coeff": 0,
    "algorithm.adv_estimator": "grpo",
    "algorithm.norm_adv_by_std_in_grpo": True,
    "algorithm.use_kl_in_reward": False,
    "data.max_prompt_length": 2048,
    "data.max_response_length": 2048,
    "trainer.total_epochs": 15,
    "trainer.test_freq": 5,
    "actor_rollout_ref.rollout.name": "vllm",
    "actor_rollout_ref.actor.strategy": "fsdp",
    "reward.speciarl.rule": "best_in_group",
    "reward.speciarl.label_noise": 0.0,
    "data.speciarl.prompt_variant": "general",
    "trainer.n_gpus_per_node": 4,  # 8 GPUs: 4 train (1,280 responses split evenly), 4 serve the judge
}

DRGRPO = {
    "algorithm.norm_adv_by_std_in_grpo": False,
    "actor_rollout_ref.actor.loss_agg_mode": "seq-mean-token-sum-norm",
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.kl_loss_coef": 0.0,
}

DAPO = {
    "actor_rollout_ref.actor.use_kl_loss": False,
    "actor_rollout_ref.actor.kl_loss_coef": 0.0,
    "actor_rollout_ref.actor.clip_ratio_low": 0.2,
    "actor_rollout_ref.actor.clip_ratio_high": 0.28,
    "actor_rollout_ref.actor.clip_ratio_c": 10.0,
    "actor_rollout_ref.actor.loss_agg_mode": "token-mean",
    "actor_rollout_ref.actor.use_dynamic_bsz": True,
    "actor_rollout_ref.actor.ppo_max_token_len_per_gpu": 4096,
    "actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu": 4096,
    "actor_rollout_ref.ref.log_prob_max_token_len_per_gpu": 4096,
    "reward.speciarl.overlong_buffer.enable": True,
    "reward.speciarl.overlong_buffer.len": 512,
    "reward.speciarl.overlong_buffer.penalty_factor": 1.0,
}

#: (script, extra environment, expected values that differ from MAIN_RUN)
TRAINING_RECIPES: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("speciarl_qwen25vl7b.sh", {}, {"trainer.experiment_name": "qwen25vl7b_cub_speciarl"}),
    ("rft_binary_qwen25vl7b.sh", {}, {"reward.speciarl.rule": "binary"}),
    ("graded_qwen25vl7b.sh", {}, {"reward.speciarl.rule": "scala1"}),
    ("graded_qwen25vl7b.sh", {"REWARD_RULE": "scala2"}, {"reward.speciarl.rule": "scala2"}),
    ("graded_qwen25vl7b.sh", {"REWARD_RULE": "scala3"}, {"reward.speciarl.rule": "scala3"}),
    ("rollouts_n5_qwen25vl7b.sh", {}, {"actor_rollout_ref.rollout.n": 5}),
    # 128 x 15 = 1,920 responses split evenly over 6 GPUs: the judge keeps 2.
    ("rollouts_n15_qwen25vl7b.sh", {}, {"actor_rollout_ref.rollout.n": 15, "trainer.n_gpus_per_node": 6}),
    ("drgrpo_qwen25vl7b.sh", {}, DRGRPO),
    ("drgrpo_qwen25vl7b.sh", {"REWARD_RULE": "binary"}, {**DRGRPO, "reward.speciarl.rule": "binary"}),
    ("dapo_qwen25vl7b.sh", {}, {**DAPO, "algorithm.filter_groups.enable": False}),
    (
        "dapo_dynamic_sampling_qwen25vl7b.sh",
        {},
        {
            **DAPO,
            "algorithm.filter_groups.enable": True,
            "algorithm.filter_groups.metric": "score",
            "algorithm.filter_groups.max_inflight_gen_batches": 3,
            "data.gen_batch_size": 768,
            "reward.num_workers": 16,
        },
    ),
    *[
        (
            "label_noise_qwen25vl7b.sh",
            {"LABEL_NOISE": noise},
            {"reward.speciarl.label_noise": float(noise), "trainer.experiment_name": f"qwen25vl7b_cub1024_speciarl_noise{noise}"},
        )
        for noise in ("0.05", "0.10", "0.25")
    ],
    (
        "smoke_qwen25vl3b.sh",
        {},
        {
            "actor_rollout_ref.model.path": "Qwen/Qwen2.5-VL-3B-Instruct",
            "actor_rollout_ref.rollout.tensor_model_parallel_size": 1,
            "data.train_batch_size": 8,
            "data.max_response_length": 1024,
            "actor_rollout_ref.rollout.n": 4,
            "actor_rollout_ref.actor.ppo_mini_batch_size": 8,
            "trainer.total_training_steps": 3,
            "trainer.test_freq": 2,
            "trainer.n_gpus_per_node": 1,  # 2 GPUs: 1 trains, 1 serves the small judge
            "reward.speciarl.judge.model": "Qwen/Qwen3-4B-Instruct-2507",
        },
    ),
]


_clean_env = clean_env
_lookup = lookup


def compose_recipe(script: str, tmp_path: Path, *args: str, **env: str) -> dict:
    return compose_emitted(emit_arguments(script, tmp_path, *args, **env), tmp_path / f"{script}.yaml")


@pytest.mark.parametrize(
    ("script", "env", "expected"),
    TRAINING_RECIPES,
    ids=[f"{s}{'-' + '-'.join(e.values()) if e else ''}" for s, e, _ in TRAINING_RECIPES],
)
def test_training_recipe_composes_into_the_expected_verl_config(script, env, expected, recipe_runs_root):
    config = resolved_recipe(script, env, (), recipe_runs_root)
    for key, value in {**MAIN_RUN, **expected}.items():
        assert _lookup(config, key) == value, key


def test_every_training_script_is_covered():
    runnable = {p.name for p in RECIPES.glob("*.sh") if os.access(p, os.X_OK)}
    assert {"common.sh", "dapo_defaults.sh"}.isdisjoint(runnable)  # sourced fragments, not recipes
    # Covered elsewhere: the CPU smoke recipe trains for real in tests/test_train_cpu_e2e.py (its dry
    # run is below), the SFT recipe in test_recipe_sft.py, the paper's sequence in test_reproduce_paper.py.
    scripts = runnable - {"judge_server.sh", "eval_be_specific_qwen25vl7b.sh", "smoke_cpu.sh", "sft_qwen25vl7b.sh",
                          "reproduce_paper.sh"}
    assert scripts == {script for script, _, _ in TRAINING_RECIPES}


def test_cpu_smoke_recipe_dry_run_composes_the_cpu_backend_config(tmp_path):
    out = tmp_path / "smoke.yaml"
    result = subprocess.run(
        ["bash", str(RECIPES / "smoke_cpu.sh")],
        env=_clean_env(tmp_path, DRY_RUN_CONFIG=str(out), SMOKE_DIR=str(tmp_path / "smoke")),
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "[dry run] OK" in result.stdout
    config = yaml.safe_load(out.read_text(encoding="utf-8"))
    for key, value in {
        "actor_rollout_ref.rollout.name": "hf_cpu", "actor_rollout_ref.actor.strategy": "fsdp2",
        "trainer.device": "cpu", "trainer.v1.trainer_mode": "speciarl", "reward.reward_manager.name": "speciarl",
        "actor_rollout_ref.model.path": str(tmp_path / "smoke" / "kit"), "trainer.total_training_steps": 2,
    }.items():
        assert _lookup(config, key) == value, key


def test_main_recipe_dry_run_writes_the_resolved_config(tmp_path):
    """The path users take: bash -> python -m verl_ext.recipes.dry_run -> YAML file."""
    out = tmp_path / "resolved.yaml"
    result = subprocess.run(
        ["bash", str(RECIPES / "speciarl_qwen25vl7b.sh"), "trainer.total_epochs=2"],
        env=_clean_env(tmp_path, DRY_RUN_CONFIG=str(out)),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "[dry run] OK" in result.stdout
    assert "verl_ext.reward.manager.SpeciaRLRewardManager" in result.stdout
    assert "verl_ext.trainer.speciarl.SpeciaRLTrainer" in result.stdout
    config = yaml.safe_load(out.read_text(encoding="utf-8"))
    assert _lookup(config, "trainer.total_epochs") == 2  # "$@" passes through last
    assert _lookup(config, "actor_rollout_ref.model.lora_rank") == 64
    assert _lookup(config, "reward.speciarl.judge.urls") == ["http://127.0.0.1:8000/v1"]


def test_mistyped_override_fails_with_the_key_in_the_message(tmp_path):
    result = subprocess.run(
        ["bash", str(RECIPES / "speciarl_qwen25vl7b.sh"), "actor_rollout_ref.actor.optim.lrr=1e-5"],
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "Hydra rejected" in result.stderr and "lrr" in result.stderr


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("+reward.speciarl.rulee=binary", "rulee"),
        # keys the recipe's config holds take no `+` (see the next test)
        ("reward.speciarl.rule=best_of_group", "reward.speciarl.rule"),
        ("+reward.speciarl.judge.timeout=5", "timeout"),
        ("+data.speciarl.prompt_varient=specific", "prompt_varient"),
        ("data.speciarl.prompt_variant=specfic", "specfic"),
        ("reward.reward_manager.name=speciarll", "speciarll"),
        ("trainer.v1.trainer_mode=speciarll", "speciarll"),
        ("data.custom_cls.name=FineGrainedDataset", "FineGrainedDataset"),
        ("data.custom_cls.path=pkg://verl_ext.data.no_such_module", "verl_ext.data.no_such_module"),
        ("data.custom_cls.path=/nonexistent/dataset.py", "/nonexistent/dataset.py"),
        ("++actor_rollout_ref.rollout.agent.agent_loop_manager_class=verl_ext.reward.Guard", "verl_ext.reward.Guard"),
        ("algorithm.filter_groups.enable=True", "filter_groups.metric"),
        ("actor_rollout_ref.rollout.tensor_model_parallel_size=3", "tensor_model_parallel_size=3"),
    ],
)
def test_mistyped_free_form_setting_fails_at_dry_run(override, fragment, tmp_path):
    """Keys Hydra cannot check (``+`` keys, class names, DAPO metric) are checked by us."""
    # The GPU split follows the config's rollout TP; with GPUS_PER_NODE the recipe takes the
    # count as given and the dry run checks it against the TP.
    env = {"GPUS_PER_NODE": "4"} if "tensor_model_parallel_size" in override else {}
    arguments = emit_arguments("speciarl_qwen25vl7b.sh", tmp_path, override, **env)
    if override.startswith("algorithm.filter_groups"):
        arguments.append("algorithm.filter_groups.metric=scor")
        fragment = "scor"
    with pytest.raises(RecipeError, match=fragment.replace(".", r"\.").replace("+", r"\+")):
        dry_run(arguments, echo=lambda _line: None)


def _run_recipe(script: str, tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(RECIPES / script), *args],
        env=_clean_env(tmp_path, DRY_RUN_EMIT=str(tmp_path / "x"), **env),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )


def test_a_plus_on_a_key_the_recipe_config_holds_is_refused_with_the_fix(tmp_path):
    """On verl's own config ``+reward.speciarl.rule=...`` adds the key; the recipes' config has it."""
    result = _run_recipe("speciarl_qwen25vl7b.sh", tmp_path, "+reward.speciarl.rule=binary")
    assert result.returncode == 2
    assert "Either remove + prefix: 'reward.speciarl.rule=binary'" in result.stderr


def test_arguments_decide_the_gpu_split_and_the_output_folder(tmp_path):
    arguments = emit_arguments("speciarl_qwen25vl7b.sh", tmp_path, "actor_rollout_ref.rollout.n=15", "trainer.experiment_name=mine")
    assert "trainer.n_gpus_per_node=6" in arguments  # 128 x 15 responses split evenly over 6 GPUs
    config = compose_emitted(arguments, tmp_path / "resolved.yaml")
    assert _lookup(config, "trainer.default_local_dir") == str(tmp_path / "checkpoints" / "speciarl" / "mine")
    assert _lookup(config, "reward.speciarl.metrics_path").startswith(str(tmp_path / "checkpoints" / "speciarl" / "mine"))


def test_a_rollout_tp_no_gpu_split_fits_fails_before_any_gpu_naming_the_key(tmp_path):
    result = _run_recipe("speciarl_qwen25vl7b.sh", tmp_path, "actor_rollout_ref.rollout.tensor_model_parallel_size=3")
    assert result.returncode == 2
    assert "actor_rollout_ref.rollout.tensor_model_parallel_size=3" in result.stderr


def test_environment_overrides_recipe_defaults_and_arguments_override_both(tmp_path):
    arguments = emit_arguments("rollouts_n5_qwen25vl7b.sh", tmp_path, "actor_rollout_ref.actor.optim.lr=1e-5", ROLLOUT_N="6", LR="2e-5")
    assert "actor_rollout_ref.rollout.n=6" in arguments
    assert arguments[-1] == "actor_rollout_ref.actor.optim.lr=1e-5"
    config = compose_recipe("rollouts_n5_qwen25vl7b.sh", tmp_path, "actor_rollout_ref.actor.optim.lr=1e-5", ROLLOUT_N="6")
    assert _lookup(config, "actor_rollout_ref.actor.optim.lr") == 1e-5


def test_multi_node_run_uses_the_cluster_and_a_list_of_judge_urls(tmp_path):
    config = compose_recipe(
        "speciarl_qwen25vl7b.sh",
        tmp_path,
        NNODES="2",
        GPUS_PER_NODE="8",
        SPECIARL_JUDGE_URLS="http://judge-a:8000/v1, http://judge-b:8000/v1",
        HF_HOME="/shared/hf",
        FORWARD_ENV="HF_HOME",
    )
    assert _lookup(config, "trainer.nnodes") == 2
    assert _lookup(config, "trainer.n_gpus_per_node") == 8
    assert _lookup(config, "reward.speciarl.judge.urls") == ["http://judge-a:8000/v1", "http://judge-b:8000/v1"]
    assert _lookup(config, "ray_kwargs.ray_init.runtime_env.env_vars.HF_HOME") == "/shared/hf"


def test_multi_node_run_without_a_judge_url_is_refused(tmp_path):
    result = subprocess.run(
        ["bash", str(RECIPES / "speciarl_qwen25vl7b.sh")],
        env=_clean_env(tmp_path, NNODES="2", DRY_RUN_EMIT=str(tmp_path / "x")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "SPECIARL_JUDGE_URLS" in result.stderr


def test_too_few_gpus_for_judge_and_training_is_refused(tmp_path):
    result = subprocess.run(
        ["bash", str(RECIPES / "speciarl_qwen25vl7b.sh")],
        env=_clean_env(tmp_path, DRY_RUN_GPUS="3", DRY_RUN_EMIT=str(tmp_path / "x")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "too few GPUs: 3 visible, at least 4 needed" in result.stderr


def test_be_specific_recipe_evaluates_the_base_model_with_the_specific_prompt(tmp_path):
    from verl_ext.recipes.eval_dry_run import check_eval_arguments

    settings = check_eval_arguments(emit_arguments("eval_be_specific_qwen25vl7b.sh", tmp_path, SPECIARL_JUDGE_URLS="http://j:8000/v1"))
    assert settings["prompt_variant"] == "specific"
    assert settings["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert (settings["n"], settings["temperature"], settings["max_new_tokens"]) == (1, 0.0, 2048)
    assert [Path(p).parent.name for p in settings["data"]] == [
        "cub200", "flowers102", "oxford_pets", "food101", "fgvc_aircraft", "stanford_cars",
    ]
    assert settings["judge_url"] == ["http://j:8000/v1"]


def test_be_specific_recipe_dry_run_rejects_an_unknown_prompt_variant(tmp_path):
    result = subprocess.run(
        ["bash", str(RECIPES / "eval_be_specific_qwen25vl7b.sh")],
        env=_clean_env(tmp_path, EVAL_PROMPT_VARIANT="specfic"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--prompt-variant" in result.stderr

"""Every recipe, and every environment variable it accepts, resolves to the saved verl config.

``tests/fixtures/recipe_configs/`` holds the configs the recipes resolve to, written by the
recipes' own dry run: first from the bash recipes (before their settings became Hydra YAML),
since then changed only on purpose, each change with its reason in the commit that made it.
The main run is saved whole; every other case as the keys in which it differs from the main
run, so a reviewer sees what each variant changes. A changed value, an added or a lost key
fails here until the fixture is rewritten:

    python tests/test_recipes_resolved_configs.py --update   # bash -> DRY_RUN_CONFIG, as users run it

Machine-specific paths are written as ``<HOME>`` and ``<PWD>`` (the run's home and working folders).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from recipe_runs import RECIPES, clean_env, folders_of, normalise, placeholders, resolved_recipe

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "recipe_configs"
BASE = "speciarl_qwen25vl7b"

#: Every environment variable of the recipes set away from its default, in one run.
EVERY_VARIABLE = {
    "MODEL_PATH": "/models/Qwen VL's copy",
    "ATTN_IMPL": "sdpa",
    "USE_REMOVE_PADDING": "False",
    "GRADIENT_CHECKPOINTING": "False",
    "LORA_RANK": "32",
    "LORA_ALPHA": "16",
    "LORA_TARGET_MODULES": "q_proj",
    "LORA_EXCLUDE_MODULES": ".*(visual|merger).*",
    "ACTOR_STRATEGY": "fsdp2",
    "DATA_DIR": "/data/speciarl",
    "DATA_SOURCE": "flowers102",
    "DATA_SEED": "7",
    "TRAIN_SUBSET": "100",
    "VAL_SUBSET": "50",
    "PROMPT_VARIANT": "specific",
    "ON_BAD_IMAGE": "skip",
    "MAX_PROMPT_LENGTH": "1024",
    "MAX_RESPONSE_LENGTH": "1536",
    "ADV_ESTIMATOR": "grpo",  # GRPO needs no critic; any other estimator changes far more than one key
    "NORM_ADV_BY_STD": "False",
    "LR": "1e-5",
    "TRAIN_BATCH_SIZE": "128",
    "ROLLOUT_N": "8",
    "PPO_MINI_BATCH_SIZE": "64",
    "PPO_MICRO_BATCH_SIZE_PER_GPU": "16",
    "LOG_PROB_MICRO_BATCH_SIZE_PER_GPU": "8",
    "USE_DYNAMIC_BSZ": "True",
    "PPO_MAX_TOKEN_LEN_PER_GPU": "8192",
    "USE_KL_LOSS": "yes",
    "KL_LOSS_COEF": "0.02",
    "KL_LOSS_TYPE": "kl",
    "ENTROPY_COEFF": "0.001",
    "LOSS_AGG_MODE": "seq-mean-token-mean",
    "CLIP_RATIO_LOW": "0.1",
    "CLIP_RATIO_HIGH": "0.3",
    "CLIP_RATIO_C": "5.0",
    "FILTER_GROUPS": "True",
    "FILTER_GROUPS_METRIC": "correct",
    "FILTER_GROUPS_MAX_INFLIGHT": "2",
    "GEN_BATCH_SIZE": "256",
    "ROLLOUT_ENGINE": "vllm",  # the only engine whose config checks run without it installed
    "ROLLOUT_TP": "1",
    "ROLLOUT_GPU_MEMORY_UTILIZATION": "0.5",
    "ROLLOUT_TEMPERATURE": "0.9",
    "REWARD_RULE": "scala2",
    "LABEL_NOISE": "0.05",
    "REWARD_SEED": "3",
    "GROUP_TIMEOUT_S": "300",
    "REWARD_NUM_WORKERS": "16",
    "OVERLONG_BUFFER": "True",
    "OVERLONG_BUFFER_LEN": "256",
    "OVERLONG_PENALTY_FACTOR": "0.5",
    "SPECIARL_JUDGE_MODEL": "judge-x",
    "JUDGE_TP": "1",
    "JUDGE_PORT": "9000",
    "JUDGE_ON_FAILURE": "degrade",
    "JUDGE_CONSTRAINT": "choice",
    "JUDGE_CACHE_PATH": "none",
    "PROJECT_NAME": "proj",
    "EXPERIMENT_NAME": "exp",
    "OUTPUT_DIR": "/runs/exp",
    "LOGGERS": "console",
    "TOTAL_EPOCHS": "3",
    "TOTAL_TRAINING_STEPS": "20",
    "TEST_FREQ": "10",
    "SAVE_FREQ": "50",
    "VAL_BEFORE_TRAIN": "False",
    "TRAIN_GPUS": "4",
}

#: case name -> (script, environment, arguments)
CASES: dict[str, tuple[str, dict[str, str], tuple[str, ...]]] = {
    BASE: ("speciarl_qwen25vl7b.sh", {}, ()),
    "rft_binary_qwen25vl7b": ("rft_binary_qwen25vl7b.sh", {}, ()),
    "graded_qwen25vl7b": ("graded_qwen25vl7b.sh", {}, ()),
    "graded_qwen25vl7b-scala2": ("graded_qwen25vl7b.sh", {"REWARD_RULE": "scala2"}, ()),
    "graded_qwen25vl7b-scala3": ("graded_qwen25vl7b.sh", {"REWARD_RULE": "scala3"}, ()),
    "rollouts_n5_qwen25vl7b": ("rollouts_n5_qwen25vl7b.sh", {}, ()),
    "rollouts_n15_qwen25vl7b": ("rollouts_n15_qwen25vl7b.sh", {}, ()),
    "drgrpo_qwen25vl7b": ("drgrpo_qwen25vl7b.sh", {}, ()),
    "drgrpo_qwen25vl7b-binary": ("drgrpo_qwen25vl7b.sh", {"REWARD_RULE": "binary"}, ()),
    "dapo_qwen25vl7b": ("dapo_qwen25vl7b.sh", {}, ()),
    "dapo_qwen25vl7b-binary": ("dapo_qwen25vl7b.sh", {"REWARD_RULE": "binary"}, ()),
    "dapo_dynamic_sampling_qwen25vl7b": ("dapo_dynamic_sampling_qwen25vl7b.sh", {}, ()),
    "label_noise_qwen25vl7b": ("label_noise_qwen25vl7b.sh", {}, ()),
    **{
        f"label_noise_qwen25vl7b-{noise}": ("label_noise_qwen25vl7b.sh", {"LABEL_NOISE": noise}, ())
        for noise in ("0.05", "0.10", "0.25")
    },
    "smoke_qwen25vl3b": ("smoke_qwen25vl3b.sh", {}, ()),
    "smoke_cpu": ("smoke_cpu.sh", {}, ()),
    "rollouts_n5_qwen25vl7b-env-and-arguments": (
        "rollouts_n5_qwen25vl7b.sh", {"ROLLOUT_N": "6", "LR": "2e-5"}, ("actor_rollout_ref.actor.optim.lr=1e-5",),
    ),
    "speciarl_qwen25vl7b-multi-node": (
        "speciarl_qwen25vl7b.sh",
        {
            "NNODES": "2",
            "GPUS_PER_NODE": "8",
            "SPECIARL_JUDGE_URLS": "http://judge-a:8000/v1, http://judge-b:8000/v1",
            "HF_HOME": "/shared/hf",
            "FORWARD_ENV": "HF_HOME",
            "TRAIN_FILES": "/shared/a.parquet,/shared/b.parquet",
            "VAL_FILES": "/shared/val.parquet",
            "JUDGE_CACHE_PATH": "/shared/judge.sqlite",
            "JUDGE_CHECK_TIMEOUT_S": "5",
        },
        (),
    ),
    "speciarl_qwen25vl7b-every-variable": ("speciarl_qwen25vl7b.sh", EVERY_VARIABLE, ()),
}


# ---------------------------------------------------------------------------- flat configs
def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{dotted.key: leaf}``; lists and empty mappings are leaves."""
    if isinstance(node, dict) and node:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def difference(base: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """What a case sets that the base does not (``set``) and the base keys it lacks (``removed``)."""
    changed = {key: value for key, value in case.items() if key not in base or base[key] != value}
    return {"set": changed, "removed": sorted(key for key in base if key not in case)}


# ---------------------------------------------------------------------------- fixtures
def _fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.yaml"


def load_fixture(name: str, base: dict[str, Any]) -> dict[str, Any]:
    """A case's saved flat config: the base itself, or the base with the case's differences."""
    saved = yaml.safe_load(_fixture_path(name).read_text(encoding="utf-8"))
    if name == BASE:
        return flatten(saved)
    expected = {key: value for key, value in base.items() if key not in saved["removed"]}
    expected.update(saved["set"])
    return expected


def write_fixture(name: str, config: dict[str, Any], base: dict[str, Any]) -> None:
    script, env, args = CASES[name]
    header = f"# bash recipes/{script} {' '.join(args)}".rstrip() + f"   environment: {env or 'none'}\n"
    if name == BASE:
        body = yaml.safe_dump(config, sort_keys=True, width=1000)
    else:
        header += f"# the keys in which it differs from {BASE}.yaml\n"
        body = yaml.safe_dump(difference(base, flatten(config)), sort_keys=True, width=1000)
    _fixture_path(name).write_text(header + body, encoding="utf-8")


def _report(expected: dict[str, Any], actual: dict[str, Any]) -> str:
    lines = []
    for key in sorted(set(expected) | set(actual)):
        if expected.get(key, "<absent>") != actual.get(key, "<absent>"):
            lines.append(f"  {key}: saved {expected.get(key, '<absent>')!r}, now {actual.get(key, '<absent>')!r}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- tests
@pytest.fixture(scope="module")
def base_fixture() -> dict[str, Any]:
    return flatten(yaml.safe_load(_fixture_path(BASE).read_text(encoding="utf-8")))


def test_every_case_has_a_fixture_and_every_fixture_a_case():
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == set(CASES)


def test_every_training_recipe_has_a_case():
    scripts = {p.name for p in RECIPES.glob("*.sh") if p.stat().st_mode & 0o111}
    # Not main_ppo recipes: the SFT recipe (verl's SFT trainer, test_recipe_sft.py) and the paper's
    # whole sequence (test_reproduce_paper.py) are checked by their own tests.
    not_ppo = {"judge_server.sh", "eval_be_specific_qwen25vl7b.sh", "sft_qwen25vl7b.sh", "reproduce_paper.sh"}
    assert scripts - not_ppo <= {script for script, _, _ in CASES.values()}


@pytest.mark.parametrize("name", list(CASES))
def test_recipe_resolves_to_the_saved_config(name, recipe_runs_root, base_fixture):
    actual = flatten(resolved_recipe(*CASES[name], recipe_runs_root))
    expected = load_fixture(name, base_fixture)
    assert actual == expected, f"{name} no longer resolves to tests/fixtures/recipe_configs/{name}.yaml:\n" + _report(expected, actual)


def run_full_path(name: str, tmp_path: Path) -> dict[str, Any]:
    """bash recipe -> ``python -m verl_ext.recipes.dry_run`` -> ``DRY_RUN_CONFIG`` YAML, as users run it."""
    script, env, args = CASES[name]
    home, work = folders_of(tmp_path)
    out = tmp_path / "resolved_full.yaml"
    result = subprocess.run(
        ["bash", str(RECIPES / script), *args],
        env=clean_env(home, DRY_RUN_CONFIG=str(out), **env),
        capture_output=True, text=True, timeout=600, cwd=work,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return normalise(yaml.safe_load(out.read_text(encoding="utf-8")), placeholders(home, work))


def test_the_users_path_resolves_to_the_same_saved_config(tmp_path, base_fixture):
    """The emitted arguments above and the user's own dry run agree (one case: they share all code)."""
    assert flatten(run_full_path(BASE, tmp_path)) == base_fixture


def _update() -> None:
    import tempfile

    FIXTURES.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        base = run_full_path(BASE, Path(tmp) / BASE)
    write_fixture(BASE, base, flatten(base))
    for name in CASES:
        if name == BASE:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            write_fixture(name, run_full_path(name, Path(tmp)), flatten(base))
        print(f"wrote {_fixture_path(name)}", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(__doc__)
    _update()

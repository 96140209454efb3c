"""verl's real ``main_ppo`` trains with our code, end to end, on CPU (``recipes/smoke_cpu.sh``).

What is real: verl 0.9.1's trainer (V1, sync), Ray, TransferQueue, the agent loop, the reward
loop with two workers and our Ray coordinator, FSDP2 over gloo, LoRA, GRPO, checkpoints, the
dataset class over ``data_prep/cub.py`` output, the recipe's ``common.sh`` path, verl's model
merger and our evaluation CLI. Test doubles, because this machine has no GPU and no model hub:
the policy is the offline kit's tiny random-weight Qwen2.5-VL served by the CPU test backend,
whose answer texts are scripted (generation itself runs); the judge is ``ScriptableJudgeServer``,
an OpenAI-compatible HTTP server on 127.0.0.1 that grades by a rule table.

The happy path runs on two simulated GPU ranks (``smoke_run``); one rank trains in the outage
and reuse runs. Each test reads the run's own outputs: the rollout and validation dumps, the reward figures,
the TensorBoard events, the checkpoints, the CPU rollout's weight-sync log.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from verl_ext.core.categories import Category
from verl_ext.testing import smoke

REPO = Path(__file__).resolve().parents[1]
SMOKE = REPO / "recipes" / "smoke_cpu.sh"
RUN_TIMEOUT_S = 600


def _env(**extra: str) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "VIRTUAL_ENV", "PYTHONPATH", "TMPDIR", "HOME")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PYTHON=sys.executable, **extra)
    return env


def run_smoke(smoke_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["bash", str(SMOKE), *args], env=_env(SMOKE_DIR=str(smoke_dir), **env),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=smoke_dir,
    )
    (smoke_dir / "smoke.log").write_text(result.stdout + result.stderr, encoding="utf-8")
    return result


RANKS = 2


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """The happy path, on two simulated GPU ranks (FSDP2 sharded over gloo, one rollout replica
    per rank): everything one rank does, and the sharding. One rank trains in the outage and
    reuse runs below, and ``recipes/smoke_cpu.sh``'s default is one rank."""
    smoke_dir = tmp_path_factory.mktemp("smoke_run")
    return smoke_dir, run_smoke(smoke_dir, SMOKE_GPUS=str(RANKS))


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _require_success(run) -> Path:
    smoke_dir, result = run
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return smoke_dir / "run"


# ---------------------------------------------------------------------------- happy path
def test_smoke_recipe_trains_checks_itself_and_says_where_outputs_are(smoke_run):
    run_dir = _require_success(smoke_run)
    out = smoke_run[1].stdout
    assert "[smoke] ok: rewards match the offline rule" in out
    assert f"checkpoints     {run_dir}/global_step_*/actor" in out
    assert "Training Progress" in smoke_run[1].stderr + out  # verl's own loop ran


def test_every_reward_is_the_offline_rule_and_parse_failures_score_minus_one(smoke_run):
    run_dir = _require_success(smoke_run)
    smoke_dir = smoke_run[0]
    table, default = smoke.load_rules(smoke_dir / "judge_rules.json")
    rows = smoke.read_dump(run_dir / "rollouts")
    assert sorted({r["step"] for r in rows}) == [1, 2] and len(rows) == 2 * 4 * 4  # steps x prompts x n
    expected = smoke.expected_rewards(rows, table, default)
    assert [r["score"] for r in rows] == [expected[i] for i in range(len(rows))]
    failures = [r for r in rows if smoke.offline_grade(r["gts"], r["output"], table, default).category is None]
    assert failures, "the scripted rollout keeps some raw model text: at least one parse failure"
    assert {r["score"] for r in failures} == {-1.0}
    categories = {smoke.offline_grade(r["gts"], r["output"], table, default).category for r in rows}
    assert len(categories - {None}) >= 3, categories  # wrong, abstain, generic, ... all reach the reward


def test_grpo_advantages_follow_the_rewards_group_by_group(smoke_run):
    """Zero for a group whose rewards are all equal; GRPO's (r - mean) / (std + eps) otherwise."""
    import statistics

    run_dir = _require_success(smoke_run)
    groups = defaultdict(list)
    for row in smoke.read_dump(run_dir / "rollouts"):
        groups[smoke.group_key(row)].append(row)
    mixed = uniform = 0
    for members in groups.values():
        scores = [r["score"] for r in members]
        advantages = [r["advantage"] for r in members]
        if len(set(scores)) == 1:
            uniform += 1
            assert advantages == [0.0] * len(members)
        else:
            mixed += 1
            mean, std = statistics.mean(scores), statistics.stdev(scores)  # torch.std is the sample std
            assert advantages == pytest.approx([(s - mean) / (std + 1e-6) for s in scores], abs=1e-4)
            assert any(a != 0.0 for a in advantages)
    assert mixed and uniform, f"{mixed} mixed and {uniform} uniform groups: both must occur"


def _lora_tensors(actor_dir: Path) -> dict:
    """Every rank's local shard of every tensor, keyed (rank, name)."""
    import torch

    shards = sorted(actor_dir.glob(f"model_world_size_{RANKS}_rank_*.pt"))
    assert [p.name for p in shards] == [f"model_world_size_{RANKS}_rank_{r}.pt" for r in range(RANKS)]
    tensors = {}
    for rank, shard in enumerate(shards):
        state = torch.load(shard, map_location="cpu", weights_only=False)
        tensors.update({(rank, k): (v.to_local() if hasattr(v, "to_local") else v) for k, v in state.items()})
    return tensors


def test_lora_weights_change_each_step_and_the_rollout_serves_them(smoke_run):
    import torch

    run_dir = _require_success(smoke_run)
    step1, step2 = _lora_tensors(run_dir / "global_step_1" / "actor"), _lora_tensors(run_dir / "global_step_2" / "actor")
    lora = [k for k in step1 if "lora_" in k[1]]
    base = [k for k in step1 if "lora_" not in k[1]]
    assert lora and base
    assert any(not torch.equal(step1[k], step2[k]) for k in lora), "the LoRA weights did not change from step 1 to 2"
    assert all(torch.equal(step1[k], step2[k]) for k in base), "base weights must stay frozen under LoRA"

    # Sync k follows step k's update. LoRA's B starts at zero, so the merged weights the rollout
    # gets first move with the first step that has a non-zero advantage (a step whose groups are
    # all uniform has no gradient; the scripted answers make that a matter of chance), and move
    # every step after it (Adam's momentum, weight decay on B).
    rows = smoke.read_dump(run_dir / "rollouts")
    signal = [step for step in (1, 2) if any(r["advantage"] != 0.0 for r in rows if r["step"] == step)]
    assert signal, "no step had a non-zero advantage: nothing for the weight sync to carry"
    logs = run_dir / "cpu_backend"
    sent_by_rank, served_steps = [], set()
    for rank in range(RANKS):  # one replica per rank, each fed by its own rank's adapter
        sent = {e["global_steps"]: e["checksum"] for e in _read_jsonl(logs / f"rollout_adapter_{rank}.jsonl")}
        server = _read_jsonl(logs / f"rollout_server_{rank}.jsonl")
        loaded = {e["global_steps"]: e["checksum"] for e in server if e["event"] == "update_weights"}
        assert sorted(sent) == [0, 1, 2] and loaded == sent  # the server holds exactly what the actor sent
        for step in (1, 2):
            moved = sent[step] != sent[step - 1]
            assert moved == (step >= signal[0]), f"sync {step} (first step with a gradient: {signal[0]}): {sent}"
        served = [(e["global_steps"], e["checksum"]) for e in server if e["event"] == "generate"]
        served_steps |= {step for step, _ in served}
        assert all(checksum == sent[step] for step, checksum in served), "a request was served with stale weights"
        sent_by_rank.append(sent)
    assert all(sent == sent_by_rank[0] for sent in sent_by_rank)  # every rank gathered the same full weights
    assert served_steps == {0, 1, 2}  # validation, step 1, step 2 (and the last validation)


def test_judge_saw_no_more_requests_than_distinct_pairs_that_need_it(smoke_run):
    run_dir = _require_success(smoke_run)
    stats = json.loads((smoke_run[0] / "judge_stats.json").read_text())
    rows = smoke.read_dump(run_dir / "rollouts") + smoke.read_dump(run_dir / "validation")
    pairs = smoke.judge_pairs(rows)
    assert 0 < stats["stats"]["requests"] <= len(pairs)
    assert max(count for _, _, count in stats["pair_counts"]) == 1  # never the same pair twice


def test_reward_figures_exist_for_every_step_and_validation_pass(smoke_run):
    run_dir = _require_success(smoke_run)
    figures = _read_jsonl(run_dir / "speciarl_reward_metrics.jsonl")
    assert [(r["role"], r["step"]) for r in figures] == [("val", 0), ("train", 1), ("train", 2), ("val", 2)]
    assert max(len(r) for r in figures) < 200  # flat, bounded records
    for record in figures:
        role = record["role"]
        assert record[f"speciarl/{role}/rollouts"] == (16 if role == "train" else 8)
    console = smoke_run[1].stdout + smoke_run[1].stderr
    for step in (1, 2):
        assert re.search(rf"step:{step} - .*speciarl/train/hm:", console), f"step {step} figures not in verl's log line"


#: What every training step must log to the tracker (under speciarl/train/), and every validation pass.
SHARES = [f"share/{c.replace(' ', '_')}" for c in ("wrong", "abstain", "generic", "less specific", "specific", "more specific")]
JUDGE_KEYS = [
    "judge/requests", "judge/short_circuits", "judge/cache_hits", "judge/cache_hits_disk", "judge/errors",
    "judge/retries", "judge/latency_p50_s", "judge/latency_p95_s", "judge/breaker_opens",
    "judge/memory_cache_size", "judge/breakers_open",
]
TRAIN_KEYS = [
    "correct", "specific", "hm", *SHARES, "share/parse_failure", "no_gradient_share", "reference_level",
    "group_timeouts", *JUDGE_KEYS,
]
# Validation samples once per prompt (val_kwargs.n=1): no groups, so no no_gradient_share or c*.
VAL_KEYS = ["correct", "specific", "hm", *SHARES, "share/parse_failure", "group_timeouts", *JUDGE_KEYS,
            "cub200/correct", "cub200/specific", "cub200/hm", *[f"cub200/{s}" for s in SHARES],
            "cub200/share/parse_failure", "group/in_domain/correct", "group/in_domain/specific",
            "group/in_domain/hm"]


def _in_range(key: str, value: float) -> bool:
    name = key.rsplit("/", 1)[1]
    if "/share/" in key or name in ("correct", "specific", "hm", "no_gradient_share"):
        return 0.0 <= value <= 1.0
    if name == "reference_level":
        return 0.0 <= value <= 4.0
    return value >= 0.0


def _verl_scalar_steps(tensorboard: Path, tag: str) -> list[int]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps = []
    for events in sorted(tensorboard.rglob("events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events), size_guidance={"scalars": 0})
        accumulator.Reload()
        if tag in accumulator.Tags().get("scalars", []):
            steps += [int(event.step) for event in accumulator.Scalars(tag)]
    return sorted(steps)


def test_the_tracker_has_every_reward_figure_for_every_step_and_validation_pass(smoke_run):
    """Read verl's TensorBoard event files: the speciarl/* figures at the same steps as verl's own."""
    from verl_ext.eval.plots_training import read_tensorboard

    run_dir = _require_success(smoke_run)
    series = read_tensorboard(run_dir / "tensorboard")
    for role, keys, steps in (("train", TRAIN_KEYS, [1, 2]), ("val", VAL_KEYS, [0, 2])):
        for key in keys:
            tag = f"speciarl/{role}/{key}"
            assert sorted(series.get(tag, {})) == steps, f"{tag} logged at {sorted(series.get(tag, {}))}"
            for step, value in series[tag].items():
                assert _in_range(tag, value), f"{tag} = {value} at step {step}"
        for step in steps:  # every rollout falls in exactly one share
            total = sum(series[f"speciarl/{role}/{share}"][step] for share in [*SHARES, "share/parse_failure"])
            assert total == pytest.approx(1.0, abs=1e-3), (role, step, total)
    assert _verl_scalar_steps(run_dir / "tensorboard", "critic/score/mean") == [1, 2]  # verl's own, same steps

    # Counters summed over the reward workers add up to what the judge server itself counted.
    stats = json.loads((smoke_run[0] / "judge_stats.json").read_text())
    logged = sum(v for tag, by_step in series.items() if tag.endswith("/judge/requests") for v in by_step.values())
    assert logged == stats["stats"]["requests"] > 0

    # HM and correctness as the paper defines them, from the judge's rule table, not the reward's codes.
    table, default = smoke.load_rules(smoke_run[0] / "judge_rules.json")
    rows = smoke.read_dump(run_dir / "rollouts")
    for step in (1, 2):
        grades = [smoke.offline_grade(r["gts"], r["output"], table, default) for r in rows if r["step"] == step]
        correct = sum(g.category is not None and g.category >= Category.GENERIC for g in grades) / len(grades)
        right = [g for g in grades if g.category is not None and g.category >= Category.GENERIC]
        specific = sum(g.category >= Category.SPECIFIC for g in right) / len(right) if right else 0.0
        hm = 2 * correct * specific / (correct + specific) if correct + specific else 0.0
        assert series["speciarl/train/correct"][step] == pytest.approx(correct, abs=1e-6)
        assert series["speciarl/train/specific"][step] == pytest.approx(specific, abs=1e-6)
        assert series["speciarl/train/hm"][step] == pytest.approx(hm, abs=1e-6)


def test_the_training_curves_plot_is_drawn_from_the_runs_outputs(smoke_run, tmp_path):
    run_dir = _require_success(smoke_run)
    out = tmp_path / "curves.png"
    result = subprocess.run(
        [sys.executable, "-m", "verl_ext.eval.plots_training", str(run_dir), "--out", str(out)],
        env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from tensorboard: training steps [1, 2], validation at [0, 2]" in result.stdout
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_merges_and_evaluates_the_users_whole_journey(smoke_run, tmp_path):
    """data -> train -> ``verl.model_merger`` -> ``python -m verl_ext.eval --backend hf`` -> metrics.json."""
    from verl_ext.testing.judge_server import ScriptableJudgeServer
    from verl_ext.testing.judge_server_cli import load_rules_file

    run_dir = _require_success(smoke_run)
    merged = tmp_path / "merged"
    merge = subprocess.run(
        [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
         "--local_dir", str(run_dir / "global_step_2" / "actor"), "--target_dir", str(merged)],
        env=_env(HF_HUB_OFFLINE="1"), capture_output=True, text=True, timeout=300,
    )
    assert merge.returncode == 0, merge.stderr[-3000:]
    assert (merged / "lora_adapter" / "adapter_model.safetensors").is_file()
    rules, default = load_rules_file(str(smoke_run[0] / "judge_rules.json"))
    (test_file,) = (smoke_run[0] / "data" / "cub200").glob("test_sub*_seed42.parquet")
    with ScriptableJudgeServer(rules, default=default) as judge:
        evaluate = subprocess.run(
            [sys.executable, "-m", "verl_ext.eval", "--model", str(merged), "--backend", "hf", "--data", str(test_file),
             "--judge-url", judge.url, "--judge-model", judge.model_name, "--out", str(tmp_path / "eval"),
             "--max-new-tokens", "32", "--method", "smoke"],
            env=_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"), capture_output=True, text=True, timeout=300,
        )
    assert evaluate.returncode == 0, (evaluate.stdout + evaluate.stderr)[-3000:]
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["run"]["model"]["adapter_path"] == str(merged / "lora_adapter")  # the trained adapter is applied
    assert metrics["run"]["predict_stage"]["generated"] == 8
    assert "cub200" in metrics["datasets"]


# ---------------------------------------------------------------------------- judge outage
def test_judge_outage_stops_before_any_update_with_the_judges_message(tmp_path):
    """The judge answers the recipe's preflight, then dies before step 1's rollouts are graded."""
    import threading
    import time

    from verl_ext.testing.judge_server import ScriptableJudgeServer

    judge = ScriptableJudgeServer({}).start_in_thread()

    def kill_after_preflight():
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while judge.stats["models"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        judge.stop_in_thread()

    killer = threading.Thread(target=kill_after_preflight, daemon=True)
    killer.start()
    result = run_smoke(
        # One reward worker (the in-process group book): the happy path covers the Ray coordinator.
        tmp_path, "trainer.val_before_train=False", "+reward.speciarl.judge.failure_budget_s=5", "reward.num_workers=1",
        SPECIARL_JUDGE_URLS=judge.url, SPECIARL_JUDGE_MODEL=judge.model_name,
    )
    killer.join(timeout=5)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "JudgeUnavailableError" in output
    assert "stopping training before step 1 updates the policy: the SpeciaRL judge is unavailable" in output
    run_dir = tmp_path / "run"
    assert not list(run_dir.glob("global_step_*")), "a checkpoint means an update ran"
    assert "actor/pg_loss" not in output, "the policy was updated on a batch that lost rollouts"
    syncs = [e for e in _read_jsonl(run_dir / "cpu_backend" / "rollout_server_0.jsonl") if e["event"] == "update_weights"]
    assert [e["global_steps"] for e in syncs] == [0], "weights were synced after an update"


# ---------------------------------------------------------------------------- reuse in another recipe
def _readme_reuse_overrides() -> list[str]:
    """The overrides the README's reuse section lists (its first bash block), as a shell would split them."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Using the SpeciaRL reward in your own verl recipe", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [token for line in block.splitlines() for token in shlex.split(line, comments=True)]


def test_plain_main_ppo_with_verl_defaults_and_the_readme_overrides_trains(tmp_path):
    """No recipe, no common.sh, no dataset class: verl's own defaults plus what the README says."""
    from verl_ext.testing import cpu_backend
    from verl_ext.testing.judge_server import ScriptableJudgeServer
    from verl_ext.testing.judge_server_cli import load_rules_file

    inputs = smoke.prepare(tmp_path)
    prep = subprocess.run(
        [sys.executable, str(REPO / "data_prep" / "cub.py"), "--root", str(inputs.data_root), "--out", str(tmp_path / "data"),
         "--no-download", "--splits", "train", "test"],
        env=_env(), capture_output=True, text=True, timeout=120,
    )
    assert prep.returncode == 0, prep.stderr
    readme = _readme_reuse_overrides()
    assert "reward.reward_manager.name=speciarl" in readme and "trainer.v1.trainer_mode=speciarl" in readme
    # The reuse promise: one key more than the reward manager's name, plus the judge's address.
    assert len(readme) == 3, readme
    rules, default = load_rules_file(str(inputs.rules_file))
    with ScriptableJudgeServer(rules, default=default) as judge:
        overrides = [
            arg.replace("http://judge-host:8000/v1", judge.url) for arg in readme
        ] + [
            # what any verl run needs: a model, data, sizes that fit a CPU
            f"actor_rollout_ref.model.path={inputs.kit}",
            f"data.train_files={tmp_path / 'data' / 'cub200' / 'train.parquet'}",
            f"data.val_files={tmp_path / 'data' / 'cub200' / 'test.parquet'}",
            "algorithm.adv_estimator=grpo", "actor_rollout_ref.rollout.n=4", "data.train_batch_size=4",
            "actor_rollout_ref.actor.ppo_mini_batch_size=4", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=4",
            "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=4", "data.max_response_length=64",
            "trainer.total_training_steps=1", "trainer.val_before_train=False", "trainer.logger=[console]",
            f"trainer.default_local_dir={tmp_path / 'ckpt'}", "trainer.save_freq=-1",
            "reward.num_workers=1",  # verl's 8 reward actors cost CI a minute; the happy path runs 2 with Ray
            *cpu_backend.cpu_overrides(answers_file=str(inputs.answers_file)),
        ]
        result = subprocess.run(
            [sys.executable, "-m", "verl.trainer.main_ppo", *overrides],
            env=_env(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_MODE="disabled", RAY_AUTH_MODE="disabled",
                     **cpu_backend.cpu_backend_env()),
            capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=tmp_path,
        )
        requests = judge.stats["requests"]
    output = result.stdout + result.stderr
    (tmp_path / "main_ppo.log").write_text(output, encoding="utf-8")
    assert result.returncode == 0, output[-6000:]
    assert re.search(r"step:1 - .*actor/pg_loss:", output)
    assert re.search(r"step:1 - .*speciarl/train/correct:", output)
    assert requests > 0

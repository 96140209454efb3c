"""verl's streaming reward path, end to end on local Ray: RewardLoopManager workers score
256 prompts x 10 rollouts, each sent to a randomly chosen worker as verl's agent loop does.

The judge is `RuleTableJudge`, a TEST DOUBLE for the vLLM judge server (which cannot run on
a CPU machine), named through `reward.speciarl.judge.impl` so that every Ray worker builds it.
Everything else is real: Hydra composition of verl's ppo_trainer config, RewardLoopManager,
RewardLoopWorker actors, Ray's default per-actor concurrency cap, our group coordinator actor.
"""

import random
import time
import uuid

import pytest
import ray

from verl_ext.core.categories import parse_category
from verl_ext.core.grades import Grade
from verl_ext.core.rules import best_in_group_rewards
from verl_ext.reward.capacity import RAY_ASYNC_ACTOR_CAP
from verl_ext.recipes.compose import compose_arguments
from verl_ext.testing.dataproto import make_reward_dataproto

PROMPTS, N, WORKERS = 256, 10, 4
GT = "Golden-winged Warbler"
LABEL_OF = {"sp": "specific", "ms": "more specific", "ls": "less specific", "ge": "generic", "ab": "abstain", "wr": "wrong"}
TABLE = [[GT, pred, label] for pred, label in LABEL_OF.items()]


@pytest.fixture(scope="module")
def ray_runtime():
    ray.init(num_cpus=4, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    ray.shutdown()


def compose(kit_path, coordinator_name):
    overrides = [
        "actor_rollout_ref.rollout.name=vllm",
        f"actor_rollout_ref.model.path={kit_path}",
        f"actor_rollout_ref.rollout.n={N}",
        "actor_rollout_ref.rollout.val_kwargs.n=1",
        f"data.train_batch_size={PROMPTS}",
        f"reward.num_workers={WORKERS}",
        "reward.reward_manager.name=speciarl",
        "+reward.speciarl.judge.impl=verl_ext.testing.rule_judge:from_settings",
        f"+reward.speciarl.judge.table={TABLE}".replace("'", '"'),
        "+reward.speciarl.group_timeout_s=60",
        f"+reward.speciarl.coordinator_name={coordinator_name}",
    ]
    return compose_arguments(overrides)


def plan_groups(rng):
    """Three groups in four repeat one non-specific label (plus some wrong answers), as a policy
    that keeps giving the same answer does: every such rollout must wait for its whole group,
    the worst case for waiting. The rest mix all categories; a few hold parse failures."""
    groups = []
    for g in range(PROMPTS):
        if g % 4:
            label = rng.choice(["ge", "ls", "ab"])
            preds = [label if rng.random() < 0.85 else "wr" for _ in range(N)]
        else:
            preds = [rng.choice(["sp", "ms", "ls", "ge", "ab", "wr"]) for _ in range(N)]
        if g % 16 == 0:
            preds[rng.randrange(N)] = None  # no <answer> tag
        groups.append(preds)
    return groups


def expected_rewards(preds):
    grades = [Grade.parse_failure() if p is None else Grade.judged(parse_category(LABEL_OF[p])) for p in preds]
    return best_in_group_rewards(grades)


def response(pred):
    return "<think>hmm</think> no tags" if pred is None else f"<think>hmm</think><answer>{pred}</answer>"


@pytest.mark.ray
def test_streamed_group_rewards_match_the_offline_rule(ray_runtime, offline_kit):
    from verl.experimental.reward_loop.reward_loop import RewardLoopManager

    coordinator = f"speciarl_test_{uuid.uuid4().hex[:8]}"
    manager = RewardLoopManager(compose(offline_kit.path, coordinator))
    handles = manager.reward_loop_worker_handles
    assert len(handles) == WORKERS

    rng = random.Random(0)
    groups = plan_groups(rng)
    calls = []
    for g, preds in enumerate(groups):
        uid = str(uuid.uuid4())
        for session_id, pred in enumerate(preds):
            proto = make_reward_dataproto(
                offline_kit.tokenizer, prompt="Classify the image.", response=response(pred), uid=uid,
                session_id=session_id, data_source="cub200", ground_truth=GT, index=g,
                extra_info={"speciarl_role": "train", "index": g}, global_steps=1,
            )
            calls.append((g, session_id, proto))
    # Sessions finish in any order, but each group has one straggler that finishes after all
    # other sessions of the step: the worst case for waiting, since no group can complete early.
    stragglers = [c for c in calls if c[1] == N - 1]
    early = [c for c in calls if c[1] != N - 1]
    rng.shuffle(early)
    rng.shuffle(stragglers)
    calls = early + stragglers

    started = time.monotonic()
    refs = [random.choice(handles).compute_score.remote(proto) for _, _, proto in calls]
    results = ray.get(refs, timeout=600)
    elapsed = time.monotonic() - started

    got = {(g, s): r for (g, s, _), r in zip(calls, results)}
    for g, preds in enumerate(groups):
        assert [got[(g, s)]["reward_score"] for s in range(N)] == expected_rewards(preds), f"group {g}"
    assert not any(r["reward_extra_info"]["group_timed_out"] for r in results)

    from verl_ext.reward import trainer_link

    figures = trainer_link.close_on_all(handles, "train", 1)  # as the trainer mode closes a step
    assert figures["speciarl/train/group_timeouts"] == 0 and figures["speciarl/train/rollouts"] == PROMPTS * N
    # More rollouts waited at once than one worker's Ray concurrency cap allows, without deadlock.
    assert figures["speciarl/train/waiting_max"] > RAY_ASYNC_ACTOR_CAP, figures["speciarl/train/waiting_max"]
    print(f"2560 rollouts in {elapsed:.1f}s, at most {figures['speciarl/train/waiting_max']:.0f} waiting at once")

    # Validation-shaped calls (val_kwargs.n = 1) never wait for siblings.
    val = [
        make_reward_dataproto(offline_kit.tokenizer, prompt="Classify the image.", response=response("ge"),
                              uid=str(uuid.uuid4()), data_source="cub200", ground_truth=GT,
                              extra_info={"speciarl_role": "val"}, global_steps=1)
        for _ in range(20)
    ]
    started = time.monotonic()
    val_results = ray.get([random.choice(handles).compute_score.remote(p) for p in val], timeout=30)
    assert time.monotonic() - started < 30
    assert {r["reward_score"] for r in val_results} == {1.0}
    assert {r["reward_extra_info"]["group_size_seen"] for r in val_results} == {1.0}

    for handle in handles:
        ray.kill(handle)


@pytest.mark.ray
async def test_judge_outage_is_reported_to_the_trainer_and_releases_waiting_siblings(ray_runtime, offline_kit):
    """A judge that stays down must stop training: the worker remembers the outage for the
    trainer's guard (``verl_ext.reward.trainer_link``), and siblings that wait for a group that
    can no longer be decided fail at once instead of waiting out the group timeout."""
    import asyncio

    from omegaconf import OmegaConf

    from verl_ext.judge.base import JudgeUnavailableError
    from verl_ext.reward import trainer_link
    from verl_ext.reward.manager import SpeciaRLRewardManager

    config = compose(offline_kit.path, f"speciarl_outage_{uuid.uuid4().hex[:8]}")
    healthy = SpeciaRLRewardManager(config=config, tokenizer=offline_kit.tokenizer, compute_score=None)
    waiting = asyncio.ensure_future(healthy.run_single(
        make_reward_dataproto(offline_kit.tokenizer, prompt="Classify the image.", response=response("ge"),
                              uid="u-outage", session_id=0, data_source="cub200", ground_truth=GT,
                              extra_info={"speciarl_role": "train"})
    ))  # generic: waits for its 9 siblings, which will never be graded
    await asyncio.sleep(1.0)
    assert not waiting.done()

    OmegaConf.update(config, "reward.speciarl.judge.down", True, force_add=True)
    down = SpeciaRLRewardManager(config=config, tokenizer=offline_kit.tokenizer, compute_score=None)
    assert down.outage() is None
    with pytest.raises(JudgeUnavailableError):
        await down.run_single(
            make_reward_dataproto(offline_kit.tokenizer, prompt="Classify the image.", response=response("ge"),
                                  uid="u-outage", session_id=1, data_source="cub200", ground_truth=GT,
                                  extra_info={"speciarl_role": "train"})
        )
    assert "simulated outage" in down.outage()
    with pytest.raises(JudgeUnavailableError, match="simulated outage"):
        await asyncio.wait_for(waiting, 10)  # released long before the 60 s group timeout

    class Worker:  # what verl's RewardLoopWorker holds; the trainer reaches it through __ray_call__
        reward_manager = down

    assert "simulated outage" in trainer_link.judge_outage(Worker())
    Worker.reward_manager = healthy
    assert trainer_link.judge_outage(Worker()) is None

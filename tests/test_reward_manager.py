"""The `speciarl` reward manager's run_single, in process (one reward-loop worker).

The judge here is `RuleTableJudge`, a TEST DOUBLE for the vLLM judge server, which cannot run
on a CPU machine. Everything else is real: verl's DataProto and RewardManagerBase, the kit's
tokenizer, the group book.
"""

import asyncio
import time

import pytest
from omegaconf import OmegaConf

from verl_ext.core.categories import Category
from verl_ext.reward.config import SpeciaRLConfigError
from verl_ext.reward.capacity import check_worker_capacity
from verl_ext.reward.extra_info import EXTRA_INFO_KEYS
from verl_ext.reward.manager import SpeciaRLRewardManager
from verl_ext.reward.rollout import RolloutFieldError
from verl_ext.reward.step_metrics import JUDGE_ERROR_CODE, PARSE_FAILURE_CODE
from verl_ext.testing.dataproto import make_group_dataprotos, make_reward_dataproto

GT = "Golden-winged Warbler"
TABLE = [
    [GT, "golden winged warbler", "specific"],
    [GT, "warbler", "less specific"],
    [GT, "bird", "generic"],
    [GT, "none", "abstain"],
    [GT, "cardinal", "wrong"],
]


def make_config(n=4, val_n=1, workers=1, batch=8, **speciarl):
    judge = {"impl": "verl_ext.testing.rule_judge:from_settings", "table": TABLE, "errors": [[GT, "glitch"]]}
    settings = {"judge": judge, "group_timeout_s": 5.0, **speciarl}
    return OmegaConf.create(
        {
            "reward": {"num_workers": workers, "speciarl": settings},
            "actor_rollout_ref": {"rollout": {"n": n, "val_kwargs": {"n": val_n}}},
            "data": {"train_batch_size": batch, "gen_batch_size": None, "max_response_length": 64},
        }
    )


def answer(label):
    return f"<think>looking at the wings</think><answer>{label}</answer>"


@pytest.fixture
def manager_for(tiny_tokenizer):
    def build(**kwargs):
        return SpeciaRLRewardManager(config=make_config(**kwargs), tokenizer=tiny_tokenizer, compute_score=None)

    return build


def group(tokenizer, responses, role="train", **kwargs):
    return make_group_dataprotos(
        tokenizer, prompt="Classify the image.", responses=responses, data_source="cub200",
        ground_truth=GT, extra_info={"speciarl_role": role, "split": "train", "index": 3}, **kwargs,
    )


async def score_all(manager, protos):
    return await asyncio.gather(*(manager.run_single(p) for p in protos))


async def test_worked_example_group(manager_for, tiny_tokenizer):
    manager = manager_for(n=4)
    protos = group(tiny_tokenizer, [answer("Golden winged Warbler"), answer("Warbler"), answer("Cardinal"), "I think a bird"])
    out = await score_all(manager, protos)
    assert [o["reward_score"] for o in out] == [1.0, 0.0, 0.0, -1.0]
    cats = [o["reward_extra_info"]["category"] for o in out]
    assert cats == [Category.SPECIFIC, Category.LESS_SPECIFIC, Category.WRONG, PARSE_FAILURE_CODE]
    # the less specific rollout learnt c* as soon as the specific sibling had reported
    assert 2 <= out[1]["reward_extra_info"]["group_size_seen"] <= 4


async def test_waiting_rollout_resolves_when_group_completes(manager_for, tiny_tokenizer):
    manager = manager_for(n=3)
    first, second, third = group(tiny_tokenizer, [answer("bird"), answer("none"), answer("bird")])
    pending = asyncio.ensure_future(manager.run_single(first))
    await asyncio.sleep(0.05)
    assert not pending.done()  # generic must wait: a better sibling could still come
    rest = await score_all(manager, [second, third])
    done = await asyncio.wait_for(pending, 2)
    assert [done["reward_score"], *[r["reward_score"] for r in rest]] == [1.0, 0.0, 1.0]


async def test_judge_error_does_not_zero_the_group(manager_for, tiny_tokenizer):
    manager = manager_for(n=3)
    out = await score_all(manager, group(tiny_tokenizer, [answer("bird"), answer("glitch"), answer("none")]))
    assert [o["reward_score"] for o in out] == [1.0, 0.0, 0.0]
    assert [o["reward_extra_info"]["judge_error"] for o in out] == [0.0, 1.0, 0.0]
    assert out[1]["reward_extra_info"]["category"] == JUDGE_ERROR_CODE
    metrics = manager._get_coordinator().step_metrics("train", 0)
    assert metrics["speciarl/train/judge_errors"] >= 1


async def test_validation_call_with_n_1_returns_without_waiting(manager_for, tiny_tokenizer):
    manager = manager_for(n=10, val_n=1)
    (proto,) = group(tiny_tokenizer, [answer("bird")], role="val")
    started = time.monotonic()
    out = await asyncio.wait_for(manager.run_single(proto), 1.0)
    assert time.monotonic() - started < 1.0
    assert out["reward_score"] == 1.0 and out["reward_extra_info"]["group_size_seen"] == 1


async def test_role_falls_back_to_extra_info_split(manager_for, tiny_tokenizer):
    manager = manager_for(n=10, val_n=1)
    proto = make_reward_dataproto(tiny_tokenizer, prompt="Classify the image.", response=answer("bird"), uid="u-split",
                                  data_source="cub200", ground_truth=GT, extra_info={"split": "test"})
    out = await asyncio.wait_for(manager.run_single(proto), 1.0)
    assert out["reward_score"] == 1.0


async def test_unknown_role_is_a_clear_error(manager_for, tiny_tokenizer):
    manager = manager_for(n=10, val_n=1)
    proto = make_reward_dataproto(tiny_tokenizer, prompt="p", response=answer("bird"), uid="u-norole",
                                  data_source="cub200", ground_truth=GT, extra_info={})
    with pytest.raises(SpeciaRLConfigError, match="training .* or validation"):
        await manager.run_single(proto)


async def test_missing_uid_is_a_clear_error(manager_for, tiny_tokenizer):
    manager = manager_for(n=4)
    proto = make_reward_dataproto(tiny_tokenizer, prompt="p", response=answer("bird"), uid="x",
                                  data_source="cub200", ground_truth=GT, extra_info={"speciarl_role": "train"})
    del proto.non_tensor_batch["uid"]
    with pytest.raises(RolloutFieldError, match="uid"):
        await manager.run_single(proto)


async def test_extra_info_keys_are_identical_for_every_outcome(manager_for, tiny_tokenizer):
    manager = manager_for(n=4)
    out = await score_all(manager, group(tiny_tokenizer, [answer("bird"), answer("glitch"), "no answer", answer("cardinal")]))
    for o in out:
        assert tuple(o["reward_extra_info"]) == EXTRA_INFO_KEYS
        assert all(isinstance(v, float) for v in o["reward_extra_info"].values())


async def test_group_timeout_is_reported_not_silent(manager_for, tiny_tokenizer):
    manager = manager_for(n=3, group_timeout_s=0.3)
    protos = group(tiny_tokenizer, [answer("bird"), answer("none"), answer("bird")])
    out = await score_all(manager, protos[:2])  # the third rollout never arrives
    assert [o["reward_score"] for o in out] == [1.0, 0.0]
    assert out[0]["reward_extra_info"]["group_timed_out"] == 1.0
    assert manager._get_coordinator().step_metrics("train", 0)["speciarl/train/group_timeouts"] >= 1


async def test_static_binary_rule_never_waits(manager_for, tiny_tokenizer):
    manager = manager_for(n=10, rule="binary")
    (first,) = group(tiny_tokenizer, [answer("bird")])
    out = await asyncio.wait_for(manager.run_single(first), 1.0)
    assert out["reward_score"] == 0.0


async def test_overlong_penalty(manager_for, tiny_tokenizer):
    manager = manager_for(n=1, val_n=1, overlong_buffer={"enable": True, "len": 16, "penalty_factor": 1.0})
    ids = tiny_tokenizer.encode(answer("golden winged warbler"), add_special_tokens=False)
    at_limit = ids + [tiny_tokenizer.eos_token_id] * (64 - len(ids))  # data.max_response_length = 64
    in_buffer = ids + [tiny_tokenizer.eos_token_id] * (56 - len(ids))  # half-way into the 16-token buffer
    short = ids
    outs = [await manager.run_single(group(tiny_tokenizer, [r])[0]) for r in (at_limit, in_buffer, short)]
    # 1 for a specific answer, minus a penalty growing linearly to 1 over the last 16 tokens
    assert [o["reward_score"] for o in outs] == pytest.approx([0.0, 0.5, 1.0])


async def test_label_noise_is_seeded(manager_for, tiny_tokenizer):
    def run():
        manager = manager_for(n=1, val_n=1, label_noise=1.0, seed=7)
        protos = [group(tiny_tokenizer, [answer("bird")], uid=f"noise-{i}")[0] for i in range(6)]
        return asyncio.gather(*(manager.run_single(p) for p in protos))

    first = [o["reward_extra_info"]["category"] for o in await run()]
    again = [o["reward_extra_info"]["category"] for o in await run()]
    assert first == again and Category.GENERIC not in first


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"rule": "best_in_grop"}, "reward.speciarl.rule"),
        ({"label_noise": 2.0}, "label_noise"),
        ({"group_timeout": 5}, "unknown key"),
        ({"overlong_buffer": {"enable": True, "len": 0}}, "overlong_buffer.len"),
    ],
)
def test_invalid_settings_fail_at_start_up(manager_for, settings, message):
    with pytest.raises(SpeciaRLConfigError, match=message):
        manager_for(**settings)


def test_capacity_check_refuses_too_few_workers():
    with pytest.raises(SpeciaRLConfigError, match=r"reward.num_workers>=\d"):
        check_worker_capacity(make_config(n=10, workers=2, batch=256))
    check_worker_capacity(make_config(n=10, workers=8, batch=256))  # verl's default passes


def test_capacity_check_counts_dapo_inflight_batches():
    config = make_config(n=10, workers=8, batch=256)
    config.algorithm = {"filter_groups": {"enable": True, "max_inflight_gen_batches": 3}}
    with pytest.raises(SpeciaRLConfigError, match="7680 rollouts"):
        check_worker_capacity(config)  # 3 x 256 x 10 in flight: 8 workers are too few
    config.reward.num_workers = 16
    check_worker_capacity(config)


def _rec(step, source, uid, code, reward, timed_out=False, judge=None, worker="w0", role="train"):
    from verl_ext.reward.step_metrics import RolloutRecord

    return RolloutRecord(role, step, source, uid, int(code), reward, timed_out, judge, worker)


def test_step_figures_match_hand_computed_values():
    """Two groups of 3 on cub200, one of 2 on flowers102, judge windows from two workers."""
    from verl_ext.reward.step_metrics import StepTally

    S, G, W, A = Category.SPECIFIC, Category.GENERIC, Category.WRONG, Category.ABSTAIN
    tally = StepTally()
    windows = {
        "w0": {"judge/requests": 3, "judge/latency_p50_s": 0.1, "judge/latency_p95_s": 0.3,
               "judge/memory_cache_size": 10, "judge/breakers_open": 0, "judge/breaker_opens": 1, "judge/cache_hits": 2},
        "w0-later": {"judge/requests": 1, "judge/latency_p50_s": 0.5, "judge/latency_p95_s": 0.9,
                     "judge/memory_cache_size": 14, "judge/breakers_open": 1, "judge/breaker_opens": 0,
                     "judge/cache_hits": 5},
        "w1": {"judge/requests": 0, "judge/latency_p50_s": 0.0, "judge/latency_p95_s": 0.0,
               "judge/memory_cache_size": 7, "judge/breakers_open": 0, "judge/breaker_opens": 2, "judge/cache_hits": 0},
    }
    for record in (
        _rec(1, "cub200", "g1", S, 1.0, judge=windows["w0"]),
        _rec(1, "cub200", "g1", G, 0.0),
        _rec(1, "cub200", "g1", PARSE_FAILURE_CODE, -1.0),
        _rec(1, "cub200", "g2", G, 1.0, judge=windows["w0-later"]),
        _rec(1, "cub200", "g2", G, 1.0, timed_out=True),
        _rec(1, "cub200", "g2", G, 1.0, judge=windows["w1"], worker="w1"),
        _rec(1, "flowers102", "g3", W, 0.0),
        _rec(1, "flowers102", "g3", JUDGE_ERROR_CODE, 0.0),
    ):
        tally.add(record)
    f = tally.summary("speciarl/train")
    # overall: graded = 7 (judge error left out); correct = S + 4 G = 5; specific = 1
    assert f["speciarl/train/correct"] == pytest.approx(5 / 7)
    assert f["speciarl/train/specific"] == pytest.approx(1 / 5)
    assert f["speciarl/train/hm"] == pytest.approx(2 * (5 / 7) * (1 / 5) / (5 / 7 + 1 / 5))
    assert f["speciarl/train/share/generic"] == pytest.approx(4 / 7)
    assert f["speciarl/train/share/parse_failure"] == pytest.approx(1 / 7)
    assert f["speciarl/train/share/abstain"] == 0.0 and A  # every category has a share key
    assert (f["speciarl/train/rollouts"], f["speciarl/train/parse_failures"], f["speciarl/train/judge_errors"]) == (8, 1, 1)
    assert f["speciarl/train/reward_mean"] == pytest.approx(3 / 8)
    # best-in-group: g2's rewards are all equal, g1's and g3's are not... g3 is [0, 0]: equal too
    assert f["speciarl/train/groups"] == 3
    assert f["speciarl/train/no_gradient_share"] == pytest.approx(2 / 3)
    assert f["speciarl/train/reference_level"] == pytest.approx((4 + 2 + 0) / 3)  # c*: specific, generic, wrong
    assert f["speciarl/train/group_timeouts"] == 1
    # per data source, and the paper's groups as the evaluation averages them (per dataset)
    assert f["speciarl/train/cub200/correct"] == pytest.approx(5 / 6)
    assert f["speciarl/train/flowers102/correct"] == 0.0 and f["speciarl/train/flowers102/hm"] == 0.0
    assert f["speciarl/train/group/in_domain/hm"] == f["speciarl/train/cub200/hm"]
    assert f["speciarl/train/group/fine_grained/correct"] == 0.0  # flowers102 alone is present
    assert "speciarl/train/group/very_fine_grained/hm" not in f
    # judge: counters add up, p50 is request-weighted, p95 the largest, gauges are not summed
    assert f["speciarl/train/judge/requests"] == 4
    assert f["speciarl/train/judge/breaker_opens"] == 3 and f["speciarl/train/judge/cache_hits"] == 7  # counters: 1+0+2, 2+5+0
    assert f["speciarl/train/judge/latency_p50_s"] == pytest.approx((0.1 * 3 + 0.5) / 4)
    assert f["speciarl/train/judge/latency_p95_s"] == 0.9
    assert f["speciarl/train/judge/memory_cache_size"] == 14  # w0's latest (14), not 10 + 14 + 7
    assert f["speciarl/train/judge/breakers_open"] == 1
    assert all(0.0 <= f[k] <= 1.0 for k in f if "/share/" in k or k.rsplit("/", 1)[1] in ("correct", "specific", "hm"))


def test_validation_groups_of_one_carry_no_group_signal():
    from verl_ext.reward.step_metrics import StepTally

    tally = StepTally()
    tally.add(_rec(5, "cub200", "v1", Category.SPECIFIC, 1.0, role="val"))
    tally.add(_rec(5, "cub200", "v2", Category.WRONG, 0.0, role="val"))
    figures = tally.summary("speciarl/val")
    assert figures["speciarl/val/cub200/hm"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert not any(k.endswith(("no_gradient_share", "reference_level", "/groups")) for k in figures)


async def test_a_closed_step_is_written_once_and_returned(tmp_path):
    """The trainer mode closes each step: written at once, never again, tally dropped."""
    import json

    from verl_ext.reward.coordinator import LocalCoordinator

    sink = tmp_path / "metrics" / "reward.jsonl"
    coordinator = LocalCoordinator(str(sink))
    coordinator.record(_rec(3, "cub200", "g", Category.SPECIFIC, 1.0))
    coordinator.record(_rec(3, "cub200", "g", Category.WRONG, 0.0))
    assert not sink.exists()  # step 3 may still be receiving rollouts
    figures = await coordinator.close_step("train", 3)
    assert figures["speciarl/train/cub200/correct"] == 0.5
    assert figures["speciarl/train/rollouts"] == 2
    (line,) = sink.read_text().splitlines()
    assert json.loads(line)["speciarl/train/cub200/specific"] == 1.0
    assert await coordinator.close_step("train", 3) == {}  # closing again writes nothing
    assert coordinator.step_metrics("train", 3) == {} and coordinator.ledger.open_steps == []
    assert len(sink.read_text().splitlines()) == 1


def test_without_the_trainer_a_step_is_written_when_the_next_step_starts(tmp_path):
    import json

    from verl_ext.reward.coordinator import LocalCoordinator

    sink = tmp_path / "metrics" / "reward.jsonl"
    coordinator = LocalCoordinator(str(sink))
    coordinator.record(_rec(5, "cub200", "a", Category.SPECIFIC, 1.0, role="val"))
    coordinator.record(_rec(5, "cub200", "b", Category.WRONG, 0.0, role="val"))
    coordinator.record(_rec(6, "cub200", "c", Category.WRONG, 0.0))  # another role: no effect
    assert not sink.exists()
    coordinator.record(_rec(10, "cub200", "d", Category.GENERIC, 1.0, role="val"))
    (line,) = sink.read_text().splitlines()
    record = json.loads(line)
    assert (record["role"], record["step"]) == ("val", 5)
    assert record["speciarl/val/cub200/correct"] == 0.5
    assert record["speciarl/val/cub200/specific"] == 1.0
    coordinator.close_all()  # at shutdown, the steps still open are written too
    assert [(json.loads(x)["role"], json.loads(x)["step"]) for x in sink.read_text().splitlines()] == [
        ("val", 5), ("train", 6), ("val", 10)
    ]


def test_groups_that_never_complete_are_forgotten_at_step_end():
    from verl_ext.reward.coordinator import LocalCoordinator

    coordinator = LocalCoordinator(stale_after_s=0.0)
    coordinator.book.arrive("lost-session-group", 0, 10, 2)  # 9 sessions never arrive
    assert coordinator.book.open_groups == 1
    coordinator.record(_rec(1, "cub200", "g", 2, 0.0))
    coordinator.record(_rec(2, "cub200", "h", 2, 0.0))  # step 1 closes
    assert coordinator.book.open_groups == 0


async def test_a_trainval_row_is_a_training_row(manager_for, tiny_tokenizer):
    """Oxford Pets and FGVC-Aircraft train on ``trainval``: without our dataset class's tag, the
    row's split must still give the training group size (before: every row became a group of 1)."""
    manager = manager_for(n=3, val_n=1)
    protos = make_group_dataprotos(
        tiny_tokenizer, prompt="Classify the image.", data_source="oxford_pets", ground_truth=GT,
        responses=[answer("bird"), answer("golden winged warbler"), answer("bird")],
        extra_info={"split": "trainval", "index": 1},
    )
    out = await score_all(manager, protos)
    assert [o["reward_score"] for o in out] == [0.0, 1.0, 0.0]  # c* = specific, as a group of 3


async def test_a_rollout_without_session_id_fails_with_a_clear_error(manager_for, tiny_tokenizer):
    """Before: it silently became session 0, siblings collided and the group never completed."""
    from verl_ext.reward.rollout import RolloutFieldError

    manager = manager_for(n=3)
    (proto, *_) = group(tiny_tokenizer, [answer("bird")] * 3)
    del proto.non_tensor_batch["session_id"]
    with pytest.raises(RolloutFieldError, match="session_id.*V1 trainer"):
        await manager.run_single(proto)


async def test_label_noise_is_the_same_in_every_run_of_the_same_config(manager_for, tiny_tokenizer):
    """verl's uid is a fresh uuid4 per batch; the noise must not depend on it."""
    async def noised_categories(uid):
        protos = make_group_dataprotos(
            tiny_tokenizer, prompt="Classify the image.", data_source="cub200", ground_truth=GT,
            responses=[answer("warbler")] * 12, extra_info={"speciarl_role": "train", "index": 7}, uid=uid,
        )
        manager = manager_for(n=12, label_noise=0.5, seed=3)
        return [o["reward_extra_info"]["category"] for o in await score_all(manager, protos)]

    first, second = await noised_categories("run-one-uuid"), await noised_categories("run-two-uuid")
    assert first == second
    assert len(set(first)) > 1  # the noise did move some categories

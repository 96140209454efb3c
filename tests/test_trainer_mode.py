"""``trainer.v1.trainer_mode=speciarl`` is verl's sync trainer: registered, and sync where verl checks."""

from __future__ import annotations

import pytest


def _bare_trainer(*overrides: str):
    """A ``SpeciaRLTrainer`` with only its config set (no Ray, no workers): enough for its own logic."""
    from verl_ext.recipes.compose import compose_arguments
    from verl_ext.trainer.speciarl import SpeciaRLTrainer

    trainer = SpeciaRLTrainer.__new__(SpeciaRLTrainer)
    trainer.config = compose_arguments(
        ["actor_rollout_ref.rollout.name=vllm", "trainer.v1.trainer_mode=speciarl", *overrides]
    )
    trainer.trainer_mode = trainer.config.trainer.v1.trainer_mode  # what verl's __init__ does
    trainer._add_prompts_to_generate = lambda n: n
    return trainer


def test_the_mode_is_registered_when_verls_trainer_module_loads():
    import verl  # noqa: F401  loads the plugin, which hooks the trainer module's import
    from verl.trainer.ppo.v1 import get_trainer_cls

    from verl_ext.trainer.speciarl import SpeciaRLTrainer

    assert get_trainer_cls("speciarl") is SpeciaRLTrainer


def test_verl_sees_a_sync_trainer_so_it_builds_the_sync_replay_buffer():
    """verl branches on the registered name; under 'speciarl' it would pick its async buffer."""
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer, ReplayBufferAsync

    trainer = _bare_trainer()
    assert trainer.trainer_mode == "sync"
    buffer = trainer._build_replay_buffer()
    assert type(buffer) is ReplayBuffer and not isinstance(buffer, ReplayBufferAsync)
    assert buffer.poll_interval == 2.0  # verl's default unless set


def test_the_replay_poll_interval_can_be_set_and_must_be_positive():
    assert _bare_trainer("+trainer.v1.speciarl.poll_interval_s=0.1")._build_replay_buffer().poll_interval == 0.1
    with pytest.raises(ValueError, match="poll_interval_s must be > 0"):
        _bare_trainer("+trainer.v1.speciarl.poll_interval_s=0")._build_replay_buffer()


def test_an_outage_seen_by_any_worker_stops_the_step_before_the_update(monkeypatch):
    from verl_ext.judge.base import JudgeUnavailableError
    from verl_ext.reward import trainer_link

    trainer = _bare_trainer()
    trainer.global_steps = 7
    trainer.get_reward_handles = lambda: ["worker-0", "worker-1"]
    monkeypatch.setattr(trainer_link, "outage_on_any", lambda handles: "judge at http://j:8000/v1 down" if handles else None)
    with pytest.raises(JudgeUnavailableError, match="before step 7 updates the policy.*judge at http://j:8000/v1 down"):
        trainer.on_sample_end()


def test_verls_own_step_stops_at_the_guard_before_reward_advantage_or_update(monkeypatch):
    """verl's real ``_step_once`` with stand-ins for the Ray workers (none run here): the guard
    raises inside sampling, so nothing after it (balance, log-probs, advantage, update) is called.
    Fails if a verl upgrade moves ``on_sample_end`` after any of them."""
    from types import SimpleNamespace

    from verl_ext.judge.base import JudgeUnavailableError
    from verl_ext.reward import trainer_link

    trainer = _bare_trainer()
    trainer.global_steps = 1
    trainer.get_reward_handles = lambda: ["worker-0"]
    monkeypatch.setattr(trainer_link, "outage_on_any", lambda handles: "judge down")
    sampled = []
    trainer.replay_buffer = SimpleNamespace(
        sample=lambda **kwargs: sampled.append(kwargs) or (SimpleNamespace(extra_info={}), {})
    )
    later = []
    for stage in ("_compute_reward_colocate", "_balance_batch", "_compute_old_log_prob", "_compute_ref_log_prob",
                  "_compute_values", "_compute_advantage", "_update_critic", "_update_actor"):
        monkeypatch.setattr(trainer, stage, lambda batch, metrics, stage=stage: later.append(stage) or batch,
                            raising=False)
    with pytest.raises(JudgeUnavailableError, match="judge down"):
        trainer._step_once(metrics={}, timing_raw={}, sample_batch_size=4)
    assert len(sampled) == 1 and later == []

    # The stand-ins are the ones verl calls: with the judge up, the same step reaches the update.
    monkeypatch.setattr(trainer_link, "outage_on_any", lambda handles: None)
    trainer.reward_loop_manager = SimpleNamespace(reward_loop_worker_handles=["worker-0"])
    trainer.use_reference_policy = trainer.use_critic = False
    trainer.checkpoint_manager = SimpleNamespace(sleep_replicas=lambda: None)
    trainer.curr_step_profile = False
    trainer._step_once(metrics={}, timing_raw={}, sample_batch_size=4)
    assert later[-2:] == ["_compute_advantage", "_update_actor"]

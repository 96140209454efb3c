"""``trainer.v1.trainer_mode=speciarl``: verl's synchronous PPO trainer plus two guarantees.

1. **No update on a batch the judge could not grade.** When the judge stays down past its
   failure budget, the rollouts that needed it fail; verl then marks their groups failed and,
   in the sync trainer, pads the batch with synthetic samples and trains on what is left (a
   lone survivor of a group gets advantage -1). This trainer asks every reward worker for a
   judge outage right after the batch is sampled (``on_sample_end``), before any log-prob,
   advantage or update, and stops with the judge's message. It checks after validation too.
2. **Every step's reward figures, complete, in the tracker.** At the end of each step
   (``on_step_end``) and each validation pass it closes the step in the reward's coordinator,
   after every worker's records are counted, and hands the figures to verl's own tracker
   call for that step (through ``_pending_sync_metrics``, which verl merges into the step's
   metrics), and to ``reward.speciarl.metrics_path`` if set. Nothing waits for a next step or
   for process exit, so the last step and the last validation are never lost.

It also completes verl's training rollout dump (``trainer.rollout_data_dir``): next to the
text and the score, each rollout's GRPO ``advantage`` and the reward's ``reward_extra_info``
(category, correct, specific, ...), as verl's validation dump already has them.

Everything else is ``PPOTrainerSync``. Registered with verl's ``register_trainer`` when verl's
trainer module is imported (see ``verl_ext/plugin.py``).
"""

from __future__ import annotations

import transfer_queue as tq
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from verl_ext.judge.base import JudgeUnavailableError
from verl_ext.reward import trainer_link

#: The value of ``trainer.v1.trainer_mode`` that selects this trainer.
TRAINER_MODE = "speciarl"


@register_trainer(TRAINER_MODE)
class SpeciaRLTrainer(PPOTrainerSync):
    """verl's sync trainer with the judge guard and per-step reward figures (module docstring)."""

    # verl's trainer branches on the *registered name* for sync semantics (its replay buffer class,
    # refill rules, checkpointed queue, trainer.v1.<mode> settings; see PPOTrainer in
    # verl/trainer/ppo/v1/trainer_base.py): under our name it would behave as an async trainer.
    # This trainer is the sync one, so it answers "sync" whatever the config names it.
    @property
    def trainer_mode(self) -> str:
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, _registered_name: str) -> None:
        pass

    def _build_replay_buffer(self):
        """verl's replay buffer; ``+trainer.v1.speciarl.poll_interval_s`` sets how often it looks for
        finished groups (verl fixes 2 s, which rounds every step's sampling time up to 2 s steps)."""
        buffer = super()._build_replay_buffer()
        poll = (self.config.trainer.v1.get(TRAINER_MODE) or {}).get("poll_interval_s")
        if poll is not None:
            if float(poll) <= 0:
                raise ValueError(f"trainer.v1.{TRAINER_MODE}.poll_interval_s must be > 0, got {poll}")
            buffer.poll_interval = float(poll)
        return buffer

    def _reward_handles(self) -> list:
        return list(self.get_reward_handles() or [])

    def _raise_on_judge_outage(self, when: str) -> None:
        message = trainer_link.outage_on_any(self._reward_handles())
        if message:
            raise JudgeUnavailableError(f"stopping training {when}: the SpeciaRL judge is unavailable: {message}")

    def on_sample_end(self) -> None:
        self._raise_on_judge_outage(f"before step {self.global_steps} updates the policy")
        super().on_sample_end()

    def on_step_end(self) -> None:
        super().on_step_end()
        figures = trainer_link.close_on_all(self._reward_handles(), "train", self.global_steps)
        pending = getattr(self, "_pending_sync_metrics", None) or {}
        self._pending_sync_metrics = {**pending, **figures}

    def _validate(self) -> dict:
        metrics = super()._validate()
        self._raise_on_judge_outage(f"after validation at step {self.global_steps}")
        metrics.update(trainer_link.close_on_all(self._reward_handles(), "val", self.global_steps))
        return metrics

    # ---- the training dump: verl writes text and score; add advantage and reward_extra_info
    def _log_rollout_data(self, batch, timing_raw: dict, rollout_data_dir: str) -> None:
        data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["advantages", "extra_fields"])
        extras = {}
        # Read the way verl's replay buffer reads reward_extra_info (non-tensor values may be wrapped).
        for key, advantages, fields in zip(batch.keys, data["advantages"].unbind(), list(data["extra_fields"])):
            fields = getattr(fields, "data", fields)
            row = {"advantage": float(advantages.float().mean()) if advantages.numel() else 0.0}
            row.update((fields.get("reward_extra_info") if isinstance(fields, dict) else None) or {})
            extras[key] = row
        self._training_dump_extras = extras
        try:
            super()._log_rollout_data(batch, timing_raw, rollout_data_dir)
        finally:
            self._training_dump_extras = None

    def _dump_generations(self, inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path) -> None:
        extras = getattr(self, "_training_dump_extras", None)
        if extras:  # verl's training dump lists its rows' keys, sorted, under "uid"
            rows = [extras.get(key, {}) for key in reward_extra_infos_dict["uid"]]
            for name in sorted({name for row in rows for name in row}):
                reward_extra_infos_dict[name] = [row.get(name) for row in rows]
        super()._dump_generations(inputs, outputs, gts, scores, reward_extra_infos_dict, dump_path)

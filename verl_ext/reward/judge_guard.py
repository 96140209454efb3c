"""Make a judge outage stop training instead of training on padding.

When ``run_single`` raises (our judge client gives up after ``judge.failure_budget_s``), verl
0.9's V1 agent loop marks the group ``failure`` and, in the sync trainer, keeps the group with
its missing trajectories padded downstream: training would go on with no reward signal. The
manager therefore also records the outage in the group coordinator, and this agent-loop
manager, which the trainer calls to dispatch every batch, refuses to dispatch once the
coordinator holds such an error. The trainer process then fails with the judge's message.

Select it with
``+actor_rollout_ref.rollout.agent.agent_loop_manager_class=verl_ext.reward.judge_guard.JudgeGuardedAgentLoopManager``
(the recipes do).
"""

from __future__ import annotations

from typing import Any, Optional

from verl.trainer.ppo.v1.agent_loop_tq import AgentLoopManagerTQ

from verl_ext.judge.base import JudgeUnavailableError
from verl_ext.reward.config import SpeciaRLRewardConfig


def judge_outage(config: Any) -> Optional[str]:
    """The outage message recorded by any reward worker of this Ray job, or ``None``."""
    import ray

    name = SpeciaRLRewardConfig.from_trainer_config(config).coordinator_name
    try:
        coordinator = ray.get_actor(name)
    except ValueError:  # no rollout has been scored with a group rule yet
        return None
    return ray.get(coordinator.fatal.remote())


def raise_on_judge_outage(config: Any) -> None:
    message = judge_outage(config)
    if message:
        raise JudgeUnavailableError(f"stopping training: the SpeciaRL judge is unavailable: {message}")


class JudgeGuardedAgentLoopManager(AgentLoopManagerTQ):
    """verl's V1 agent-loop manager that refuses to dispatch rollouts while the judge is down."""

    def generate_sequences(self, prompts: Any) -> None:
        raise_on_judge_outage(self.config)
        return super().generate_sequences(prompts)

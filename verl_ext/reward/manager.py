"""The ``speciarl`` reward manager for verl 0.9's reward loop.

One call of :meth:`SpeciaRLRewardManager.run_single` scores one trajectory:

1. decode the response and extract the ``<answer>`` (missing or empty: parse failure, -1);
2. grade the normalised (ground truth, answer) pair with the judge, streamed as soon as the
   rollout finishes so that judge latency overlaps the generation of its siblings;
3. apply the rule. Static rules need nothing more. The paper's best-in-group rule needs
   the group's best category c*: the rollout reports to the group coordinator, and waits
   only if its reward still depends on its siblings (see ``group_book.py``).

The rollout's reward and the same numeric keys every time go back to verl.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from typing import Any, Optional

from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.base import RewardManagerBase

from verl_ext.core.answer import extract_answer, normalise_label
from verl_ext.core.grades import Grade
from verl_ext.core.roles import row_role
from verl_ext.core.rules import (
    STATIC_REWARD_MAPS,
    best_in_group_reward,
    perturb_category,
    reward_known_alone,
    static_reward,
)
from verl_ext.judge.base import Judge, JudgeUnavailableError
from verl_ext.judge.factory import build_judge
from verl_ext.reward.capacity import check_worker_capacity
from verl_ext.reward.config import SpeciaRLConfigError, SpeciaRLRewardConfig
from verl_ext.reward.coordinator import CoordinatorFailure, LocalCoordinator, RayCoordinatorClient, get_ray_coordinator
from verl_ext.reward.decoding import BatchDecoder
from verl_ext.reward.extra_info import extra_info
from verl_ext.reward.group_book import GroupView
from verl_ext.reward.rollout import Rollout, read_rollout
from verl_ext.reward.step_metrics import RolloutRecord, category_code

logger = logging.getLogger(__name__)

#: How often a worker hands its judge metrics to the step tally.
JUDGE_METRICS_WINDOW_S = 1.0

#: Names this process in the judge windows it reports (their gauges are per worker).
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

@register("speciarl")
class SpeciaRLRewardManager(RewardManagerBase):
    """Specificity-aware reward: an LLM judge grades each answer; the rule turns grades into rewards."""

    _local_coordinator: Optional[LocalCoordinator] = None

    def __init__(
        self,
        config: Any,
        tokenizer: Any,
        compute_score: Any = None,
        reward_router_address: Optional[str] = None,
        reward_model_tokenizer: Any = None,
        judge: Optional[Judge] = None,
        **_: Any,
    ) -> None:
        super().__init__(config, tokenizer, compute_score)
        self.settings = SpeciaRLRewardConfig.from_trainer_config(config)
        check_worker_capacity(config)
        self._judge = judge
        self._judge_lock = asyncio.Lock()
        self._judge_metrics_at = 0.0
        self._decoder = BatchDecoder(tokenizer)
        self._coordinator: Any = None
        self._use_ray = int(config.reward.get("num_workers", 1) or 1) > 1
        self._static_map = STATIC_REWARD_MAPS.get(self.settings.rule)
        self.scoring_loop: Optional[asyncio.AbstractEventLoop] = None  # the worker's, once it scores
        self._outage: Optional[str] = None  # the judge outage this worker saw (read by the trainer)

    # ---- collaborators, created lazily inside the worker's event loop -------------------
    async def _get_judge(self) -> Judge:
        if self._judge is None:
            async with self._judge_lock:
                if self._judge is None:
                    self._judge = build_judge(self.settings.judge)
        return self._judge

    def _get_coordinator(self) -> Any:
        if self._coordinator is None:
            if self._use_ray:
                handle = get_ray_coordinator(self.settings.coordinator_name, self.settings.metrics_path)
                self._coordinator = RayCoordinatorClient(handle)
            else:
                cls = type(self)
                if cls._local_coordinator is None:
                    cls._local_coordinator = LocalCoordinator(self.settings.metrics_path)
                self._coordinator = cls._local_coordinator
        return self._coordinator

    async def _record_outage(self, message: str) -> None:
        """Remember the outage for the trainer's guard, and release every rollout waiting on a group."""
        self._outage = self._outage or message
        await self._get_coordinator().set_fatal(message)

    # ---- scoring --------------------------------------------------------------------------
    def _group_size(self, rollout: Rollout) -> tuple[str, int]:
        role = row_role(rollout.extra_info)
        if role is None:
            if self.settings.train_group_size != self.settings.val_group_size:
                raise SpeciaRLConfigError(
                    f"cannot tell whether rollout {rollout.uid}/{rollout.session_id} "
                    f"({rollout.data_source}) is training (n={self.settings.train_group_size}) or "
                    f"validation (n={self.settings.val_group_size}): use verl_ext's dataset class "
                    "(data.custom_cls), or give every row extra_info.split ('train' for training rows)"
                )
            role = "train"
        size = self.settings.train_group_size if role == "train" else self.settings.val_group_size
        return role, size

    async def _grade(self, rollout: Rollout, response: str) -> Grade:
        answer = extract_answer(response)
        if answer is None:
            return Grade.parse_failure()
        judge = await self._get_judge()
        try:
            verdict = await judge.grade(normalise_label(rollout.ground_truth), normalise_label(answer))
        except JudgeUnavailableError as exc:
            await self._record_outage(str(exc))
            raise
        if not verdict.ok:
            return Grade.judge_error()
        category = verdict.category
        if self.settings.label_noise > 0:
            # Keyed on what is the same in every run of the same config (verl's uid is a fresh
            # uuid4 per batch), so a noise ablation can be repeated exactly; the ground truth
            # keeps rows apart whose parquet has no extra_info.index.
            rng = random.Random(
                f"{self.settings.seed}/{rollout.data_source}/{rollout.extra_info.get('index')}/"
                f"{rollout.ground_truth}/{rollout.global_step}/{rollout.session_id}"
            )
            category = perturb_category(category, self.settings.label_noise, rng)
        return Grade.judged(category)

    async def _rule_reward(self, rollout: Rollout, grade: Grade, size: int) -> tuple[float, GroupView]:
        level = grade.category.training_level if grade.is_judged else None
        if self._static_map is not None:
            return static_reward(grade, self._static_map), GroupView(level, 1, True)
        if size == 1:
            return best_in_group_reward(grade, level), GroupView(level, 1, True)
        alone = reward_known_alone(grade)
        coordinator = self._get_coordinator()
        if alone is not None:
            # Decided by this rollout alone: tell the siblings, without a round trip.
            coordinator.notify(rollout.uid, rollout.session_id, size, level)
            return alone, GroupView(level, 1, False)
        try:
            view = await coordinator.report(rollout.uid, rollout.session_id, size, level, True, self.settings.group_timeout_s)
        except CoordinatorFailure as exc:  # a sibling found the judge down: this group cannot be decided
            raise JudgeUnavailableError(str(exc)) from None
        if view.timed_out:
            logger.warning(
                "[speciarl] group %s timed out after %.0fs with %d of %d rollouts; "
                "rewarding against the best seen so far",
                rollout.uid, self.settings.group_timeout_s, view.seen, size,
            )
        return best_in_group_reward(grade, view.best_level), view

    def _pop_judge_metrics(self) -> Optional[dict[str, float]]:
        """The judge's counters about once a second, so that its latency percentiles mean something."""
        now = time.monotonic()
        if self._judge is None or now - self._judge_metrics_at < JUDGE_METRICS_WINDOW_S:
            return None
        self._judge_metrics_at = now
        return self._judge.pop_metrics()

    def _overlong_penalty(self, response_length: int) -> float:
        buffer = self.settings.overlong_buffer
        if not buffer.enable:
            return 0.0
        expected = self.settings.max_response_length - buffer.len
        excess = min(response_length - expected, buffer.len)  # verl truncates at the maximum anyway
        return min(-excess / buffer.len * buffer.penalty_factor, 0.0)

    async def run_single(self, data: Any) -> dict:
        self.scoring_loop = self.scoring_loop or asyncio.get_running_loop()
        rollout = read_rollout(data)
        response = await self._decoder.decode(rollout.response_ids)
        role, size = self._group_size(rollout)
        grade = await self._grade(rollout, response)
        reward, view = await self._rule_reward(rollout, grade, size)
        reward += self._overlong_penalty(rollout.response_length)
        judge_metrics = self._pop_judge_metrics()
        code = category_code(grade)
        self._get_coordinator().record(RolloutRecord(
            role, rollout.global_step, rollout.data_source, rollout.uid, code, reward, view.timed_out,
            judge_metrics, WORKER_ID,
        ))
        return {"reward_score": float(reward), "reward_extra_info": extra_info(grade, code, reward, view.seen, view.timed_out)}

    # ---- what the SpeciaRL trainer mode asks of each reward worker (see reward/trainer_link.py)
    async def drain_records(self, role: str, step: int) -> None:
        """Count every rollout scored here so far, and the judge's figures since its last window,
        in the step being closed (the sync trainer runs one phase at a time, so they belong to it)."""
        if self._coordinator is None:
            return
        if self._judge is not None:
            self._judge_metrics_at = time.monotonic()
            self._coordinator.record_judge(role, step, self._judge.pop_metrics(), WORKER_ID)
        await self._coordinator.drain()

    async def close_step(self, role: str, step: int) -> dict[str, float]:
        """End a step or validation pass: its figures, written once (empty if none were counted)."""
        return await self._get_coordinator().close_step(role, step)

    def outage(self) -> Optional[str]:
        """The judge's last words if this worker found it down for good, else ``None``."""
        return self._outage

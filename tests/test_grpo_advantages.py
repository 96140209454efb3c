"""Our rewards fed to verl's own GRPO advantage estimator give the hand-computed advantages."""

import asyncio
import math

import numpy as np
import pytest
import torch
from verl.trainer.ppo.core_algos import compute_grpo_outcome_advantage

from verl_ext.reward.manager import SpeciaRLRewardManager
from verl_ext.testing.dataproto import make_group_dataprotos

from test_reward_manager import GT, answer, make_config


def _token_level(rewards, width=6):
    """verl puts each rollout's score on its last valid response token."""
    levels = torch.zeros(len(rewards), width)
    levels[:, -1] = torch.tensor(rewards)
    return levels, torch.ones(len(rewards), width)


async def test_worked_example_specific_less_specific_wrong_parse_failure(tiny_tokenizer):
    manager = SpeciaRLRewardManager(config=make_config(n=4), tokenizer=tiny_tokenizer, compute_score=None)
    responses = [answer("golden winged warbler"), answer("warbler"), answer("cardinal"), "<answer></answer>"]
    protos = make_group_dataprotos(tiny_tokenizer, prompt="Classify the image.", responses=responses,
                                   data_source="cub200", ground_truth=GT, extra_info={"speciarl_role": "train"})
    rewards = [o["reward_score"] for o in await asyncio.gather(*(manager.run_single(p) for p in protos))]
    assert rewards == [1.0, 0.0, 0.0, -1.0]

    levels, mask = _token_level(rewards)
    index = np.array(["g"] * 4, dtype=object)
    advantages, _ = compute_grpo_outcome_advantage(levels, mask, index)
    # mean 0, unbiased std sqrt((1 + 0 + 0 + 1) / 3)
    std = math.sqrt(2 / 3)
    expected = [1 / (std + 1e-6), 0.0, 0.0, -1 / (std + 1e-6)]
    assert advantages[:, 0].tolist() == pytest.approx(expected, rel=1e-5)
    assert advantages[0, 0] == pytest.approx(1.2247, abs=1e-4)

    dr_grpo, _ = compute_grpo_outcome_advantage(levels, mask, index, norm_adv_by_std_in_grpo=False)
    assert dr_grpo[:, 0].tolist() == pytest.approx([1.0, 0.0, 0.0, -1.0])

"""Advantage estimators: one advantage per action (environment step) of every trajectory.

An estimator takes the played trajectories and their returns and gives each trajectory a list with
one value per step; the update hands each value to the tokens of that step's response
(``algo.update.TrainSample``). ``ESTIMATORS`` names them; an algorithm names its estimator in the
algorithm table, so a step-level estimator is one function here and one entry there.

GRPO (``grpo_action_advantages``): a group is the N rollouts of one task variation in one
iteration. Each trajectory's return is standardised within its group,
A_i = (R_i - mean(R)) / (std(R) + 1e-6), with the unbiased std as the official code computes it,
and every action of trajectory i gets the same A_i. A group of one uses mean 0 and std 1 (again as
the official code), so its advantage is R / (1 + 1e-6).

The return adds the intrinsic reward: R = scale * extrinsic + novelty_coef * sum of the
trajectory's novelty rewards (the paper's intrinsic reward; see ``memory/novelty.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from empo2_lite.trajectory import Trajectory

EPSILON = 1e-6


def trajectory_returns(extrinsic: torch.Tensor, novelty_sums: torch.Tensor, novelty_coef: float = 1.0,
                       scale: float = 1.0) -> torch.Tensor:
    """R = scale * extrinsic + novelty_coef * novelty_sums (one value per trajectory)."""
    return scale * extrinsic.float() + novelty_coef * novelty_sums.float()


def grpo_advantages(returns: torch.Tensor, group_ids: torch.Tensor, epsilon: float = EPSILON) -> torch.Tensor:
    """Group-standardised advantages, one per trajectory (see module docstring)."""
    if returns.shape != group_ids.shape or returns.dim() != 1:
        raise ValueError(f"returns and group_ids must be 1-D and of one shape, got {tuple(returns.shape)} and {tuple(group_ids.shape)}")
    returns = returns.float()
    advantages = torch.empty_like(returns)
    for group in torch.unique(group_ids):
        members = group_ids == group
        values = returns[members]
        if values.numel() == 1:
            mean, std = torch.tensor(0.0), torch.tensor(1.0)
        else:
            mean, std = values.mean(), values.std(unbiased=True)
        advantages[members] = (values - mean) / (std + epsilon)
    return advantages


def grpo_action_advantages(trajectories: Sequence[Trajectory], returns: torch.Tensor) -> list[list[float]]:
    """GRPO per action: each trajectory's group-standardised return, for every one of its steps."""
    advantages = grpo_advantages(returns, torch.tensor([t.group_id for t in trajectories], dtype=torch.long))
    return [[float(value)] * len(t.turns) for t, value in zip(trajectories, advantages)]


AdvantageEstimator = Callable[[Sequence[Trajectory], torch.Tensor], list[list[float]]]
"""(played trajectories, their returns) -> one list per trajectory with one advantage per step."""

ESTIMATORS: dict[str, AdvantageEstimator] = {"grpo": grpo_action_advantages}
"""The advantage estimators by the name the algorithm table gives them."""

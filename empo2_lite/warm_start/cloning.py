"""Behaviour cloning: cross-entropy on the action tokens of recorded episodes, LoRA weights only.

The loss of one sample is the mean negative log-likelihood of its action tokens (the rollout's
action mask; every prompt, observation and template token is context only), computed by the
update's own scorer (``algo.update.action_logprobs``, at temperature 1), so the tokens the warm
start learns are scored exactly as the RL update will score them. One optimiser step per episode
(its samples' losses averaged), gradients clipped to norm 1 as in the RL update, the episodes
shuffled in every epoch by the seed; a text progress bar over the steps (``progress.py``).
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

import torch
from empo2_lite.algo.update import action_logprobs
from empo2_lite.policy.loading import Policy
from empo2_lite.progress import progress_bar
from empo2_lite.trajectory import TokenSample

GRAD_CLIP = 1.0
"""Global gradient norm of every cloning step (the RL update's default)."""


def cloning_loss(policy: Policy, samples: Sequence[TokenSample]) -> torch.Tensor:
    """Mean negative log-likelihood of the action tokens of ``samples`` (one episode's samples),
    every action token weighted alike; non-action tokens add nothing."""
    logprobs, _ = action_logprobs(policy, list(samples), temperature=1.0)
    tokens = torch.cat(logprobs)
    if tokens.numel() == 0:
        raise ValueError("cloning_loss: the samples hold no action token")
    return -tokens.mean()


def clone(policy: Policy, episodes: Sequence[Sequence[TokenSample]], *, epochs: int, learning_rate: float,
          seed: int = 0, progress: bool = True) -> list[dict]:
    """Train ``policy``'s adapter on ``episodes`` (each a list of samples); one row per epoch: its
    mean loss, the loss of every step in order, and the optimiser steps taken so far."""
    if not policy.has_adapter:
        raise ValueError("clone: the policy has no LoRA adapter to train (policy.lora_rank > 0)")
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=learning_rate)
    order = random.Random(seed)
    rows = []
    bar = progress_bar(total=epochs * len(episodes), desc="warm start", unit="episode", disable=not progress)
    for epoch in range(epochs):
        indices = list(range(len(episodes)))
        order.shuffle(indices)
        losses = []
        for index in indices:
            policy.model.train()
            loss = cloning_loss(policy, episodes[index])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), GRAD_CLIP)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{losses[-1]:.3f}")
        rows.append({"iteration": epoch, "warm_start/loss": statistics.mean(losses), "warm_start/step_losses": losses,
                     "warm_start/steps": (epoch + 1) * len(episodes)})
    bar.close()
    policy.model.eval()
    return rows

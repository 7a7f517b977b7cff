"""The token-level PPO objective of EMPO², with asymmetric clipping, dual clipping and
low-probability masking.

Per action token t with advantage A and ratio r = exp(logp - old_logp):

    loss_t = max(-A * r, -A * clip(r, 1 - 0.2, 1 + 0.3))     (PPO, asymmetric clip)
    loss_t = min(loss_t, -A * 10)   when A < 0               (dual clip: bounds the loss when a
                                                              token with a negative advantage has
                                                              become much more likely)

and the loss is the mean over all kept action tokens of the batch (no KL, no entropy bonus by
default; both can be switched on).

Low-probability masking stabilises off-policy updates (without it training can collapse): tokens
that are very unlikely get no policy-gradient term. Two granularities:

* ``"token"`` (the paper's statement, the kit's default): a token is dropped when its probability
  under the *current* policy is below delta = exp(log_delta), log_delta = -5;
* ``"sequence"`` (the official code): a whole action response is dropped when any of its tokens
  had an *old* log-prob below log_delta.

The masked fraction is reported, so one can see how much of a batch masking removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from empo2_lite.config import MASK_GRANULARITIES


@dataclass
class LossOutput:
    """The loss and what it is made of (all detached except ``loss``)."""

    loss: torch.Tensor
    clip_fraction: float
    """Share of kept tokens where clipping (either side, or dual) was active."""
    masked_fraction: float
    """Share of action tokens removed by low-probability masking."""
    ratio_mean: float
    kl: float
    entropy: float


def low_probability_mask(logprobs: torch.Tensor, old_logprobs: torch.Tensor, action_mask: torch.Tensor,
                         response_index: torch.Tensor, granularity: str = "token", log_delta: float = -5.0) -> torch.Tensor:
    """1 for action tokens that keep their policy-gradient term, 0 otherwise.

    ``response_index`` numbers the action responses (the same number for all tokens of one
    response, any value on non-action tokens); it is used by the ``"sequence"`` granularity.
    """
    action = action_mask.bool()
    if granularity == "token":
        return (action & (logprobs.detach() >= log_delta)).float()
    if granularity == "sequence":
        low = action & (old_logprobs < log_delta)
        keep = action.clone()
        for index in torch.unique(response_index[low]):
            keep &= ~(action & (response_index == index))
        return keep.float()
    if granularity == "off":
        return action.float()
    raise ValueError(f"granularity: {granularity!r} is not allowed; choose one of: {', '.join(MASK_GRANULARITIES)}")


def ppo_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, keep_mask: torch.Tensor,
             *, action_mask: torch.Tensor | None = None, clip_low: float = 0.2, clip_high: float = 0.3,
             dual_clip: float = 10.0, ref_logprobs: torch.Tensor | None = None, kl_coef: float = 0.0,
             entropy: torch.Tensor | None = None, entropy_coef: float = 0.0) -> LossOutput:
    """Token-level PPO loss over the tokens where ``keep_mask`` is 1 (all tensors of one shape;
    ``advantages`` already broadcast to tokens). ``action_mask`` (default: ``keep_mask``) only
    serves the masked-fraction report."""
    keep = keep_mask.float()
    count = keep.sum().clamp(min=1.0)
    log_ratio = (logprobs - old_logprobs).clamp(-20.0, 20.0)
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = torch.maximum(unclipped, clipped)
    dual = torch.minimum(per_token, -advantages * dual_clip)
    per_token = torch.where(advantages < 0, dual, per_token)
    loss = (per_token * keep).sum() / count
    clipped_any = ((clipped > unclipped) | ((advantages < 0) & (dual < torch.maximum(unclipped, clipped)))).float()

    kl_value = torch.zeros(())
    if kl_coef and ref_logprobs is not None:
        delta = ref_logprobs - logprobs
        kl_tokens = torch.exp(delta) - delta - 1.0  # the k3 estimator: unbiased, always >= 0
        kl_value = (kl_tokens * keep).sum() / count
        loss = loss + kl_coef * kl_value
    entropy_value = torch.zeros(())
    if entropy is not None:
        entropy_value = (entropy * keep).sum() / count
        if entropy_coef:
            loss = loss - entropy_coef * entropy_value
    actions = (action_mask if action_mask is not None else keep_mask).float()
    return LossOutput(
        loss=loss,
        clip_fraction=float((clipped_any * keep).sum() / count),
        masked_fraction=float(1.0 - keep.sum() / actions.sum().clamp(min=1.0)),
        ratio_mean=float((ratio.detach() * keep).sum() / count),
        kl=float(kl_value),
        entropy=float(entropy_value),
    )

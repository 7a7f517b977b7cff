"""One policy update from token samples: log-probs, masks, the PPO loss and an optimiser step.

Mechanics:

* **Samples** are ``TokenSample``s of the view the mode asks for (``modes.update_views``), each
  with one advantage per response (action), which every token of that response takes.
* **Mini-batches are measured in actions** (responses: one per environment step), as in the
  official verl configuration, whose mini-batch of 16 prompts is multiplied by the group size 8
  and counts step samples: 128 actions per optimiser step (arXiv 2602.23008, official code). A
  packed full-history sample holds one action per step of its episode and a history-window sample
  holds one; samples are never split, so after a seeded shuffle whole samples are added to a
  mini-batch until it holds at least ``mini_batch_actions`` actions (it may overshoot by less than
  one sample; the last mini-batch may hold fewer). ``epochs`` passes over the data (the paper: one).
* **Micro-batches** hold as many samples as fit ``micro_batch_tokens`` (padded tokens) and
  accumulate gradients. The step's loss is the sum of the per-token losses of kept tokens divided
  by the number of action tokens in the mini-batch (masked tokens count in the denominator as
  zeros), so it does not depend on how the mini-batch was cut into micro-batches.
* **Only action positions reach the LM head**, row by row: a packed 7k-token trajectory needs
  logits for its ~100 action tokens, not a 7k x vocabulary tensor.
* Log-probs use the rollout temperature (logits / T), as the sampler recorded them.
* Gradients are clipped to norm ``grad_clip``; a non-finite loss skips the step with a warning.
* Data-parallel: every rank holds the global batch and cuts the same mini-batches; it computes
  its own samples' share and the gradients are summed over ranks once per step, before clipping
  (``distributed.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from empo2_lite.algo.losses import low_probability_mask, ppo_loss
from empo2_lite.config import UpdateConfig
from empo2_lite.distributed import SINGLE, World, sum_gradients
from empo2_lite.policy.loading import Policy, causal_lm
from empo2_lite.trajectory import TokenSample

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSample:
    """A token sample with one advantage per response (action), in order.

    Per action, not per trajectory, so that any estimator (GRPO's one value per trajectory, a
    step-level one such as GiGPO's) reaches the loss the same way: each action token takes its
    response's advantage, and the loss never asks which estimator made it."""

    sample: TokenSample
    advantages: tuple[float, ...]

    def __post_init__(self) -> None:
        responses = response_count(self.sample)
        if len(self.advantages) != responses:
            raise ValueError(f"advantages: {len(self.advantages)} given for a sample of {responses} responses; "
                             "give one per response")

    @classmethod
    def whole(cls, sample: TokenSample, advantage: float) -> "TrainSample":
        """Every action of ``sample`` with the same ``advantage``."""
        return cls(sample, (float(advantage),) * response_count(sample))

    def token_advantages(self) -> list[float]:
        """The advantage of each action token that gets a log-prob (``action_positions``), in order."""
        responses = response_index(self.sample.action_mask)
        return [self.advantages[responses[t]] for t in action_positions(self.sample)]


def action_positions(sample: TokenSample) -> list[int]:
    """Positions of the action tokens that get a log-prob (position 0 has no preceding token)."""
    return [t for t in range(1, len(sample.input_ids)) if sample.action_mask[t]]


def response_index(action_mask: list[int]) -> list[int]:
    """Number each run of action tokens (one response); -1 elsewhere."""
    index, current, previous = [], -1, 0
    for keep in action_mask:
        if keep and not previous:
            current += 1
        index.append(current if keep else -1)
        previous = keep
    return index


def response_count(sample: TokenSample) -> int:
    """Number of responses in ``sample`` (the unit of ``mini_batch_actions``): one per environment
    step of a packed episode, one for a history-window sample."""
    return max(response_index(sample.action_mask), default=-1) + 1


def mini_batches_by_actions(actions: Sequence[int], order: Sequence[int], actions_per_step: int) -> list[list[int]]:
    """Cut ``order`` (sample indices) into consecutive mini-batches; ``actions[i]`` is sample i's
    number of actions. A mini-batch closes as soon as it holds ``actions_per_step`` actions or
    more, because samples cannot be split; what is left at the end is a smaller last mini-batch."""
    groups: list[list[int]] = []
    current: list[int] = []
    held = 0
    for index in order:
        current.append(index)
        held += actions[index]
        if held >= actions_per_step:
            groups.append(current)
            current, held = [], 0
    if current:
        groups.append(current)
    return groups


def action_logprobs(policy: Policy, samples: Sequence[TokenSample], temperature: float = 1.0,
                    with_entropy: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Log-probs (and entropies) of each sample's action tokens under the current model, in order.

    One right-padded forward of the decoder over the samples; then the LM head runs, row by row,
    only at that row's positions followed by an action token. Why row by row: with
    ``logits_to_keep`` the head would run at the union of every row's positions for every row, so a
    micro-batch of r packed episodes would hold r x (all their action positions) x vocabulary
    floats, several GB with a 150k vocabulary on a 24 GB card.
    """
    policy.for_training()
    device = policy.device
    width = max(len(s.input_ids) for s in samples)
    ids = torch.full((len(samples), width), policy.tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(samples), width), dtype=torch.long)
    targets = []
    for row, sample in enumerate(samples):
        ids[row, : len(sample.input_ids)] = torch.tensor(sample.input_ids)
        attention[row, : len(sample.input_ids)] = 1
        targets.append(action_positions(sample))
    if not any(targets):
        return [torch.zeros(0, device=device) for _ in samples], [torch.zeros(0, device=device) for _ in samples]
    ids = ids.to(device)
    decoder, head = decoder_and_head(policy.model)
    # No KV cache: scoring never generates, and a cache would hold every layer's keys and values.
    hidden = decoder(input_ids=ids, attention_mask=attention.to(device), use_cache=False).last_hidden_state
    logprobs, entropies = [], []
    for row, row_targets in enumerate(targets):
        before = torch.tensor([t - 1 for t in row_targets], dtype=torch.long, device=device)
        log_softmax = torch.log_softmax(head(hidden[row, before]).float() / temperature, dim=-1)
        token_ids = ids[row, row_targets]
        logprobs.append(log_softmax.gather(-1, token_ids[:, None]).squeeze(-1))
        if with_entropy:
            entropies.append(-(log_softmax.exp() * log_softmax).sum(-1).detach())
    return logprobs, entropies


def decoder_and_head(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The decoder stack (LoRA layers included) and the LM head of a causal LM, peft-wrapped or not.

    Llama/Qwen2-style models compute logits as ``lm_head(final hidden state)``; a model that
    post-processes its logits (Gemma 2's soft-capping) is refused rather than scored differently
    from how it samples."""
    causal = causal_lm(model)
    if getattr(causal.config, "final_logit_softcapping", None):
        raise NotImplementedError(f"{type(causal).__name__}: soft-capped logits are not supported by the update")
    return getattr(causal, causal.base_model_prefix), causal.get_output_embeddings()


def micro_batches(samples: Sequence[TrainSample], token_budget: int) -> list[list[TrainSample]]:
    """Consecutive groups whose padded size (rows x longest row) stays within ``token_budget``
    (a sample longer than the budget gets a micro-batch of its own)."""
    groups: list[list[TrainSample]] = []
    current: list[TrainSample] = []
    for item in samples:
        longest = max([len(s.sample.input_ids) for s in current] + [len(item.sample.input_ids)])
        if current and longest * (len(current) + 1) > token_budget:
            groups.append(current)
            current = []
        current.append(item)
    if current:
        groups.append(current)
    return groups


def kept_action_tokens(current: torch.Tensor, samples: Sequence[TokenSample],
                       config: UpdateConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Which action tokens keep their policy-gradient term (low-probability masking), and the old
    log-probs they are compared with, for the concatenated action tokens of ``samples`` in order.

    The one place the keep mask is computed: the update and the walkthrough's token colouring
    (``lab/token_colours.py``) both call it, so what the notebook shows is what the update does.
    """
    old, response_ids = [], []
    for sample_index, sample in enumerate(samples):
        positions = action_positions(sample)
        responses = response_index(sample.action_mask)
        old += [sample.old_logprobs[t] for t in positions]
        # responses of different samples must not share a number
        response_ids += [responses[t] + RESPONSE_NUMBER_STRIDE * sample_index for t in positions]
    old_t = torch.tensor(old, device=current.device)
    keep = low_probability_mask(current, old_t, torch.ones_like(old_t), torch.tensor(response_ids, device=current.device),
                                config.mask_granularity, config.log_delta)
    return keep, old_t


RESPONSE_NUMBER_STRIDE = 100_000
"""Responses of sample i are numbered from i x this (no episode has this many steps)."""


def recompute_old_logprobs(policy: Policy, samples: Sequence[TokenSample], config: UpdateConfig, *,
                           temperature: float) -> list[float]:
    """Overwrite the samples' old log-probs with the update's own forward pass (no gradient, the
    current weights, the update's dtype and temperature), and return, per action token, how far
    the recorded value was from the recomputed one (the sampler's numerics: merged weights, another
    batch layout; ``diagnostics/logprob_gap``)."""
    gaps: list[float] = []
    with torch.no_grad():
        for group in micro_batches([TrainSample.whole(s, 0.0) for s in samples], config.micro_batch_tokens):
            logprobs, _ = action_logprobs(policy, [item.sample for item in group], temperature)
            for item, values in zip(group, logprobs):
                for t, value in zip(action_positions(item.sample), values.tolist()):
                    gaps.append(abs(item.sample.old_logprobs[t] - value))
                    item.sample.old_logprobs[t] = value
    return gaps


def copy_old_logprobs(source: Sequence[TokenSample], target: Sequence[TokenSample]) -> None:
    """Give ``target``'s action tokens the old log-probs of the same tokens in ``source``: two views
    of one episode, which hold the same responses, matched by episode step (``TokenSample.steps``)."""
    by_step: dict[int, tuple[list[int], list[float]]] = {}
    for sample in source:
        for step, positions in _positions_by_step(sample).items():
            by_step[step] = ([sample.input_ids[t] for t in positions], [sample.old_logprobs[t] for t in positions])
    for sample in target:
        for step, positions in _positions_by_step(sample).items():
            tokens, values = by_step.get(step, ([], []))
            if tokens != [sample.input_ids[t] for t in positions]:
                raise ValueError(f"bug: step {step}'s response differs between the two views of an episode")
            for t, value in zip(positions, values):
                sample.old_logprobs[t] = value


def _positions_by_step(sample: TokenSample) -> dict[int, list[int]]:
    """The positions of each response's action tokens, by the response's episode step."""
    positions: dict[int, list[int]] = {}
    for t, response in enumerate(response_index(sample.action_mask)):
        if response >= 0:
            positions.setdefault(sample.steps[response], []).append(t)
    return positions


def accumulate_gradients(policy: Policy, mini: Sequence[TrainSample], config: UpdateConfig, *,
                         temperature: float, action_total: int | None = None) -> tuple[float, list]:
    """Backward pass of one mini-batch, micro-batch by micro-batch; return its loss and each
    micro-batch's (weight, loss output) for the metrics.

    The loss is the sum of the per-token losses of kept tokens divided by all action tokens of the
    mini-batch, so it does not depend on how the mini-batch was cut into micro-batches. Under
    data parallelism ``mini`` is this rank's share and ``action_total`` the whole mini-batch's
    action tokens, so the ranks' losses (and gradients) add up to the one-process ones.
    """
    if action_total is None:
        action_total = sum(sum(m.sample.action_mask[1:]) for m in mini)
    action_total = action_total or 1
    step_loss, parts = 0.0, []
    for group in micro_batches(mini, config.micro_batch_tokens):
        logprobs, entropies = action_logprobs(policy, [g.sample for g in group], temperature, with_entropy=True)
        current = torch.cat(logprobs)
        device = current.device
        keep, old_t = kept_action_tokens(current, [g.sample for g in group], config)
        advantages = [value for item in group for value in item.token_advantages()]
        reference = None
        if config.kl_coef:
            with torch.no_grad(), policy.reference():
                reference = torch.cat(action_logprobs(policy, [g.sample for g in group], temperature)[0])
        out = ppo_loss(current, old_t, torch.tensor(advantages, device=device), keep,
                       action_mask=torch.ones_like(keep), clip_low=config.clip_low, clip_high=config.clip_high,
                       dual_clip=config.dual_clip, ref_logprobs=reference, kl_coef=config.kl_coef,
                       entropy=torch.cat(entropies), entropy_coef=config.entropy_coef)
        # ppo_loss averages over this micro-batch's kept tokens; rescale to the mini-batch's total.
        scale = float(keep.sum()) / action_total
        (out.loss * scale).backward()
        step_loss += out.loss.item() * scale
        parts.append((len(current) / action_total, out))
    return step_loss, parts


def update_policy(policy: Policy, optimizer: torch.optim.Optimizer, batch: Sequence[TrainSample],
                  config: UpdateConfig, *, temperature: float, generator: torch.Generator | None = None,
                  on_step: Callable[[], None] | None = None, owned: Sequence[bool] | None = None,
                  world: World = SINGLE) -> dict[str, float]:
    """Run ``config.epochs`` passes of PPO steps, one per mini-batch of ``mini_batch_actions``
    actions, over ``batch``; return mean metrics plus ``tokens`` (summed), ``optimizer_steps`` and
    ``skipped_steps`` (non-finite losses). ``temperature`` is the one the rollouts sampled at
    (``TrainConfig.logprob_temperature``): the old log-probs were recorded with it. ``on_step`` is
    called after every optimiser step: the weights changed (``EpisodeSampler.weights_changed``).

    Data-parallel (``world.size > 1``): ``batch`` is the global batch, identical on every rank, and
    ``owned`` says which of its samples this rank computes; mini-batches are cut over the whole
    batch, and the gradients are summed over ranks once per step, before clipping
    (``distributed.py``)."""
    if world.size > 1 and (owned is None or len(owned) != len(batch)):
        raise ValueError("owned: give one flag per sample of the batch under data parallelism")
    policy.model.train()
    trainable = policy.trainable_parameters()
    totals: dict[str, list[float]] = {name: [] for name in ("loss", "clip_fraction", "masked_fraction", "ratio_mean",
                                                            "entropy", "kl", "grad_norm", "tokens")}
    skipped = 0
    actions = [response_count(item.sample) for item in batch]
    for _ in range(config.epochs):
        order = torch.randperm(len(batch), generator=generator).tolist()
        for indices in mini_batches_by_actions(actions, order, config.mini_batch_actions):
            mini = [batch[i] for i in indices]
            optimizer.zero_grad(set_to_none=True)
            if world.size == 1:
                step_loss, parts = accumulate_gradients(policy, mini, config, temperature=temperature)
                summed = [sum(weight * getattr(out, name) for weight, out in parts) for name in STEP_METRICS]
            else:
                step_loss, summed = _accumulate_share(policy, mini, [i for i in indices if owned[i]], batch, config,
                                                      temperature, trainable, world)
            if not math.isfinite(step_loss):
                logger.warning("non-finite loss (%s): skipping this optimiser step", step_loss)
                optimizer.zero_grad(set_to_none=True)
                skipped += 1
                continue
            grad_norm = torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            if on_step is not None:
                on_step()
            totals["loss"].append(step_loss)
            totals["grad_norm"].append(float(grad_norm))
            totals["tokens"].append(float(sum(len(m.sample.input_ids) for m in mini)))
            for name, value in zip(STEP_METRICS, summed):
                totals[name].append(value)
    metrics = {name: (sum(values) / len(values) if values else float("nan")) for name, values in totals.items()
               if name != "tokens"}
    metrics["tokens"] = sum(totals["tokens"])
    metrics["optimizer_steps"] = float(len(totals["loss"]))
    metrics["skipped_steps"] = float(skipped)
    return metrics


STEP_METRICS = ("clip_fraction", "masked_fraction", "ratio_mean", "entropy", "kl")
"""An optimiser step's metrics: means over the mini-batch's action tokens (micro-batch means
weighted by their share of those tokens)."""


def _accumulate_share(policy: Policy, mini: Sequence[TrainSample], own: Sequence[int], batch: Sequence[TrainSample],
                      config: UpdateConfig, temperature: float, trainable, world: World) -> tuple[float, list[float]]:
    """This rank's share (``own``: indices into ``batch``) of one mini-batch's backward pass, scaled by
    the whole mini-batch's action tokens, then the gradients and the step's loss and metric sums
    summed over ranks in one all-reduce. Returns the summed loss and metrics, alike on every rank:
    a non-finite loss on any rank makes the sum non-finite, so every rank skips the step."""
    action_total = sum(sum(m.sample.action_mask[1:]) for m in mini)
    step_loss, parts = accumulate_gradients(policy, [batch[i] for i in own], config, temperature=temperature,
                                            action_total=action_total)
    local = [step_loss] + [sum(weight * getattr(out, name) for weight, out in parts) for name in STEP_METRICS]
    total = sum_gradients(world, trainable, local)
    return total[0], total[1:]

"""What one update does with each token of a trajectory, for EMPO²'s three update modes.

The walkthrough notebook colours a rollout with these roles, because the difference between the
modes is exactly which tokens the model reads and which ones get a policy-gradient term:

* ``context``: prompt tokens the model reads during the update (no loss);
* ``tip``: retrieved tips that stay in the prompt (on-policy with tips);
* ``stripped``: tips the rollout was sampled with but that the update removes (off-policy):
  the actions are scored as if the tip-free policy had produced them;
* ``loss``: action tokens that get a policy-gradient term;
* ``masked``: action tokens dropped by low-probability masking.

The two views of a trajectory are tokenised separately (``trajectory.py``), so each step's block
is found by aligning that step's with-tips sample with the tip-free sequence; tokens the no-tip
view renders differently at a tip boundary show as context of that view.
"""

from __future__ import annotations

import difflib
import html
import itertools
from collections import Counter
from dataclasses import dataclass

import torch

from empo2_lite.algo.modes import Mode, update_views
from empo2_lite.algo.update import action_logprobs, action_positions, kept_action_tokens
from empo2_lite.config import UpdateConfig
from empo2_lite.policy.loading import Policy
from empo2_lite.trajectory import TokenSample, Trajectory

ROLES = ("context", "tip", "stripped", "loss", "masked")

ROLE_STYLES = {
    "context": "color:#555555",
    "tip": "background:#56B4E9;color:#000000",
    "stripped": "background:#D55E00;color:#ffffff;text-decoration:line-through",
    "loss": "background:#009E73;color:#ffffff",
    "masked": "background:#E69F00;color:#000000",
}
"""Okabe-Ito colours (readable with the common forms of colour blindness)."""


@dataclass(frozen=True)
class TokenRole:
    """One token's text and what the update does with it."""

    text: str
    role: str


def _kept_actions(policy: Policy, sample: TokenSample, update: UpdateConfig, temperature: float) -> list[bool]:
    """For each action token of ``sample`` in order: does it keep its policy-gradient term? (The
    update's own mask, ``algo.update.kept_action_tokens``.)"""
    with torch.no_grad():
        [current], _ = action_logprobs(policy, [sample], temperature)
    keep, _ = kept_action_tokens(current, [sample], update)
    return [bool(value) for value in keep.tolist()]


def _view_roles(policy: Policy, sample: TokenSample, update: UpdateConfig, temperature: float) -> list[str]:
    """Roles of the tokens of the view the update reads (context, loss or masked)."""
    roles = ["context"] * len(sample.input_ids)
    for t, kept in zip(action_positions(sample), _kept_actions(policy, sample, update, temperature)):
        roles[t] = "loss" if kept else "masked"
    return roles


Event = tuple[str, int | None, int | None]
"""("both" | "with_only" | "without_only", index in the with-tips ids, index in the no-tip ids)."""


def align_views(with_ids: list[int], without_ids: list[int]) -> list[Event]:
    """Walk both views in order, pairing the tokens they share.

    A run of with-tips-only tokens can often be placed in several equivalent spots (the tip block
    ends in a newline, and a newline also precedes it); it is slid as far right as possible, which
    puts it exactly where the tips were inserted, in front of the user message."""
    events: list[Event] = []
    matcher = difflib.SequenceMatcher(None, without_ids, with_ids, autojunk=False)
    for tag, without_start, without_end, with_start, with_end in matcher.get_opcodes():
        if tag == "equal":
            events += [("both", j, i) for i, j in zip(range(without_start, without_end), range(with_start, with_end))]
            continue
        events += [("without_only", None, i) for i in range(without_start, without_end)]
        events += [("with_only", j, None) for j in range(with_start, with_end)]
    start = 0
    while start < len(events):
        if events[start][0] != "with_only":
            start += 1
            continue
        end = start
        while end < len(events) and events[end][0] == "with_only":
            end += 1
        while end < len(events) and events[end][0] == "both" and with_ids[events[end][1]] == with_ids[events[start][1]]:
            _, j_start, _ = events[start]
            _, j_end, i_end = events[end]
            events[start:end + 1] = [("both", j_start, i_end), *events[start + 1:end], ("with_only", j_end, None)]
            start, end = start + 1, end + 1
        start = end
    return events


def update_token_roles(policy: Policy, trajectory: Trajectory, mode: Mode, update: UpdateConfig | None = None, *,
                       temperature: float = 1.0) -> list[TokenRole]:
    """The roles of every token of ``trajectory`` (full history) under an update in ``mode``: the
    tip-free episode with each step's tip block shown where that step's prompt had it. Masking uses
    the current policy at ``temperature`` (the rollouts', as in the update) and ``update``'s
    granularity and threshold, with the old log-probs as sampled.

    The update never reads this sequence whole: a step's block was in its own prompt only, so an
    on-policy update with tips scores each tipped step's action in its own sample (block included)
    and the other actions in the tip-free sequence; an off-policy update scores them all in the
    tip-free sequence, the blocks stripped. The roles say exactly that, token by token."""
    update = update or UpdateConfig()
    decode = policy.tokenizer.decode
    [packed] = trajectory.without_tips
    tipped = [step for step, turn in enumerate(trajectory.turns) if turn.tips]
    per_step = trajectory.with_tips[len(trajectory.with_tips) - len(tipped):]
    spans = _response_spans(packed, [len(turn.response_ids) for turn in trajectory.turns])
    with_tips = update_views(mode).current_with_tips
    if with_tips and len(trajectory.with_tips) > len(tipped):
        roles = _view_roles(policy, trajectory.with_tips[0], update, temperature)  # tipped steps' actions: context
    else:
        roles = _view_roles(policy, packed, update, temperature)
    blocks: dict[int, list[str]] = {}
    for step, sample in zip(tipped, per_step):
        start, end = spans[step]
        if with_tips:
            roles[start:end] = _view_roles(policy, sample, update, temperature)[-(end - start):]
        blocks[_block_position(sample, packed.input_ids[:end])] = [
            decode([sample.input_ids[j]]) for kind, j, _ in align_views(sample.input_ids, packed.input_ids[:end])
            if kind == "with_only"]
    tokens = []
    for i, token in enumerate(packed.input_ids):
        tokens += [TokenRole(text, "tip" if with_tips else "stripped") for text in blocks.get(i, [])]
        tokens.append(TokenRole(decode([token]), roles[i]))
    return tokens


def _response_spans(packed: TokenSample, lengths: list[int]) -> list[tuple[int, int]]:
    """Where each step's response lies in the packed tip-free sequence (its action tokens, in order)."""
    positions = action_positions(packed)
    spans, first = [], 0
    for length in lengths:
        spans.append((positions[first], positions[first + length - 1] + 1))
        first += length
    return spans


def _block_position(sample: TokenSample, prefix: list[int]) -> int:
    """The index of the tip-free token in front of which ``sample``'s block was inserted."""
    events = align_views(sample.input_ids, prefix)
    first = next(index for index, (kind, _, _) in enumerate(events) if kind == "with_only")
    return next(i for kind, _, i in events[first:] if i is not None)


def role_counts(roles: list[TokenRole]) -> dict[str, int]:
    """Tokens per role, every role listed."""
    counts = Counter(item.role for item in roles)
    return {role: counts.get(role, 0) for role in ROLES}


def tokens_html(roles: list[TokenRole], max_context_run: int = 40) -> str:
    """The tokens as coloured HTML (one span per run of tokens sharing a role) with a legend; runs
    of more than ``max_context_run`` context tokens are shortened to their ends (the prompt's rules
    and examples are long)."""
    parts = []
    for role, run in itertools.groupby(roles, key=lambda item: item.role):
        texts = [item.text for item in run]
        if role == "context" and len(texts) > max_context_run:
            keep = max_context_run // 2
            texts = [*texts[:keep], f" [... {len(texts) - 2 * keep} context tokens ...] ", *texts[-keep:]]
        parts.append(f'<span style="{ROLE_STYLES[role]}">{html.escape("".join(texts))}</span>')
    counts = role_counts(roles)
    legend = " ".join(f'<span style="{ROLE_STYLES[role]};padding:0 4px">{role}: {counts[role]}</span>' for role in ROLES)
    return (f'<div style="font-family:monospace;font-size:12px">{legend}</div>'
            f'<pre style="white-space:pre-wrap;font-size:12px;line-height:1.5">{"".join(parts)}</pre>')

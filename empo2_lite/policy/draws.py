"""Token draws that depend only on a row's seed and the token's index: counter-based sampling.

Why: ``torch.multinomial`` over a batch consumes one generator for every row, so which token a row
gets depends on which other rows share its batch and on everything drawn before. A rollout engine
that batches episodes differently (waves, refilled slots, another process) would then sample
other episodes, and an evaluation in between would shift all later training draws. Here the
uniform number behind token ``t`` of a row is a hash of (row seed, t) (SplitMix64, written with
int64 tensor arithmetic so it runs on any device and inside a captured graph), and the token is
chosen by inverting that row's cumulative distribution at it. Same seed, same probabilities, same
token, whatever the batch.

The distribution is the one both samplers define: softmax(logits / T), cut to top-p by the rule
of transformers' ``TopPLogitsWarper`` (the most likely token always kept); argmax at T = 0.
"""

from __future__ import annotations

import torch

_MASK64 = (1 << 64) - 1


def _signed(value: int) -> int:
    """A 64-bit constant as the signed int64 torch stores."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


_GOLDEN = _signed(0x9E3779B97F4A7C15)
_MIX1 = _signed(0xBF58476D1CE4E5B9)
_MIX2 = _signed(0x94D049BB133111EB)


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical (unsigned) right shift of int64 values (torch's ``>>`` is arithmetic)."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def splitmix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64's output function on int64 tensors (wrapping arithmetic), element-wise."""
    z = x + _GOLDEN
    z = (z ^ _shift_right(z, 30)) * _MIX1
    z = (z ^ _shift_right(z, 27)) * _MIX2
    return z ^ _shift_right(z, 31)


def uniforms(seeds: torch.Tensor, counters: torch.Tensor | int) -> torch.Tensor:
    """A float64 in [0, 1) per row, a function of (seed, counter) only."""
    mixed = splitmix64(splitmix64(seeds.long()) + counters)
    return _shift_right(mixed, 11).double() * 2.0 ** -53


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Scores with every token outside the smallest set of mass >= ``top_p`` at -inf (the most likely
    token always kept): the rule of transformers' ``TopPLogitsWarper``, so both samplers agree."""
    ascending, order = torch.sort(scores, descending=False)
    drop_sorted = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - top_p)
    drop_sorted[..., -1:] = False
    drop = drop_sorted.scatter(1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))


def choose_tokens(logits: torch.Tensor, temperature: float, top_p: float, seeds: torch.Tensor,
                  token_index: int) -> torch.Tensor:
    """Next token per row: argmax at temperature 0, else the draw of (row seed, ``token_index``) from
    softmax(logits / T) cut to top-p, by inverse transform sampling."""
    if temperature <= 0:
        return logits.argmax(-1)
    scores = logits.float() / temperature
    if top_p < 1.0:
        scores = top_p_filter(scores, top_p)
    cumulative = torch.softmax(scores.double(), dim=-1).cumsum(dim=-1)
    target = uniforms(seeds.to(logits.device), token_index) * cumulative[:, -1]
    chosen = torch.searchsorted(cumulative, target[:, None], right=True).squeeze(1)
    return chosen.clamp(max=logits.shape[-1] - 1)


def row_seeds(seeds: list[int] | None, rows: int, device) -> torch.Tensor:
    """The rows' seeds as an int64 tensor; without given seeds, drawn from torch's global generator
    (so ``torch.manual_seed`` still makes an unseeded call repeatable)."""
    if seeds is None:
        return torch.randint(0, 2**62, (rows,), dtype=torch.long).to(device)
    if len(seeds) != rows:
        raise ValueError(f"{len(seeds)} seeds for {rows} prompts")
    return torch.tensor(seeds, dtype=torch.long, device=device)

"""Batched sampling of one action per prompt, returning exact token ids and their log-probs.

Prompts arrive as token ids (never text), are left-padded into one batch and decoded with
transformers' ``generate`` (temperature, top-p, at most ``max_new_tokens``). A sequence stops at
EOS or at the first token whose text contains a newline, because an action is one line; the
stopping token is part of the response.

Log-probs: for each sampled token we record log softmax(logits / temperature) of the raw model
logits, i.e. the temperature-scaled policy without top-p truncation. This is what PPO's "old"
log-prob must be, since the trainer recomputes current log-probs the same way (the convention of
verl, which the official code uses). With temperature 0 (greedy) the log-probs are at
temperature 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from empo2_lite.policy.loading import Policy


@dataclass(frozen=True)
class SampledResponse:
    """One sampled response."""

    token_ids: list[int]
    """Generated tokens, the stopping token (newline or EOS) included."""
    logprobs: list[float]
    """Log-prob of each generated token (see module docstring)."""
    text: str
    """The decoded tokens, special tokens kept (so ``text`` maps back to ``token_ids``)."""
    finish: str
    """"newline", "eos" or "length"."""


@lru_cache(maxsize=8)
def _newline_token_ids(tokenizer) -> tuple[int, ...]:
    """Ids of every token whose text contains a newline (computed once per tokenizer)."""
    special = set(tokenizer.all_special_ids)
    return tuple(i for i in range(len(tokenizer)) if i not in special and "\n" in tokenizer.decode([i]))


class _StopAtTokens(StoppingCriteria):
    """Per-sequence stop when the last generated token is one of ``stop_ids``."""

    def __init__(self, stop_ids: torch.Tensor) -> None:
        self.stop_ids = stop_ids

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs) -> torch.Tensor:
        return torch.isin(input_ids[:, -1], self.stop_ids)


def left_pad(prompts: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ids and attention mask for a batch of token-id prompts."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt):] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def sample_responses(
    policy: Policy,
    prompts: list[list[int]],
    *,
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 32,
) -> list[SampledResponse]:
    """Sample one response per prompt (a batch); seed with ``torch.manual_seed`` for repeatability."""
    if not prompts:
        return []
    tokenizer, model = policy.tokenizer, policy.model
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id
    newline_ids = _newline_token_ids(tokenizer)
    stop_ids = torch.tensor(sorted({*newline_ids, eos_id}), device=policy.device)
    input_ids, attention_mask = left_pad(prompts, pad_id, policy.device)
    greedy = temperature <= 0
    was_training = model.training
    model.eval()
    try:
        out = model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_p=None if greedy else top_p,
            top_k=None,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
            stopping_criteria=StoppingCriteriaList([_StopAtTokens(stop_ids)]),
            output_logits=True,
            return_dict_in_generate=True,
        )
    finally:
        model.train(was_training)
    generated = out.sequences[:, input_ids.shape[1]:]
    scale = 1.0 if greedy else temperature
    logits = torch.stack(out.logits, dim=1).float() / scale
    token_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, generated.unsqueeze(-1)).squeeze(-1)
    responses = []
    stop_set = set(stop_ids.tolist())
    for row in range(len(prompts)):
        ids = generated[row].tolist()
        end = next((i + 1 for i, token in enumerate(ids) if token in stop_set), len(ids))
        ids = ids[:end]
        finish = "eos" if ids[-1] == eos_id else "newline" if ids[-1] in stop_set else "length"
        responses.append(SampledResponse(
            token_ids=ids,
            logprobs=token_logprobs[row, :end].tolist(),
            text=tokenizer.decode(ids, skip_special_tokens=False),
            finish=finish,
        ))
    return responses

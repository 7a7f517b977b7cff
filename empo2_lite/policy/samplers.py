"""The sampler interface rollouts use, and the choice between keeping KV caches or re-reading.

Rollouts ask a sampler for one response per running episode, naming each episode by a key, and
tell it when an episode is over (``release``). Two implementations:

* ``KVCacheSampler`` (``kv_sampler.py``, the default, ``rollout.kv_cache = True``): keeps each
  episode's keys and values and feeds only the tokens it has not seen.
* ``RereadingSampler``: re-reads every prompt in full with ``generate`` (``sampling.py``). Used
  when the cache is switched off or cannot be used; ``episode_sampler`` says why in one line.

The interface is this small on purpose: an inference engine with prefix caching (vLLM, for one)
could implement ``sample``/``release`` with one adapter version per optimiser step
(docs/deviations.md).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import Protocol

from empo2_lite.config import RolloutConfig
from empo2_lite.policy.loading import Policy
from empo2_lite.policy.sampling import SampledResponse, sample_responses

logger = logging.getLogger(__name__)


class EpisodeSampler(Protocol):
    """Samples one response per episode from each episode's full prompt."""

    last_computed: dict[Hashable, int]
    """Prompt tokens of each episode the model actually computed in the last ``sample`` call."""

    def sample(self, keys: list[Hashable], prompts: list[list[int]], with_logprobs: bool = True, *,
               seeds: list[int] | None = None, temperature: float | None = None, top_p: float | None = None,
               max_new_tokens: int | None = None) -> list[SampledResponse]:
        """One response per (key, full prompt), row ``i``'s tokens drawn from ``seeds[i]`` alone (so an
        episode samples the same tokens in any batch; ``draws.py``); keyword overrides default to the
        rollout's settings."""

    def release(self, key: Hashable) -> int:
        """The episode is over: free what is kept for it; return its peak cache size in bytes."""

    def weights_changed(self) -> None:
        """The trainer took an optimiser step. A sampler that reads the live model (both here)
        has nothing to do; one that keeps merged weights or an inference engine with its own
        copy of the adapter refreshes or syncs it here, before the next rollout."""


class RereadingSampler:
    """Every call reads each prompt in full (no state between calls)."""

    def __init__(self, policy: Policy, *, temperature: float, top_p: float, max_new_tokens: int) -> None:
        self.policy = policy
        self.temperature, self.top_p, self.max_new_tokens = temperature, top_p, max_new_tokens
        self.last_computed: dict[Hashable, int] = {}

    def sample(self, keys: list[Hashable], prompts: list[list[int]], with_logprobs: bool = True, *,
               seeds: list[int] | None = None, temperature: float | None = None, top_p: float | None = None,
               max_new_tokens: int | None = None) -> list[SampledResponse]:
        self.last_computed = {key: len(prompt) for key, prompt in zip(keys, prompts)}
        return sample_responses(self.policy, prompts,
                                temperature=self.temperature if temperature is None else temperature,
                                top_p=self.top_p if top_p is None else top_p,
                                max_new_tokens=self.max_new_tokens if max_new_tokens is None else max_new_tokens,
                                with_logprobs=with_logprobs, seeds=seeds)

    def release(self, key: Hashable) -> int:
        return 0

    def weights_changed(self) -> None:
        """Nothing is kept: every call reads the live model."""


def episode_sampler(policy: Policy, config: RolloutConfig) -> EpisodeSampler:
    """The KV-cache sampler when ``config.kv_cache`` is on and the model allows it, else the
    re-reading one (and a one-line reason when the cache was asked for but cannot be used)."""
    settings = {"temperature": config.temperature, "top_p": config.top_p, "max_new_tokens": config.max_new_tokens}
    if not config.kv_cache:
        return RereadingSampler(policy, **settings)
    reason = cache_unusable_reason(policy)
    if reason:
        logger.warning("rollout.kv_cache: %s; re-reading every prompt instead", reason)
        return RereadingSampler(policy, **settings)
    from empo2_lite.policy.kv_sampler import KVCacheSampler

    return KVCacheSampler(policy, **settings)


def cache_unusable_reason(policy: Policy) -> str | None:
    """Why the per-episode cache cannot serve ``policy`` (None when it can)."""
    if policy.config.backend != "hf":
        return f"policy.backend {policy.config.backend!r} patches the model's forward, which the cache is not tested with"
    from empo2_lite.policy.kv_sampler import full_attention_problem

    return full_attention_problem(policy.model)

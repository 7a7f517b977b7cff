"""A scripted ``EpisodeSampler`` for the rollout and trainer tests.

It answers each episode's actions from its own list (found by a phrase of the episode's task
description in the first user message) and records every prompt it was fed, so tests can compare
what the model saw with what a trajectory stores. A call with settings of its own (a tip: its
temperature and token limit) is sampled from the policy, as the trainer's sampler would: tips and
evaluation episodes stay the model's own.
"""

from __future__ import annotations

from collections.abc import Hashable

from empo2_lite.policy.sampling import SampledResponse, sample_responses


class ScriptedSampler:
    """Scripted actions per episode, the policy's own tips; counts the weight updates it is told of."""

    def __init__(self, policy, scripts: dict[str, list[str]], *, top_p: float = 1.0) -> None:
        self.policy, self.tokenizer = policy, policy.tokenizer
        self.scripts = {key: list(actions) for key, actions in scripts.items()}
        self.top_p = top_p
        self.fed: dict[str, list[list[int]]] = {key: [] for key in scripts}
        self.batch_sizes: list[int] = []
        self.last_computed: dict[Hashable, int] = {}
        self.weight_updates = 0
        """How many times ``weights_changed`` was called (once per optimiser step)."""

    def sample(self, keys: list[Hashable], prompts: list[list[int]], with_logprobs: bool = True, *,
               seeds: list[int] | None = None, temperature: float | None = None, top_p: float | None = None,
               max_new_tokens: int | None = None) -> list[SampledResponse]:
        self.last_computed = {key: len(prompt) for key, prompt in zip(keys, prompts)}
        if temperature is not None or top_p is not None or max_new_tokens is not None:  # a tip
            return sample_responses(self.policy, prompts, temperature=1.0 if temperature is None else temperature,
                                    top_p=self.top_p if top_p is None else top_p,
                                    max_new_tokens=32 if max_new_tokens is None else max_new_tokens,
                                    with_logprobs=with_logprobs, seeds=seeds)
        self.batch_sizes.append(len(prompts))
        responses = []
        for prompt in prompts:
            text = self.tokenizer.decode(prompt)
            first_user = text.split("<|im_start|>user", 1)[1].split("<|im_end|>", 1)[0]
            [key] = [key for key in self.scripts if key in first_user]
            self.fed[key].append(list(prompt))
            ids = self.tokenizer(self.scripts[key].pop(0) + "\n", add_special_tokens=False).input_ids
            responses.append(SampledResponse(ids, [-0.25] * len(ids), self.tokenizer.decode(ids), "newline"))
        return responses

    def release(self, key: Hashable) -> int:
        return 0

    def weights_changed(self) -> None:
        self.weight_updates += 1

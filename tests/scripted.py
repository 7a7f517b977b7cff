"""A scripted stand-in for the policy's sampler, shared by the rollout tests.

It answers each episode from its own list of actions (found by a phrase of the episode's task
description in the first user message) and records every prompt it was fed, so tests can compare
what the model saw with what a trajectory stores.
"""

from __future__ import annotations

from empo2_lite.policy.sampling import SampledResponse


class ScriptedSampler:
    """Answers with scripted actions per episode and records the prompts it was fed."""

    def __init__(self, tokenizer, scripts: dict[str, list[str]]) -> None:
        self.tokenizer, self.scripts = tokenizer, {key: list(actions) for key, actions in scripts.items()}
        self.fed: dict[str, list[list[int]]] = {key: [] for key in scripts}
        self.batch_sizes: list[int] = []

    def __call__(self, batch: list[list[int]]) -> list[SampledResponse]:
        self.batch_sizes.append(len(batch))
        responses = []
        for prompt in batch:
            text = self.tokenizer.decode(prompt)
            first_user = text.split("<|im_start|>user", 1)[1].split("<|im_end|>", 1)[0]
            [key] = [key for key in self.scripts if key in first_user]
            self.fed[key].append(list(prompt))
            ids = self.tokenizer(self.scripts[key].pop(0) + "\n", add_special_tokens=False).input_ids
            responses.append(SampledResponse(ids, [-0.25] * len(ids), self.tokenizer.decode(ids), "newline"))
        return responses

"""The Retrospex baseline: a frozen LLM actor whose candidate actions an offline-RL critic re-ranks.

What it plays (after Xiang et al., 2024, in the kit's own words and harness):

* at every step the actor (the preset's base model, frozen) proposes ``RetrospexSettings.candidates``
  actions, each cut at its first line like every action: by default the top 6 of a beam search
  (``KVCacheSampler.beam_candidates``; the original's), so 6 distinct texts from the model's own
  distribution, the same for every seed; or (``search="sample"``) independent samples at the
  evaluation's temperature, each from a seed of its own (``seeding.candidate_seed``). Candidates
  with the same text (case aside) are merged, keeping the likelier. The kit sampled first; on
  cpu-solve the 135M model's 6 samples at temperature 0.4 gave 1.3 distinct actions a step, and
  with two candidates min-max normalisation gives the actor's favourite p = 1 and the other p = 0,
  so at lambda >= 0.6 no critic value can overturn it: the critic never decided a step. A beam
  gives it 6 to choose from;
* each distinct candidate gets ``p``, the actor's probability of it (exp of its tokens' mean
  log-probability: under the model's own distribution for a beam, under the sampling distribution
  for samples; the original: exp of minus the mean token loss),
  and ``Q``, the critic's value of it in the current state (``critic.py``; the candidate's raw text
  is scored, not the valid action the environment's correction may map it to: the pool protocol
  lists no valid actions, and the critic's bag-of-words encoder reads near-miss wordings alike);
* both are min-max normalised over the candidates (all equal, or a single candidate: 1 for every
  one), and the highest ``lambda * p + (1 - lambda) * Q`` is played, ``lambda = max(b, d ** step)``
  (b = 0.6, d = 0.97 for ScienceWorld, the original's): the actor leads early, the critic's weight
  grows to 0.4 by step 17. Ties go to the higher ``p``, then to the first drawn;
* the **actor-only arm** plays the same episodes with lambda = 1 (the actor re-ranking its own
  candidates, no critic), from the same seeds, so the critic's share of the result is the
  difference between the arms.

Every step feeds each episode only its new tokens once (``KVCacheSampler.sample_candidates``: the
episode's keys and values are kept across steps, as for a naive episode) and then decodes its
candidates together from copies of that cache, so a candidate costs its own few decoded tokens, not
a re-read of the prompt. Measured on the 2-core VM (``benchmarks/retrospex_cost.py``, 4 dev episodes
of 10 steps, 6 candidates; docs/retrospex-cost-2026-12-07.json): 43x fewer prompt tokens computed
than re-reading the prompt once per candidate, every one of the 40 actions the same, but only 2.25x
less time (69 s an episode against 155 s; a naive episode: ~7 s): decoding 6 candidates, episode by
episode, is most of what is left. Batching several episodes' candidates together was tried and was
slower on the 2-core CPU (6 rows at a time: 106 s for 24 steps; 24 rows: 198 s): a row costs about
the same in any batch there. What does save time is that a candidate which has stopped leaves the
batch at the next token (``KVCacheSampler._candidates``): most stop after a few words while one
often runs on to ``max_new_tokens``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import replace
from typing import Any

from empo2_lite.baselines import RetrospexSettings
from empo2_lite.config import RolloutConfig, check_choice
from empo2_lite.env.actions import normalize_action
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.policy.loading import Policy
from empo2_lite.policy.kv_sampler import KVCacheSampler
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import StepState, action_text, collect_rollouts, warn_if_context_is_short
from empo2_lite.seeding import candidate_seed
from empo2_lite.summary import summarize
from empo2_lite.tasks import EVAL_SPLITS, Task
from empo2_lite.transitions import state_text


def min_max(values: Sequence[float]) -> list[float]:
    """``values`` scaled to [0, 1] over their range; all 1 when they are all equal (one value
    included), so that the other term of the score decides."""
    low, high = min(values), max(values)
    if high - low <= 1e-12:
        return [1.0] * len(values)
    return [(value - low) / (high - low) for value in values]


def rerank(probabilities: Sequence[float], values: Sequence[float], actor_weight: float) -> int:
    """The index of the candidate with the highest ``actor_weight * p + (1 - actor_weight) * Q``
    (both min-max normalised); ties go to the higher raw probability, then to the lower index."""
    p, q = min_max(probabilities), min_max(values)
    scores = [actor_weight * a + (1 - actor_weight) * b for a, b in zip(p, q)]
    return max(range(len(scores)), key=lambda i: (scores[i], probabilities[i], -i))


def probability(response: SampledResponse) -> float:
    """exp of the mean log-probability of the response's tokens (0 for an empty response)."""
    return math.exp(sum(response.logprobs) / len(response.logprobs)) if response.logprobs else 0.0


class RetrospexSampler:
    """An ``EpisodeSampler`` that draws candidates for each episode and returns the one the
    re-ranking chooses (``critic=None``: the actor-only arm). ``observe`` must be passed to
    ``collect_rollouts``, which tells it each episode's state before it samples."""

    def __init__(self, policy: Policy, settings: RetrospexSettings, critic: Any | None, *, temperature: float,
                 top_p: float, max_new_tokens: int) -> None:
        self.policy, self.settings, self.critic = policy, settings, critic
        self.engine = KVCacheSampler(policy, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens)
        self.states: dict[Hashable, StepState] = {}
        self.last_computed: dict[Hashable, int] = {}
        self.steps = 0
        self.distinct = 0
        self.critic_changed = 0
        """Steps whose played candidate is not the one of the highest ``p``."""

    def observe(self, state: StepState) -> None:
        self.states[state.rollout_id] = state

    def sample(self, keys: list[Hashable], prompts: list[list[int]], with_logprobs: bool = True, *,
               seeds: list[int] | None = None, temperature: float | None = None, top_p: float | None = None,
               max_new_tokens: int | None = None) -> list[SampledResponse]:
        if seeds is None:
            raise ValueError("RetrospexSampler needs each episode's step seed (collect_rollouts passes them)")
        if (temperature, top_p, max_new_tokens) != (None, None, None):
            raise ValueError("RetrospexSampler samples actions only, at the settings it was made with")
        count = self.settings.candidates
        if self.settings.search == "beam":
            drawn = self.engine.beam_candidates(keys, prompts, count)
        else:
            drawn = self.engine.sample_candidates(
                keys, prompts, count, seeds=[[candidate_seed(seed, j) for j in range(count)] for seed in seeds])
        self.last_computed = dict(self.engine.last_computed)
        return [self.choose(self.states[key], candidates) for key, candidates in zip(keys, drawn)]

    def choose(self, state: StepState, drawn: Sequence[SampledResponse]) -> SampledResponse:
        """The candidate the re-ranking plays among ``drawn`` (duplicates merged)."""
        best: dict[str, int] = {}
        texts = [normalize_action(action_text(response, self.policy.tokenizer)) for response in drawn]
        for index, text in enumerate(texts):
            kept = best.get(text.casefold())
            if kept is None or probability(drawn[index]) > probability(drawn[kept]):
                best[text.casefold()] = index
        options = list(best.values())
        p = [probability(drawn[i]) for i in options]
        if self.critic is None:
            q, weight = [0.0] * len(options), 1.0
        else:
            q = self.critic.q_values(state_text(state.task_description, state.observation), [texts[i] for i in options])
            weight = self.settings.actor_weight(state.step)
        pick = rerank(p, q, weight)
        self.steps += 1
        self.distinct += len(options)
        self.critic_changed += pick != rerank(p, q, 1.0)
        return drawn[options[pick]]

    def release(self, key: Hashable) -> int:
        self.states.pop(key, None)
        return self.engine.release(key)

    def weights_changed(self) -> None:
        """Frozen weights: never called."""

    def record(self) -> dict[str, Any]:
        """What the re-ranking did over every step played."""
        return {"steps": self.steps, "distinct_candidates_mean": self.distinct / self.steps if self.steps else 0.0,
                "changed_by_critic_share": self.critic_changed / self.steps if self.steps else 0.0}


def retrospex(policy: Policy, pool: EpisodePool, task: Task, rollout: RolloutConfig, settings: RetrospexSettings,
              critic: Any, *, split: str, seed: int, temperature: float, episodes_per_variation: int,
              progress: bool = False) -> dict[str, Any]:
    """Both arms on every protocol variation of ``split`` (``episodes_per_variation`` episodes
    each, seeds of ``retrospex-<split>``): the row's return and success are the critic arm's; the
    actor-only arm (lambda = 1) sits under ``actor_only`` with the same fields."""
    from empo2_lite.evaluation import evaluation_specs

    check_choice("split", split, EVAL_SPLITS)
    settings.validate()
    warn_if_context_is_short(policy.tokenizer, task.name, rollout, with_tips=False)
    specs = evaluation_specs(task, episodes_per_variation, split=split, seed=seed, purpose=f"retrospex-{split}",
                             iteration=0)
    config = replace(rollout, temperature=temperature)
    arms = {}
    for arm, arm_critic in (("critic", critic), ("actor_only", None)):
        sampler = RetrospexSampler(policy, settings, arm_critic, temperature=temperature, top_p=config.top_p,
                                   max_new_tokens=config.max_new_tokens)
        trajectories = collect_rollouts(policy, pool, specs, config, progress=progress, sampler=sampler,
                                        observe=sampler.observe)
        arms[arm] = {**summarize(trajectories).evaluation_record(), "reranking": sampler.record()}
    return {"task": task.name, "split": split, "seed": seed, "episodes_per_variation": episodes_per_variation,
            **settings.row(), **arms["critic"], "actor_only": arms["actor_only"]}

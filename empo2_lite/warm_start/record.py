"""Gold trajectories of train variations, rendered exactly as a rollout renders an episode.

Two passes, because a pool (``env.protocol.EpisodePool``) plays text and knows no gold paths:

* ``gold_paths`` asks the task's environment for each variation's gold action sequence and plays
  it through the kit's adapter (``env.play.play_actions`` on the spec's ``open_game``), keeping the actions the adapter *executed* (after
  its ambiguity answers), as ``data/demonstrations.json`` does, for the paths that solve the
  variation. Executed actions are what the model should learn to write: ScienceWorld accepts each
  of them as written.
* ``record_demonstrations`` plays those actions through ``rollout.collect_rollouts`` itself, with
  ``GoldSampler`` standing in for the model. Every prompt, message and token is then the rollout's
  own, and each recorded trajectory's ``without_tips`` samples are the token-exact sequences, with
  their action masks, that an RL update of the same episode would read. Nothing is rendered here.

A gold action is answered as a model's response that stops at the end of its line would be: the
action's tokens and the newline token(s) (the samplers stop at any token holding a newline, and
the rollout sends the first line to the environment).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace

from empo2_lite.config import EnvConfig, RolloutConfig
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.policy.loading import Policy
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.tasks import Task
from empo2_lite.trajectory import Trajectory
from empo2_lite.warm_start import check_train_only

logger = logging.getLogger(__name__)


def gold_paths(task: Task, variations: Sequence[int], env: EnvConfig | None = None) -> dict[int, list[str]]:
    """The executed gold actions of each train variation whose gold path solves it (score 100), by
    variation; a path that does not is left out, with a warning (needs Java: one JVM)."""
    from empo2_lite.env.play import play_actions
    from empo2_lite.env.spec import environment_of

    check_train_only(task, variations)
    owner = environment_of(task.name)
    paths: dict[int, list[str]] = {}
    with owner.open_game(env or EnvConfig(name=owner.name)) as adapter:
        for variation in variations:
            episode = play_actions(adapter, task.name, variation, None)
            if episode.steps and episode.steps[-1].success:
                paths[variation] = [step.action for step in episode.steps]
            else:
                logger.warning("%s variation %d: the gold path ends with score %d, not solved; not cloned",
                               task.name, variation, episode.score)
    return paths


def response_for(tokenizer, action: str) -> SampledResponse:
    """``action`` as the response of a model that wrote it and stopped at the end of the line."""
    ids = tokenizer(action + "\n", add_special_tokens=False).input_ids
    return SampledResponse(ids, [0.0] * len(ids), tokenizer.decode(ids), "newline")


class GoldSampler:
    """An ``EpisodeSampler`` that answers each episode (by rollout id) with its next gold action."""

    def __init__(self, tokenizer, actions: Mapping[Hashable, Sequence[str]]) -> None:
        self.tokenizer = tokenizer
        self.actions = {key: list(path) for key, path in actions.items()}
        self.last_computed: dict[Hashable, int] = {}

    def sample(self, keys: list[Hashable], prompts: list[list[int]], with_logprobs: bool = True, *,
               seeds: list[int] | None = None, temperature: float | None = None, top_p: float | None = None,
               max_new_tokens: int | None = None) -> list[SampledResponse]:
        self.last_computed = {key: len(prompt) for key, prompt in zip(keys, prompts)}
        for key in keys:
            if not self.actions[key]:
                raise RuntimeError(f"episode {key}: its gold path is spent but the episode goes on")
        return [response_for(self.tokenizer, self.actions[key].pop(0)) for key in keys]

    def release(self, key: Hashable) -> int:
        return 0

    def weights_changed(self) -> None:
        """Nothing is sampled from the weights."""


@dataclass(frozen=True)
class GoldEpisode:
    """One gold path as recorded through the rollout (not to be confused with the prompt's
    ``demonstrations.Demonstration``, a solved example shown in the first message)."""

    variation: int
    actions: tuple[str, ...]
    trajectory: Trajectory

    @property
    def solved(self) -> bool:
        """Whether the path solved the variation when played through the rollout."""
        return self.trajectory.success

    def summary(self) -> dict:
        """What ``warm_start.json`` says of it."""
        samples = self.trajectory.without_tips
        return {"variation": self.variation, "actions": list(self.actions), "score": self.trajectory.score,
                "solved": self.solved, "end_reason": self.trajectory.end_reason,
                "tokens": sum(len(sample.input_ids) for sample in samples),
                "action_tokens": sum(sum(sample.action_mask) for sample in samples)}


def record_demonstrations(policy: Policy, pool: EpisodePool, task: Task, paths: Mapping[int, Sequence[str]],
                          rollout: RolloutConfig) -> list[GoldEpisode]:
    """Each path played through the rollout as its episode's actions (see the module docstring), in
    the order of ``paths``. One episode at a time, capped at its path's length, so that a path is
    never cut short and an episode never outlives its path; tips are never shown; every other
    rendering setting (demonstrations, history window, context) is ``rollout``'s, as in the RL run
    the warm start prepares."""
    check_train_only(task, list(paths))
    demonstrations = []
    for variation, path in paths.items():
        spec = EpisodeSpec(task.name, variation, group_id=0, seed=0)
        settings = replace(rollout, max_steps=len(path))
        [trajectory] = collect_rollouts(policy, pool, [spec], settings, retrieve=None, progress=False,
                                        sampler=GoldSampler(policy.tokenizer, {0: path}))
        demonstrations.append(GoldEpisode(variation, tuple(path), trajectory))
    return demonstrations

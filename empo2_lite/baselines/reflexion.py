"""The Reflexion baseline: frozen weights, a chain of trials per test variation, a written
reflection after each failed trial.

What it plays (after Shinn et al., 2023, as the ScienceWorld literature runs it: SwiftSage's
Reflexion script), in the kit's own words and harness:

* one **chain** per test variation and episode index; a chain plays up to ``trials`` attempts of
  that same variation (``ReflexionSettings.trials``, default 3: the EMPO² paper does not say how
  many its column used; the original Reflexion runs 10) and stops at the first that scores 100;
* after every trial that did not (but the last), the same model, frozen, writes a **reflection**
  from the trial's transcript and final score: what went wrong and a new plan, greedy
  (temperature 0), at most ``reflection_tokens`` tokens, on one line (every sampler of the kit
  stops at a newline; the original allows 256 tokens over several lines). Its prompt lists the
  chain's earlier reflections as "Trial #i";
* the next trial's first message shows the chain's newest ``shown`` (3) reflections under a heading
  of their own (``prompts.reflection_block``); nothing carries over between chains, so nothing
  between variations;
* the **control** plays the same chains with the reflections withheld (no reflection is written);
  both arms draw trial k of a chain from the same episode seed (purpose ``reflexion-<split>``), so
  trial 1 is the same episode in both (played once, shared) and best-of-K sampling is not taken
  for reflection.

Reported per arm (``arm_record``): the best trial of each chain (what Reflexion reports; the row's
return, labelled "best of K"), trial 1 and each chain's last trial, each with success rate,
per-variation values and end reasons; per trial, how many chains played it and how they did.

Transcripts: the reflection prompt is a fresh chat (system prompt, one user message:
``prompts.reflection_message``), the transcript as plain text (first observation, then "> action"
and each observation; the executed actions). When the prompt exceeds the context less the
reflection's tokens, the oldest steps are left out one by one and a line says how many (SwiftSage
drops the oldest step until its prompt fits); counted as ``transcripts_cut``. A prompt that does not
fit even without steps gets no reflection (``not_written_context``).

Context: the reflection block sits in the first message of a whole episode. When a full-length
tip-free episode fits ``rollout.max_context_tokens`` but not with ``shown`` reflections of
``reflection_tokens`` tokens, each shown reflection is cut to the tokens that fit
(``reflection_cap``), and every cut one is counted (``cut_to_fit``); nothing is dropped silently.
Reflections stopped at the generation cap are counted as ``at_cap``, empty ones as ``empty``.

Every episode goes through ``rollout.collect_rollouts`` with the engine ``rollout.engine`` names
(or the sampler given), so Reflexion samples token-exactly as every evaluation does.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from empo2_lite import prompts
from empo2_lite.baselines import ReflexionSettings
from empo2_lite.config import ConfigError, RolloutConfig, check_choice
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.env.spec import environment_of
from empo2_lite.policy.loading import Policy
from empo2_lite.policy.samplers import EpisodeSampler, episode_sampler
from empo2_lite.rollout import EpisodeSpec, collect_rollouts, warn_if_context_is_short, worst_case_prompt_tokens
from empo2_lite.seeding import episode_seed, reflection_seed
from empo2_lite.summary import summarize
from empo2_lite.tasks import EVAL_SPLITS, Task, step_cap
from empo2_lite.trajectory import Trajectory, append_history


@dataclass(frozen=True)
class Reflection:
    """One reflection a chain wrote, and how writing it went."""

    trial: int
    """The trial (1-based) it was written after."""
    text: str
    """What later trials are shown ("" when none was written)."""
    finish: str
    """The sampler's "newline", "eos" or "length" (stopped at the cap); "context_limit" when even
    the transcript's first observation did not fit; "no_steps" when the trial never acted."""
    cut_to_fit: bool = False
    """Cut to ``reflection_cap`` tokens so that the block fits the context."""
    steps_left_out: int = 0
    """Oldest transcript steps left out of its prompt to fit the context."""


@dataclass
class Chain:
    """The trials of one (variation, episode index), and the reflections written between them."""

    variation: int
    index: int
    trials: list[Trajectory] = field(default_factory=list)
    reflections: list[Reflection] = field(default_factory=list)

    @property
    def solved(self) -> bool:
        """A trial scored 100 (the chain stops)."""
        return any(trajectory.success for trajectory in self.trials)

    def shown(self, count: int) -> tuple[tuple[int, str], ...]:
        """The newest ``count`` written reflections as (trial, text), oldest first."""
        written = [(reflection.trial, reflection.text) for reflection in self.reflections if reflection.text]
        return tuple(written[-count:])

    def best(self) -> Trajectory:
        """The trial with the highest score (the earliest of equals); environment failures only
        when every trial was one."""
        scored = [trajectory for trajectory in self.trials if trajectory.end_reason != "env_failure"]
        return max(scored, key=lambda trajectory: trajectory.score) if scored else self.trials[-1]


def transcript(trajectory: Trajectory, left_out: int = 0) -> str:
    """The trial as plain text: the first observation, then "> action" and each observation,
    with the oldest ``left_out`` steps replaced by a line saying so."""
    turns = trajectory.turns
    text = turns[0].history if turns else ""
    if left_out:
        text += f"\n(your first {left_out} command(s) are left out here)"
    for turn in turns[left_out:]:
        text = append_history(text, turn.action, turn.observation)
    return text


def reflection_prompt(tokenizer, trajectory: Trajectory, earlier: Sequence[tuple[int, str]],
                      budget: int) -> tuple[list[int] | None, int]:
    """The ids of the reflection prompt for ``trajectory`` and the oldest steps left out to keep
    it within ``budget`` tokens; (None, steps) when even the first observation alone does not fit."""
    for left_out in range(len(trajectory.turns) + 1):
        message = prompts.reflection_message(trajectory.task_description, transcript(trajectory, left_out),
                                             trajectory.score, earlier)
        ids = tokenizer.apply_chat_template([{"role": "system", "content": environment_of(trajectory.task).system_prompt},
                                             {"role": "user", "content": message}],
                                            tokenize=True, add_generation_prompt=True, return_dict=False)
        if len(ids) <= budget:
            return ids, left_out
    return None, len(trajectory.turns)


def _block_overhead(tokenizer, shown: int) -> int:
    """Tokens of a reflection block of ``shown`` empty reflections: its heading and line labels."""
    block = prompts.reflection_block([(trial, "") for trial in range(1, shown + 1)])
    return len(tokenizer(block, add_special_tokens=False).input_ids)


def reflection_cap(tokenizer, task: str, rollout: RolloutConfig, settings: ReflexionSettings) -> int:
    """The most tokens a shown reflection may take: ``reflection_tokens``, less when a block of
    ``shown`` of them would push a full-length tip-free episode (``worst_case_prompt_tokens``) past
    the context: then an equal share of the room left, after the block's heading and labels (a token
    or two at the joins is within that estimate's margin). When the episode does not fit even
    without reflections (``warn_if_context_is_short`` says so), they keep their length and such
    episodes end with ``context_limit``, counted. Refused in one line when no token fits."""
    steps = rollout.max_steps or step_cap(task, default=30)
    room = rollout.max_context_tokens - worst_case_prompt_tokens(tokenizer, task, rollout, steps, with_tips=False)
    if room < 0:
        return settings.reflection_tokens
    cap = min(settings.reflection_tokens, (room - _block_overhead(tokenizer, settings.shown)) // settings.shown)
    if cap < 1:
        raise ConfigError(f"rollout.max_context_tokens: {rollout.max_context_tokens} leaves no room for "
                          f"{settings.shown} reflections in a {steps}-step episode of {task}; raise it")
    return cap


def _fit(tokenizer, text: str, cap: int) -> tuple[str, bool]:
    """``text`` cut to at most ``cap`` tokens, and whether it was cut."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) <= cap:
        return text, False
    return tokenizer.decode(ids[:cap], skip_special_tokens=True).strip(), True


def write_reflections(policy: Policy, sampler: EpisodeSampler, chains: Sequence[Chain], settings: ReflexionSettings,
                      rollout: RolloutConfig, cap: int) -> list[Reflection]:
    """One reflection per chain on its last trial, in batches of ``settings.batch_size``; each
    sampled from its trial's ``reflection_seed`` under a key of its own, released at once."""
    trial = len(chains[0].trials) if chains else 0
    budget = rollout.max_context_tokens - settings.reflection_tokens
    written: dict[int, Reflection] = {}
    asks: dict[int, tuple[list[int], int]] = {}
    for position, chain in enumerate(chains):
        last = chain.trials[-1]
        if not last.turns:
            written[position] = Reflection(trial, "", "no_steps")
            continue
        ids, left_out = reflection_prompt(policy.tokenizer, last, chain.shown(settings.shown), budget)
        if ids is None:
            written[position] = Reflection(trial, "", "context_limit", steps_left_out=left_out)
        else:
            asks[position] = (ids, left_out)
    order = list(asks)
    for first in range(0, len(order), settings.batch_size):
        batch = order[first: first + settings.batch_size]
        keys = [("reflection", position) for position in batch]
        responses = sampler.sample(keys, [asks[position][0] for position in batch], with_logprobs=False,
                                   seeds=[reflection_seed(chains[position].trials[-1].seed) for position in batch],
                                   temperature=settings.reflection_temperature, top_p=1.0,
                                   max_new_tokens=settings.reflection_tokens)
        for key in keys:
            sampler.release(key)
        for position, response in zip(batch, responses):
            raw = " ".join(policy.tokenizer.decode(response.token_ids, skip_special_tokens=True).split())
            text, cut = _fit(policy.tokenizer, raw, cap)
            written[position] = Reflection(trial, text, response.finish, cut_to_fit=cut,
                                           steps_left_out=asks[position][1])
    return [written[position] for position in range(len(chains))]


def play_chains(policy: Policy, pool: EpisodePool, task: str, variations: Sequence[int], rollout: RolloutConfig,
                settings: ReflexionSettings, *, seed: int, purpose: str, episodes_per_variation: int, reflect: bool,
                sampler: EpisodeSampler | None = None, progress: bool = False,
                first_trials: Sequence[Trajectory] | None = None) -> list[Chain]:
    """The chains of ``variations`` (``episodes_per_variation`` each), trial by trial at
    ``rollout``'s temperature: trial k of chain (v, i) is drawn from ``episode_seed(seed, purpose,
    k, v, i)``; with ``reflect``, each failed trial but the last gets a reflection that the chain's
    later trials are shown (the newest ``settings.shown``); without, none is written (the control).
    ``first_trials`` (one per chain, in order) stand for trial 1 instead of playing it: the control
    takes the other arm's, which are the same episodes (no reflection yet, the same seeds; checked)."""
    settings.validate()
    sampler = sampler or episode_sampler(policy, rollout)
    cap = reflection_cap(policy.tokenizer, task, rollout, settings) if reflect else settings.reflection_tokens
    chains = [Chain(variation, index) for variation in variations for index in range(episodes_per_variation)]
    groups = {variation: group for group, variation in enumerate(variations)}
    for trial in range(1, settings.trials + 1):
        playing = [chain for chain in chains if not chain.solved]
        if not playing:
            break
        specs = [EpisodeSpec(task, chain.variation, groups[chain.variation],
                             seed=episode_seed(seed, purpose, trial, chain.variation, chain.index),
                             reflections=chain.shown(settings.shown) if reflect else ())
                 for chain in playing]
        if trial == 1 and first_trials is not None:
            if [trajectory.seed for trajectory in first_trials] != [spec.seed for spec in specs]:
                raise ValueError("first_trials: not the trial-1 episodes of these chains (other seeds)")
            played = list(first_trials)
        else:
            played = collect_rollouts(policy, pool, specs, rollout, progress=progress, sampler=sampler)
        for chain, trajectory in zip(playing, played):
            chain.trials.append(trajectory)
        failed = [chain for chain in playing if not chain.solved]
        if reflect and trial < settings.trials and failed:
            for chain, reflection in zip(failed, write_reflections(policy, sampler, failed, settings, rollout, cap)):
                chain.reflections.append(reflection)
    return chains


def _compact(trajectories: Sequence[Trajectory]) -> dict[str, Any]:
    summary = summarize(trajectories)
    return {"episodes": summary.episodes, "return_mean": summary.return_mean, "success_rate": summary.success_rate,
            "end_reasons": summary.end_reasons}


def arm_record(chains: Sequence[Chain], trials: int) -> dict[str, Any]:
    """One arm's results: ``best_of_k`` (each chain's best trial), ``trial_1``, ``last_trial``
    (each chain's last played trial), each an evaluation record; ``trials``: per trial (1..K), the
    chains that played it and how they did; ``solved_at``: chains by the trial that solved them."""
    per_trial = [[chain.trials[k] for chain in chains if len(chain.trials) > k] for k in range(trials)]
    solved_at = collections.Counter(str(len(chain.trials)) for chain in chains if chain.solved)
    return {"best_of_k": summarize([chain.best() for chain in chains]).evaluation_record(),
            "trial_1": summarize([chain.trials[0] for chain in chains]).evaluation_record(),
            "last_trial": summarize([chain.trials[-1] for chain in chains]).evaluation_record(),
            "trials": [{"trial": k + 1, **_compact(played)} for k, played in enumerate(per_trial)],
            "solved_at": dict(sorted(solved_at.items())),
            "episodes_played": sum(len(chain.trials) for chain in chains)}


def reflection_counts(chains: Sequence[Chain]) -> dict[str, int]:
    """How the reflections went: written (non-empty), empty, stopped at the token cap, cut to fit
    the context, not written (context, no steps), and prompts whose transcript lost steps."""
    every = [reflection for chain in chains for reflection in chain.reflections]
    return {"asked": len(every), "written": sum(bool(r.text) for r in every),
            "empty": sum(not r.text and r.finish not in ("context_limit", "no_steps") for r in every),
            "at_cap": sum(r.finish == "length" for r in every), "cut_to_fit": sum(r.cut_to_fit for r in every),
            "not_written_context": sum(r.finish == "context_limit" for r in every),
            "no_steps": sum(r.finish == "no_steps" for r in every),
            "transcripts_cut": sum(r.steps_left_out > 0 for r in every)}


def reflexion(policy: Policy, pool: EpisodePool, task: Task, rollout: RolloutConfig, settings: ReflexionSettings, *,
              split: str, seed: int, temperature: float, episodes_per_variation: int, control: bool = True,
              sampler: EpisodeSampler | None = None, progress: bool = False) -> dict[str, Any]:
    """The Reflexion baseline on ``split`` of ``task`` and, with ``control``, the same chains with
    the reflections withheld. The row's return, success rate, per-variation values and end reasons
    are the best of K (``measure`` says so); ``trial_1``, ``last_trial``, ``trials`` (per trial,
    ``len == K``), ``reflections`` (``reflection_counts``), ``control`` and the settings beside."""
    check_choice("split", split, EVAL_SPLITS)
    settings.validate()
    warn_if_context_is_short(policy.tokenizer, task.name, rollout, with_tips=False)
    config = replace(rollout, temperature=temperature)
    sampler = sampler or episode_sampler(policy, config)
    variations = task.eval_variations(split)
    common = {"seed": seed, "purpose": f"reflexion-{split}", "episodes_per_variation": episodes_per_variation,
              "sampler": sampler, "progress": progress}
    chains = play_chains(policy, pool, task.name, variations, config, settings, reflect=True, **common)
    arm = arm_record(chains, settings.trials)
    row = {"task": task.name, "split": split, "seed": seed, "episodes_per_variation": episodes_per_variation,
           "measure": f"best of {settings.trials} trials", **arm.pop("best_of_k"), **arm,
           "reflections": reflection_counts(chains), **settings.row()}
    if control:
        withheld = play_chains(policy, pool, task.name, variations, config, settings, reflect=False,
                               first_trials=[chain.trials[0] for chain in chains], **common)
        row["control"] = {"measure": f"best of {settings.trials} trials, reflections withheld",
                          **arm_record(withheld, settings.trials)}
    return row

"""Lock-step multi-turn rollouts: B task variations x N episodes, batched sampling, exact tokens.

One wave plays up to ``pool.size`` episodes at once. At every step all running episodes are
sampled in one batch (the with-tips view is what the model sees), the first line of each response
goes to its environment, and the observations come back as the next user messages. Episodes that
end drop out of the batch; an environment failure ends only its own episode (``env_failure``,
never trained on).

Memory hooks in through ``retrieve``: called with a :class:`RetrievalQuery` at every step, it
returns the tips for that state, best first (``TipMemory.tips_for``: BM25 over the tip memory).
The tips are shown as a block in front of that step's user message, at that step only: later
prompts hold the episode's tip-free history and their own block. So every step can show the
paper's top 10 whole (the block budget ``tip_block_tokens`` is checked to fit ``top_k`` full-length
tips), where blocks kept in the chat would cost ~1.6k tokens a step. The price: the with-tips view
is no longer one sequence (a step's prompt is the tip-free history plus its block), so on-policy
updates with tips read one sample per step that showed tips; the KV cache recomputes the previous
turn each step (its block removed). The official code keeps the blocks in the chat with a 16k
prompt budget; docs/deviations.md records the choice.

Novelty: the observations reached at one lock-step step are scored together, against the visit
counts from before the step (``Novelty.score_step``).

History: the paper keeps the whole episode in the chat (``history_window=None``), packed as one
sequence per trajectory and view. ``history_window=k`` shows the first turn (the task) and the last k
turns, and records one sample per turn.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


from empo2_lite import prompts
from empo2_lite.config import ConfigError, MemoryConfig, RolloutConfig
from empo2_lite.env.episode import EpisodeFailure, EpisodeStart, StepResult
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.env.spec import environment_of
from empo2_lite.policy.loading import Policy
from empo2_lite.memory.tips import write_tips
from empo2_lite.policy.samplers import EpisodeSampler, episode_sampler
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.progress import progress_bar
from empo2_lite.seeding import episode_seed, step_seed
from empo2_lite.tasks import step_cap
from empo2_lite.trajectory import (ChatTokens, TokenSample, Trajectory, Turn, append_history, assistant_content,
                                  played)


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpisodeSpec:
    """Which episode to play, which GRPO group it belongs to, and the seed its tokens are drawn from."""

    task: str
    variation: int
    group_id: int
    seed: int
    """``seeding.episode_seed`` of what the episode is for; its steps and tip draw from seeds derived
    from it, so it samples the same tokens whichever wave, slot or batch plays it."""
    reflections: tuple[tuple[int, str], ...] = ()
    """(trial number, text) of the reflections its first message shows (Reflexion's later trials,
    ``baselines/reflexion.py``; ``prompts.reflection_block``); none in every other episode."""


def episode_specs(task: str, variations: Sequence[int], episodes_per_variation: int, *, run_seed: int, purpose: str,
                  iteration: int) -> list[EpisodeSpec]:
    """``episodes_per_variation`` episodes of each variation, one GRPO group per variation (its
    position in ``variations``), each seeded by what it is (``seeding.episode_seed``)."""
    return [EpisodeSpec(task, variation, group_id=group,
                        seed=episode_seed(run_seed, purpose, iteration, variation, index))
            for group, variation in enumerate(variations) for index in range(episodes_per_variation)]


@dataclass(frozen=True)
class RetrievalQuery:
    """What a memory sees when asked for tips at one step."""

    task: str
    variation: int
    step: int
    history: str
    """The episode so far as plain text: the first observation, then "> action" and the
    observation it led to, newest last (no rules, examples or tips)."""


@dataclass(frozen=True)
class StepState:
    """The state an episode's next action is chosen in, as ``collect_rollouts`` hands it to its
    ``observe`` hook just before sampling (Retrospex's critic scores candidate actions in it)."""

    rollout_id: int
    step: int
    """Actions taken so far (0 before the first)."""
    task_description: str
    observation: str
    """The latest observation (the first one before any action)."""


Retriever = Callable[[RetrievalQuery], Sequence[str]]
NoveltyFn = Callable[[Sequence[tuple[str, int, str]]], list[float]]
"""Maps the (task, variation, observation) of every episode's step t to its novelty reward
(``Novelty`` is one: it scores them all against the counts from before step t; ``pay_novelty``)."""
class _Episode:
    """The state of one running episode: its two chat views and its record."""

    def __init__(self, policy: Policy, spec: EpisodeSpec, rollout_id: int, start: EpisodeStart, config: RolloutConfig):
        self.config = config
        self.tokenizer = policy.tokenizer
        self.trajectory = Trajectory(spec.task, spec.variation, spec.group_id, rollout_id, seed=spec.seed,
                                     start_score=start.score, score=start.score)
        self.environment = environment_of(spec.task)
        demos = self.environment.demonstrations(spec.task, spec.variation, config.demonstrations) if config.demonstrations else []
        self.pending_message = self.environment.first_message(start, demos, spec.reflections)
        self.trajectory.task_description = start.task_description
        self.pending_tips: tuple[str, ...] = ()
        self.pending_dropped = 0
        self.history_text = start.observation.strip()
        self.observation = start.observation
        if config.history_window is None:
            self.chat = ChatTokens(self.tokenizer, self.environment.system_prompt)
            """The tip-free chat: the without-tips view, and the history under every step's block."""
            self.tip_samples: list[TokenSample] = []
            """One sample per step that showed tips: its prompt with the block, its response."""
            self.tip_spans: list[tuple[int, int, int]] = []
            """Where the responses of those steps lie in the tip-free chat's sample, and their steps."""

    def state(self) -> StepState:
        return StepState(self.trajectory.rollout_id, len(self.trajectory.turns), self.trajectory.task_description,
                         self.observation)

    def query(self) -> RetrievalQuery:
        return RetrievalQuery(self.trajectory.task, self.trajectory.variation, len(self.trajectory.turns), self.history_text)

    def next_prompt(self, tips: Sequence[str]) -> list[int]:
        """Open the next user turn (tip-free in the chat); return the prompt the model is fed: the
        tip-free history and this message with this step's block."""
        self.pending_tips = self._tips_to_show(tips)
        self.pending_dropped = len(dict.fromkeys(tips)) - len(self.pending_tips)
        message_with = prompts.with_tips(self.pending_message, self.pending_tips)
        if self.config.history_window is None:
            prompt = self.chat.peek_user_turn(message_with) if self.pending_tips else None
            without = self.chat.add_user_turn(self.pending_message)
            return prompt or without
        return self._window_ids(current=message_with)

    def _tips_to_show(self, tips: Sequence[str]) -> tuple[str, ...]:
        """The retrieved tips (best first, each once), as many as fit this step's block budget."""
        chosen: list[str] = []
        for tip in dict.fromkeys(tips):
            if self._block_tokens([*chosen, tip]) <= self.config.tip_block_tokens:
                chosen.append(tip)
        return tuple(chosen)

    def _block_tokens(self, tips: Sequence[str]) -> int:
        return len(self.tokenizer(prompts.tip_block(tips), add_special_tokens=False).input_ids)

    def _window_ids(self, current: str) -> list[int]:
        """Prompt ids of the first turn, the last ``history_window`` turns (tip-free) and the current message."""
        messages = [{"role": "system", "content": self.environment.system_prompt}]
        turns = self.trajectory.turns
        for turn in turns[:1] + turns[max(1, len(turns) - self.config.history_window):]:
            messages += [{"role": "user", "content": turn.user_message},
                         {"role": "assistant", "content": assistant_content(turn.response_text, self.tokenizer)}]
        messages.append({"role": "user", "content": current})
        return self.tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)

    def record(self, prompt_with: list[int], response: SampledResponse, result: StepResult, computed: int) -> None:
        """Store the step in both views and in the turn list."""
        step = len(self.trajectory.turns)
        if self.config.history_window is None:
            start = len(self.chat.sample.input_ids)
            self.chat.add_response(response.token_ids, response.text, response.logprobs)
            if self.pending_tips:
                self.tip_samples.append(_turn_sample(prompt_with, response, step))
                self.tip_spans.append((start, len(self.chat.sample.input_ids), step))
        else:
            prompt_without = self._window_ids(current=self.pending_message)
            self.trajectory.with_tips.append(_turn_sample(prompt_with, response, step))
            self.trajectory.without_tips.append(_turn_sample(prompt_without, response, step))
        self.trajectory.turns.append(Turn(
            user_message=self.pending_message, tips=self.pending_tips, response_ids=response.token_ids,
            logprobs=response.logprobs, response_text=response.text, raw_action=result.raw_action,
            action=result.action, reward=result.reward, score=result.score, finish=response.finish,
            history=self.history_text, observation=result.observation, prompt_tokens=len(prompt_with),
            prompt_tokens_computed=computed, tips_dropped=self.pending_dropped,
            corrected=bool(result.info.get("corrected", False))))
        self.trajectory.score = result.score
        self.pending_message = prompts.step_user_message(result.observation)
        self.trajectory.final_observation = self.observation = result.observation
        self.history_text = append_history(self.history_text, result.action, result.observation)

    def finish(self, end_reason: str, result: StepResult | None = None, error: str | None = None) -> Trajectory:
        trajectory = self.trajectory
        if self.config.history_window is None:
            packed = self.chat.sample
            rest = _without_actions(packed, self.tip_spans)
            trajectory.with_tips = ([rest] if any(rest.action_mask) else []) + self.tip_samples
            trajectory.without_tips, trajectory.tip_free_chat = [packed], self.chat
        trajectory.end_reason, trajectory.error = end_reason, error
        trajectory.final_message = self.pending_message
        if result is not None:
            trajectory.success, trajectory.final_info = result.success, dict(result.info)
        return trajectory


def _turn_sample(prompt: list[int], response: SampledResponse, step: int) -> TokenSample:
    """Step ``step`` as a training sample: its prompt, then its response (the action tokens)."""
    sample = TokenSample()
    sample.extend(prompt, is_action=False)
    sample.extend(response.token_ids, is_action=True, logprobs=response.logprobs, step=step)
    return sample


def _without_actions(sample: TokenSample, spans: Sequence[tuple[int, int, int]]) -> TokenSample:
    """A copy of ``sample`` whose action tokens inside ``spans`` (start, end, step) are context (no
    loss): their steps are trained from their own with-tips samples."""
    mask = list(sample.action_mask)
    for start, end, _ in spans:
        mask[start:end] = [0] * (end - start)
    moved = {step for _, _, step in spans}
    return TokenSample(list(sample.input_ids), mask, list(sample.old_logprobs),
                       [step for step in sample.steps if step not in moved])


def action_text(response: SampledResponse, tokenizer) -> str:
    """What goes to the environment: the first line of the response, special tokens removed."""
    text = tokenizer.decode(response.token_ids, skip_special_tokens=True)
    return text.split("\n", 1)[0].strip() if text.strip() else text


def collect_rollouts(
    policy: Policy,
    pool: EpisodePool,
    specs: Sequence[EpisodeSpec],
    config: RolloutConfig | None = None,
    retrieve: Retriever | None = None,
    progress: bool = True,
    sampler: EpisodeSampler | None = None,
    tips: MemoryConfig | None = None,
    timings: dict[str, float] | None = None,
    observe: Callable[[StepState], None] | None = None,
) -> list[Trajectory]:
    """Play every episode in ``specs`` (in waves of ``pool.size``) and return their trajectories.

    ``sampler`` samples the actions and tips (the trainer passes the one it keeps and tells of
    every optimiser step; tests pass scripted ones); by default one is built for this call, with
    the config's temperature, top-p and token limit, by the engine ``config.engine`` names
    (``policy/samplers.episode_sampler``). Novelty is not paid here: ``pay_novelty`` pays it once
every episode of an iteration is played (the trainer, after gathering every rank's). With ``tips``, the policy writes each played episode's tip
    (``Trajectory.tip``) once its wave is over, extending the episode's own cache, and only then
    are the wave's caches freed; the seconds spent go to ``timings["tips"]``. ``observe`` is told
    every running episode's state just before its action is sampled.
    """
    config = config or RolloutConfig()
    config.validate()
    episodes = sampler or episode_sampler(policy, config)
    trajectories: list[Trajectory] = []
    bar = progress_bar(total=len(specs), desc="rollouts", unit="episode", disable=not progress, leave=False, inner=True)
    for first in range(0, len(specs), pool.size):
        wave = _play_wave(policy, pool, list(specs[first: first + pool.size]), first, config, retrieve, episodes,
                          release_at_end=tips is None, observe=observe)
        if tips is not None:
            began = time.perf_counter()
            finished = played(wave)
            for trajectory, tip in zip(finished, write_tips(policy, finished, tips, sampler=episodes)):
                trajectory.tip, trajectory.tip_finish = tip.text, tip.finish
            for trajectory in wave:
                trajectory.kv_cache_peak_bytes = episodes.release(trajectory.rollout_id)
            if timings is not None:
                timings["tips"] = timings.get("tips", 0.0) + time.perf_counter() - began
        trajectories += wave
        bar.update(len(wave))
    bar.close()
    return trajectories


def pay_novelty(trajectories: Sequence[Trajectory], novelty: NoveltyFn) -> None:
    """Set every turn's ``novelty``: step t of every episode (in ``rollout_id`` order) is scored
    against the counts from before step t, for t = 0, 1, ...

    Scored once, after the last wave, rather than wave by wave: with fewer environments than
    episodes the waves run one after another, and a second wave scored after the first would be
    paid less for the same states (eight identical episodes on four environments got sums of 3 and
    0.6), which GRPO turns into advantages from wave position alone. Scored step index by step
    index, every episode's step t counts as reached at the same moment, whichever wave played it,
    so the rewards do not depend on ``n_envs``. Episodes that ended early, or were later lost to an
    environment failure, still count the states they reached. Not part of the ``rewards`` phase:
    that phase is pure (a notebook re-runs it), and scoring adds visits to the counts.
    """
    ordered = sorted(trajectories, key=lambda trajectory: trajectory.rollout_id)
    for step in range(max((len(trajectory.turns) for trajectory in ordered), default=0)):
        reached = [trajectory for trajectory in ordered if len(trajectory.turns) > step]
        rewards = novelty([(trajectory.task, trajectory.variation, trajectory.turns[step].observation)
                           for trajectory in reached])
        for trajectory, reward in zip(reached, rewards):
            trajectory.turns[step].novelty = reward


def _play_wave(policy: Policy, pool: EpisodePool, wave: list[EpisodeSpec], first_id: int, config: RolloutConfig,
               retrieve: Retriever | None, sampler: EpisodeSampler, release_at_end: bool,
               observe: Callable[[StepState], None] | None = None) -> list[Trajectory]:
    """One lock-step wave: every episode of ``wave`` on its own pool slot. An episode that ends
    frees its cache at once when ``release_at_end`` (else the caller does, after the tips)."""
    starts = pool.reset([(spec.task, spec.variation) for spec in wave], max_steps=config.max_steps)
    finished: dict[int, Trajectory] = {}
    running: dict[int, _Episode] = {}
    for slot, (spec, start) in enumerate(zip(wave, starts)):
        if isinstance(start, EpisodeFailure):
            finished[slot] = Trajectory(spec.task, spec.variation, spec.group_id, first_id + slot, seed=spec.seed,
                                        end_reason="env_failure", error=start.error)
        else:
            running[slot] = _Episode(policy, spec, first_id + slot, start, config)

    def end(slot: int, trajectory: Trajectory) -> None:
        finished[slot] = trajectory
        if release_at_end:
            trajectory.kv_cache_peak_bytes = sampler.release(trajectory.rollout_id)

    while pool.active:
        slots = pool.active
        prompts_with = {}
        for slot in slots:
            episode = running[slot]
            prompt = episode.next_prompt(retrieve(episode.query()) if retrieve else ())
            if len(prompt) + config.max_new_tokens > config.max_context_tokens:
                pool.abandon(slot)
                end(slot, episode.finish("context_limit"))
                continue
            prompts_with[slot] = prompt
        if not prompts_with:
            continue
        order = list(prompts_with)
        if observe is not None:
            for slot in order:
                observe(running[slot].state())
        keys = [running[slot].trajectory.rollout_id for slot in order]
        seeds = [step_seed(running[slot].trajectory.seed, len(running[slot].trajectory.turns)) for slot in order]
        responses = sampler.sample(keys, [prompts_with[s] for s in order], seeds=seeds)
        by_slot = dict(zip(order, responses))
        computed = {slot: sampler.last_computed.get(key, 0) for slot, key in zip(order, keys)}
        results = pool.step({slot: action_text(by_slot[slot], policy.tokenizer) for slot in order})
        for slot, result in results.items():
            episode = running[slot]
            if isinstance(result, EpisodeFailure):
                end(slot, episode.finish("env_failure", error=result.error))
                continue
            episode.record(prompts_with[slot], by_slot[slot], result, computed[slot])
            if result.done:
                end(slot, episode.finish(result.info["end_reason"], result))
    return [finished[slot] for slot in range(len(wave))]


OBSERVATION_TOKENS_P90 = 113
"""90th percentile of the length of a ScienceWorld observation in SmolLM2 tokens, over the
observations along the demonstration (gold) paths of the 18 tasks (measured 2026-11-26; mean 25,
maximum 281: ``look around`` in a full room)."""


def worst_case_prompt_tokens(tokenizer, task: str, config: RolloutConfig, steps: int,
                             observation_tokens: int = OBSERVATION_TOKENS_P90, with_tips: bool = True) -> int:
    """Tokens of the longest prompt a memory episode (``with_tips``, else a tip-free one) of
    ``steps`` steps can reach, plus its reply.

    What it adds up: the system prompt and the first user message with its demonstrations (the
    longest of the task's), then every step with an observation of ``observation_tokens`` tokens
    and a reply of ``max_new_tokens`` tokens, then the last step's tip block at its budget (each step
    shows only its own), then the last reply. Observations longer than the allowance on
    every step could still end an episode with ``context_limit``; that is reported, not hidden.
    """
    filler = " ".join(["word"] * observation_tokens)
    reply = " ".join(["go"] * config.max_new_tokens)
    environment = environment_of(task)
    demos = environment.demonstrations(task, -1, 3)
    longest = sorted(demos, key=lambda demo: len(prompts.format_demonstration(1, demo)), reverse=True)
    start = EpisodeStart(task, -1, filler, max((d.task_description for d in demos), key=len, default=task), steps, 0,
                         info={name: filler for name in environment.start_fields})
    first = environment.first_message(start, longest[: config.demonstrations], ())
    messages = [{"role": "system", "content": environment.system_prompt}, {"role": "user", "content": first}]
    for _ in range(steps - 1):
        messages += [{"role": "assistant", "content": reply}, {"role": "user", "content": prompts.step_user_message(filler)}]
    chat = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=False)
    tips = config.tip_block_tokens if with_tips else 0  # one block: each step shows only its own
    return len(chat) + tips + config.max_new_tokens


def check_tip_block_fits(tokenizer, task: str, config: RolloutConfig) -> None:
    """Refuse, in one line, settings whose tip block is what pushes a full-length episode past
    ``max_context_tokens``: such a run would lose exactly its memory steps to ``context_limit``.
    (When even the tip-free episode does not fit, ``warn_if_context_is_short`` says so: a known
    limit of long tasks, reported in the end reasons.)"""
    steps = config.max_steps or step_cap(task, default=30)
    with_block = worst_case_prompt_tokens(tokenizer, task, config, steps, with_tips=True)
    without = worst_case_prompt_tokens(tokenizer, task, config, steps, with_tips=False)
    if without <= config.max_context_tokens < with_block:
        raise ConfigError(f"rollout.max_context_tokens: {config.max_context_tokens} is too small for memory rollouts of "
                          f"{task}: a {steps}-step episode with a full tip block (rollout.tip_block_tokens="
                          f"{config.tip_block_tokens}) may need ~{with_block}; raise it to at least {with_block}, or "
                          "lower rollout.tip_block_tokens with memory.top_k")


def warn_if_context_is_short(tokenizer, task: str, config: RolloutConfig, with_tips: bool = True) -> None:
    """Say before playing, in one line, when an episode of the task's full length (with tips, or
    without) may not fit the context: it would then end with ``context_limit``, counted in the end
    reasons of the metrics and of every evaluation row. Training, evaluation and the baselines all
    say it, since all of them play such episodes."""
    steps = config.max_steps or step_cap(task, default=30)
    need = worst_case_prompt_tokens(tokenizer, task, config, steps, with_tips=with_tips)
    if need > config.max_context_tokens:
        logger.warning("%s: a %d-step episode%s may need ~%d tokens but rollout.max_context_tokens is %d; "
                       "long episodes may end with context_limit (raise it if memory allows)",
                       task, steps, " with tips" if with_tips else "", need, config.max_context_tokens)

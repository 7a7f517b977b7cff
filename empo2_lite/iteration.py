"""One training iteration as named phases over one batch record.

    choose (mode, variations) -> collect (rollouts; tips written per wave) -> store tips
    -> rewards (extrinsic + novelty) -> advantages (one per action) -> training samples
    -> old log-probs -> update -> metrics

Each phase is a function that reads and fills an ``IterationBatch``, so a notebook can run them one
at a time and look at the batch between any two (notebook 01 does); ``Trainer.run_iteration``
chains them and adds what belongs to a run: writing metrics, periodic evaluation, checkpoints.
What the phases need is passed in (policy, pool, memory, novelty counts, sampler, generator), so
each can be changed or replaced on its own: a new advantage estimator is a function in
``algo/estimators.py``'s table and an algorithm-table entry, and no phase changes.

Data-parallel training (``distributed.py``) passes a ``World`` to ``collect``, ``old_logprobs``,
``update`` and ``learn``: a rank plays its block of groups, everything after the gather runs on the
global batch, and only a rank's own episodes get log-probs and gradients. The default world is the
single process, for which nothing changes.
"""

from __future__ import annotations

import random
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from empo2_lite.algo.advantages import ActionAdvantages, trajectory_returns
from empo2_lite.algo.algorithms import algorithm
from empo2_lite.algo.estimators import ESTIMATORS
from empo2_lite.algo.modes import Mode, UpdateViews, draw_mode, update_views
from empo2_lite.algo.update import TrainSample, copy_old_logprobs, recompute_old_logprobs, update_policy
from empo2_lite.config import TrainConfig
from empo2_lite.distributed import SINGLE, World
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.memory import Novelty, TipMemory
from empo2_lite.policy.loading import Policy
from empo2_lite.policy.samplers import EpisodeSampler
from empo2_lite.rollout import collect_rollouts, episode_specs, pay_novelty
from empo2_lite.summary import BatchSummary, summarize
from empo2_lite.tasks import Task
from empo2_lite.trajectory import TokenSample, Trajectory, played


@dataclass
class IterationBatch:
    """What one iteration has drawn, played and computed so far; each phase fills its part."""

    iteration: int
    mode: Mode
    variations: list[int]
    """The train variations played, one GRPO group each."""
    slot_entries: list[int]
    """Memory entries in each variation's slot when it was drawn."""
    trajectories: list[Trajectory] = field(default_factory=list)
    """Every episode, environment failures included (``played`` leaves those out)."""
    returns: torch.Tensor | None = None
    """One return per played trajectory (``rewards``)."""
    advantages: list[list[float]] = field(default_factory=list)
    """Per played trajectory, one advantage per step (``advantages``)."""
    views: UpdateViews | None = None
    """Which view the update reads and which one its old log-probs are computed on: derived from
    the mode once, by ``training_samples``, and read by ``old_logprobs``."""
    samples: list[TrainSample] = field(default_factory=list)
    """The token samples the update reads, each with one advantage per response: copies of the
    trajectories' samples of the update's view, whose old log-probs ``old_logprobs`` fills."""
    sample_episodes: list[int] = field(default_factory=list)
    """For each of ``samples``, the index of its episode in ``played``."""
    update: dict[str, float] = field(default_factory=dict)
    """The update's metrics (empty when nothing was played)."""
    logprob_gap: float | None = None
    """Mean |recorded - recomputed| old log-prob of the sampled tokens (``old_logprobs``; None
    where not measured)."""
    times: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("rollout", "tips", "memory", "old_logprobs", "update"), 0.0))
    own_rollouts: range | None = None
    """The rollout ids this process played (``collect``): all of them in one process, one rank's
    block of groups under data parallelism, where the others' episodes arrive gathered."""

    def owned(self) -> list[bool]:
        """For each played trajectory, whether this process computes its log-probs and gradients."""
        return [self.own_rollouts is None or trajectory.rollout_id in self.own_rollouts for trajectory in self.played]

    @property
    def played(self) -> list[Trajectory]:
        """The trajectories that are trained on and written to memory (no environment failures)."""
        return played(self.trajectories)


def choose(rng: random.Random, config: TrainConfig, memory: TipMemory, task: Task, iteration: int) -> IterationBatch:
    """Draw the iteration's mode, then its variations (``draw_variations``), from ``rng``."""
    mode = draw_mode(rng, config.p, config.q, off_policy=config.use_off_policy,
                     on_policy_with_tips=config.use_on_policy_with_tips)
    variations = draw_variations(rng, config, memory, task, mode.uses_memory)
    return IterationBatch(iteration, mode, variations, [memory.slot_size(task.name, v) for v in variations])


def draw_variations(rng: random.Random, config: TrainConfig, memory: TipMemory, task: Task,
                    uses_memory: bool) -> list[int]:
    """The train variations of this iteration (one GRPO group each).

    The whole order is drawn every iteration, so the random stream advances alike in every
    mode. A plain iteration takes the first ``variations_per_iteration`` of it. A memory
    iteration with ``memory_draw == "filled"`` takes variations whose memory slot holds tips
    first (in the drawn order): memory is kept per variation, and drawing 1 of 5 variations
    uniformly found an empty slot in most memory iterations of the shipped cpu-learn runs."""
    order = rng.sample(task.train_variations, len(task.train_variations))
    if uses_memory and config.memory_draw == "filled":
        order.sort(key=lambda variation: memory.slot_size(task.name, variation) == 0)
    return order[: config.variations_per_iteration]


def collect(batch: IterationBatch, policy: Policy, pool: EpisodePool, config: TrainConfig, task: Task,
            memory: TipMemory, novelty: Novelty, sampler: EpisodeSampler, world: World = SINGLE) -> None:
    """Play ``group_size`` seeded episodes of each variation: with tips retrieved in memory modes,
    novelty scored when it is paid, each episode's tip written after its wave when tips are kept.
    Retrieval time is counted as memory time, tip writing as tips time, the rest as rollout time.

    Data-parallel, this rank plays its block of the groups (``World.block``) and the trajectories
    of all ranks are then gathered in global episode order; novelty is paid after the gather, over
    all of them, so every rank's visit counts (and rewards) are the one-process ones."""
    specs = episode_specs(task.name, batch.variations, config.group_size, run_seed=config.seed, purpose="train",
                          iteration=batch.iteration)
    groups = world.block(len(batch.variations))
    own = [spec for spec in specs if spec.group_id in groups]
    first = groups.start * config.group_size
    batch.own_rollouts = range(first, first + len(own))

    def retrieve(query):
        began = time.perf_counter()
        tips = memory.tips_for(query)
        batch.times["memory"] += time.perf_counter() - began
        return tips

    began = time.perf_counter()
    mine = collect_rollouts(policy, pool, own, config.rollout, retrieve=retrieve if batch.mode.uses_memory else None,
                            progress=False, sampler=sampler, tips=config.memory if config.write_tips else None,
                            timings=batch.times)
    for trajectory in mine:
        trajectory.rollout_id += first  # numbered in the global batch
    batch.trajectories = world.gather(mine, "the rollout phase")
    if config.memory.novelty_coef > 0:
        pay_novelty(batch.trajectories, novelty)
    batch.times["rollout"] = time.perf_counter() - began - batch.times["tips"] - batch.times["memory"]


def store_tips(batch: IterationBatch, memory: TipMemory, config: TrainConfig) -> None:
    """Add each played episode's tip to the memory (when the algorithm writes tips)."""
    if not config.write_tips:
        return
    began = time.perf_counter()
    for trajectory in batch.played:
        memory.add_episode(trajectory, trajectory.tip, iteration=batch.iteration, run_id=config.name)
    batch.times["memory"] += time.perf_counter() - began


def aggregate_novelty(trajectory: Trajectory, aggregation: str) -> float:
    """The novelty term of one episode's return: the sum (the paper) or the mean of its per-step
    rewards (bounded by 1, so long episodes cannot outweigh partial scores)."""
    rewards = [turn.novelty for turn in trajectory.turns]
    if not rewards:
        return 0.0
    return sum(rewards) if aggregation == "sum" else sum(rewards) / len(rewards)


def rewards(batch: IterationBatch, config: TrainConfig) -> None:
    """Each played episode's return: scaled final score + novelty coefficient x its novelty term."""
    novelty_terms = torch.tensor([aggregate_novelty(t, config.memory.novelty_aggregation) for t in batch.played])
    batch.returns = trajectory_returns(torch.tensor([t.score for t in batch.played]), novelty_terms,
                                       config.memory.novelty_coef, config.reward_scale)


def advantages(batch: IterationBatch, config: TrainConfig) -> None:
    """One advantage per step of each played episode, by the algorithm's estimator (which reads its
    own settings from ``config``)."""
    estimator = ESTIMATORS[algorithm(config.algo).advantage]
    batch.advantages = estimator(batch.played, batch.returns, config)


def training_samples(batch: IterationBatch, config: TrainConfig) -> None:
    """The samples of the view the mode's update reads (``batch.views``, derived here once), each
    response with its step's advantage. Copies: the trajectories keep their records, and the batch's
    samples get their old log-probs from ``old_logprobs`` explicitly."""
    batch.views = update_views(batch.mode, config.off_policy_old_logprob)
    owned = [(episode, sample) for episode, trajectory in enumerate(batch.played)
             for sample in trajectory.view(batch.views.current_with_tips)]
    batch.samples = [TrainSample(sample.copy(), tuple(batch.advantages[episode][step] for step in sample.steps))
                     for episode, sample in owned]
    batch.sample_episodes = [episode for episode, _ in owned]


def old_logprobs(batch: IterationBatch, policy: Policy, config: TrainConfig, world: World = SINGLE) -> None:
    """Recompute the old log-prob of every sampled token with the update's own forward pass, on the
    view the mode defines them on (``modes.update_views``), before the first optimiser step, so
    the sampler's numerics never enter the PPO ratio. The mean distance from the recorded values
    is ``diagnostics/logprob_gap`` where that view is the one the tokens were sampled with (not in
    off-policy iterations with the tip-free old log-probs: there the tips' effect would be counted
    too); the time is ``time/old_logprobs``. The values are written into the records of that view
    (and copied by episode step into the other view's where the two differ), then explicitly into
    the batch's samples, which the update reads. Data-parallel, a rank recomputes (and fills) those
    of its own episodes only, the ones it computes gradients for."""
    if batch.views is None:
        raise RuntimeError("old_logprobs: run the training_samples phase first (it fixes the batch's views)")
    began = time.perf_counter()
    views = batch.views
    owned = batch.owned()
    mine = [trajectory for trajectory, own in zip(batch.played, owned) if own]
    scored = [sample for trajectory in mine for sample in trajectory.view(views.old_with_tips)]
    gaps = recompute_old_logprobs(policy, scored, config.update, temperature=config.logprob_temperature)
    if views.old_with_tips != views.current_with_tips:
        for trajectory in mine:
            copy_old_logprobs(trajectory.view(views.old_with_tips), trajectory.view(views.current_with_tips))
    by_episode: dict[int, list[TokenSample]] = {}
    for item, episode in zip(batch.samples, batch.sample_episodes):
        if owned[episode]:
            by_episode.setdefault(episode, []).append(item.sample)
    for episode, samples in by_episode.items():
        copy_old_logprobs(batch.played[episode].view(views.old_with_tips), samples)
    sampled_view = views.old_with_tips or not batch.mode.uses_memory
    if world.size > 1:  # the mean over every rank's tokens
        total, count = world.sum_(torch.tensor([sum(gaps), len(gaps)], dtype=torch.float64, device=policy.device),
                                  "the old log-probs").tolist()
        batch.logprob_gap = total / count if count and sampled_view else None
    else:
        batch.logprob_gap = sum(gaps) / len(gaps) if gaps and sampled_view else None
    batch.times["old_logprobs"] = time.perf_counter() - began


def update(batch: IterationBatch, policy: Policy, optimizer: torch.optim.Optimizer, config: TrainConfig,
           on_step: Callable[[], None] | None = None, world: World = SINGLE) -> None:
    """The PPO update over the batch's samples, shuffled by a generator seeded by (run seed,
    iteration); ``on_step`` is called after every optimiser step (the sampler's weights hook).
    Data-parallel, every rank cuts the same mini-batches of the global batch and computes its own
    samples' gradients (``update_policy``)."""
    owned = batch.owned()
    batch.update = update_policy(policy, optimizer, batch.samples, config.update,
                                 temperature=config.logprob_temperature,
                                 generator=torch.Generator().manual_seed(config.seed * 100_003 + batch.iteration),
                                 on_step=on_step, world=world,
                                 owned=[owned[episode] for episode in batch.sample_episodes] if world.size > 1 else None)


def learn(batch: IterationBatch, policy: Policy, optimizer: torch.optim.Optimizer, config: TrainConfig,
          on_step: Callable[[], None] | None = None, world: World = SINGLE) -> None:
    """rewards -> advantages -> training samples -> old log-probs -> update, timed as the update
    (the old log-probs' recompute apart); nothing to learn when every episode was lost to the environment."""
    began = time.perf_counter()
    if batch.played:
        rewards(batch, config)
        advantages(batch, config)
        training_samples(batch, config)
        old_logprobs(batch, policy, config, world)
        update(batch, policy, optimizer, config, on_step, world)
    batch.times["update"] = time.perf_counter() - began - batch.times["old_logprobs"]


def chart_metrics(summary: BatchSummary) -> dict:
    """The ``charts/`` and ``episodes/`` metrics of an iteration. An iteration whose every episode
    was lost to the environment reports returns of 0 rather than nan, so the curves stay drawn."""
    empty = summary.episodes == 0
    return {
        "charts/return_mean": 0 if empty else summary.return_mean,
        "charts/return_std": 0.0 if empty else summary.return_std,
        "charts/return_max": 0 if empty else summary.return_max,
        "charts/success_rate": summary.success_rate,
        "charts/novelty_mean": summary.novelty_mean,
        "charts/steps_mean": summary.steps_mean,
        "charts/tips_shown_mean": summary.tips_shown_mean,
        "charts/env_failures": summary.env_failures,
        **{f"episodes/end_{reason}": count for reason, count in summary.end_reasons.items()},
        "diagnostics/response_tokens_mean": summary.response_tokens_mean,
        "diagnostics/length_limit_share": summary.length_limit_share,
        "diagnostics/actions_as_written": summary.actions_as_written,
        **summary.extra_metrics(),
    }


def equal_return_group_share(returns: torch.Tensor, group_ids: torch.Tensor) -> float:
    """Share of GRPO groups of two or more episodes whose returns are all equal: their advantages
    are all zero, so they carry no gradient. A share near 1 explains a flat learning curve (every
    episode of a variation ends the same way). A lone episode is not such a group (its advantage
    is its return, ``grpo_advantages``); 0 when there are no groups."""
    groups = group_ids.unique()
    if len(groups) == 0:
        return 0.0
    equal = 0
    for group in groups:
        values = returns[group_ids == group]
        equal += len(values) > 1 and bool((values == values[0]).all())
    return equal / len(groups)


def metrics(batch: IterationBatch, memory: TipMemory) -> dict:
    """The iteration's row of ``metrics.jsonl``: returns and episodes, the update's losses, tokens,
    phase times and the memory's state. The advantage estimator's own diagnostics follow the
    algorithm's (``advantages.ActionAdvantages``): GiGPO's ``diagnostics/step_group_share``, logged
    by the algorithms that use it (GRPO's rows keep their keys); absent in an iteration that played
    no episode, whose advantages were never estimated."""
    summary = summarize(batch.trajectories)
    group_ids = torch.tensor([t.group_id for t in batch.played])
    update_metrics = batch.update
    estimator_diagnostics = batch.advantages.diagnostics if isinstance(batch.advantages, ActionAdvantages) else {}
    return {
        "iteration": batch.iteration,
        "mode": batch.mode.value,
        **chart_metrics(summary),
        **({"diagnostics/logprob_gap": batch.logprob_gap} if batch.logprob_gap is not None else {}),
        "diagnostics/equal_return_groups": (equal_return_group_share(batch.returns, group_ids)
                                            if batch.returns is not None else 0.0),
        **{f"diagnostics/{name}": value for name, value in estimator_diagnostics.items()},
        **{f"losses/{key}": value for key, value in update_metrics.items()
           if key not in ("tokens", "skipped_steps", "optimizer_steps")},
        "losses/skipped_steps": update_metrics.get("skipped_steps", 0.0),
        "update/optimizer_steps": update_metrics.get("optimizer_steps", 0),
        "tokens/update": update_metrics.get("tokens", 0.0),
        "tokens/generated": summary.tokens_generated,
        "tokens/prefilled": summary.tokens_prefilled,
        "tokens/prefill_computed": summary.tokens_prefill_computed,
        **{f"time/{phase}": round(seconds, 3) for phase, seconds in batch.times.items()},
        "memory/entries": len(memory),
        "memory/tips_truncated": sum(t.tip_finish == "length" for t in batch.trajectories),
        "memory/tips_skipped_context": sum(t.tip_finish == "context_limit" for t in batch.trajectories),
        "memory/tip_block_share": summary.tip_block_share,
        "memory/tips_dropped_budget": summary.tips_dropped_budget,
        "memory/slot_entries": sum(batch.slot_entries),
        "memory/filled_slot_share": sum(entries > 0 for entries in batch.slot_entries) / len(batch.slot_entries),
        "memory/kv_cache_peak_mb": summary.kv_cache_peak_bytes / 2**20,
        "memory/peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "memory/peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0,
    }

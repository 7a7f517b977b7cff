"""The EMPO² training loop, one iteration readable top to bottom.

    draw the mode -> rollouts (tips retrieved in memory modes; novelty in every mode; each
    episode's tip written from its own KV cache at the end of its wave) -> tips stored
    -> GRPO advantages -> update on the mode's view -> metrics, evaluation, checkpoint

GRPO is the same loop without memory and without the intrinsic reward: p = 0, no tip writing, no
memory file, novelty coefficient 0 (``config.ALGO_SETTINGS``); novelty is then not even
computed. How this departs from the paper: LoRA instead of full
fine-tuning, one GPU (or CPU) instead of 8 x A100, BM25 tip retrieval, the state-novelty reward
in every mode; see docs/deviations.md for the full list. Commands::

    python -m empo2_lite train --preset cpu-smoke --task find-animal --algo empo2
    python -m empo2_lite train --preset gpu-24gb --task power-component --algo grpo --iterations 50
    python -m empo2_lite train --resume <run name>
"""

from __future__ import annotations

import logging
import random
import resource
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from empo2_lite.algo.advantages import grpo_advantages, trajectory_returns
from empo2_lite.algo.modes import draw_mode, update_views
from empo2_lite.algo.update import TrainSample, recompute_old_logprobs, update_policy
from empo2_lite.config import ConfigError, MemoryConfig, TrainConfig, run_format_error
from empo2_lite.env.pool import EnvPool
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.evaluation import evaluate
from empo2_lite.memory import Novelty, TipMemory
from empo2_lite.policy import load_policy
from empo2_lite.rollout import (Sampler, check_tip_block_fits, collect_rollouts, episode_specs,
                                warn_if_context_is_short)
from empo2_lite.runs import RunDir
from empo2_lite.summary import BatchSummary, summarize
from empo2_lite.tasks import get_task
from empo2_lite.trajectory import Trajectory

logger = logging.getLogger(__name__)


def aggregate_novelty(trajectory: Trajectory, aggregation: str) -> float:
    """The novelty term of one episode's return: the sum (the paper) or the mean of its per-step
    rewards (bounded by 1, so long episodes cannot outweigh partial scores)."""
    rewards = [turn.novelty for turn in trajectory.turns]
    if not rewards:
        return 0.0
    return sum(rewards) if aggregation == "sum" else sum(rewards) / len(rewards)


def open_for_resume(run: RunDir, memory_config: MemoryConfig) -> tuple[Path, TipMemory]:
    """The checkpoint to resume ``run`` from, and its memory, with the run's files rewound to that
    checkpoint. Everything that can stop a resume is checked here, before the model loads (minutes
    for a real one): a folder of an older config format (its settings meant something else; its
    results stay readable), no checkpoint, a damaged memory file."""
    error = run_format_error(run.config(), str(run.path))
    if error is not None:
        raise error
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"--resume: run folder {run.path} has no checkpoint to resume from")
    run.rewind_to(checkpoint)
    return checkpoint, TipMemory.load(run.memory_path, memory_config)


def chart_metrics(summary: BatchSummary) -> dict:
    """The ``charts/`` and ``episodes/`` metrics of an iteration. An iteration whose every episode
    was lost to the environment reports returns of 0 rather than nan, so the curves stay drawn."""
    empty = summary.episodes == 0
    return {
        "charts/return_mean": 0 if empty else summary.return_mean,
        "charts/return_std": 0.0 if empty else summary.return_std,
        "charts/return_max": 0 if empty else summary.return_max,
        "charts/success_rate": summary.success_rate,
        "charts/success_official_rate": summary.success_official_rate,
        "charts/novelty_mean": summary.novelty_mean,
        "charts/steps_mean": summary.steps_mean,
        "charts/tips_shown_mean": summary.tips_shown_mean,
        "charts/env_failures": summary.env_failures,
        **{f"episodes/end_{reason}": count for reason, count in summary.end_reasons.items()},
        "diagnostics/wrong_focus_share": summary.wrong_focus_share,
        "diagnostics/response_tokens_mean": summary.response_tokens_mean,
        "diagnostics/length_limit_share": summary.length_limit_share,
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


class Trainer:
    """Owns the policy, optimiser, memory, novelty counts and RNGs of one run."""

    def __init__(self, config: TrainConfig, run: RunDir, resume: bool = False) -> None:
        config.validate()
        if resume:
            checkpoint, memory = open_for_resume(run, config.memory)
        elif run.latest_checkpoint() is not None:
            raise ConfigError(f"name: run folder {run.path} already has checkpoints; resume it or choose another name")
        self.config, self.run = config, run
        self.task = get_task(config.task)
        # Seed before loading: the LoRA A matrices are drawn at random when the adapter is made,
        # and unseeded they depended on whatever had used torch's generator before (import order).
        torch.manual_seed(config.seed)
        self.policy = load_policy(config.policy, config.rollout, tips=config.memory if config.write_tips else None)
        if not self.policy.has_adapter:
            raise ConfigError("policy.lora_rank: 0 is not allowed for training; the kit trains a LoRA adapter (> 0)")
        if config.p > 0:
            check_tip_block_fits(self.policy.tokenizer, config.task, config.rollout)
        warn_if_context_is_short(self.policy.tokenizer, config.task, config.rollout, with_tips=config.p > 0)
        self.sampler: Sampler | None = None
        """Replaces the policy's sampling of the training rollouts' actions, so that tests can
        script the episodes of a replay pool (``tests/replay_pool.py``); it is set after loading
        because a scripted sampler needs the policy's tokenizer. Tips and evaluation episodes are
        still sampled from the policy."""
        self.optimizer = torch.optim.AdamW(self.policy.trainable_parameters(), lr=config.update.learning_rate)
        self.rng = random.Random(config.seed)
        torch.manual_seed(config.seed)  # sampling starts from the seed, as before the adapter was drawn
        self.novelty = Novelty(config.memory.novelty_threshold)
        self.iteration = 0
        if resume:
            self._restore(checkpoint)
        else:
            run.start(config)
            memory = TipMemory.load(run.memory_path, config.memory)
        self.memory = memory

    # -- the loop -------------------------------------------------------------------------------
    def train(self, progress: bool = True, pool: EpisodePool | None = None) -> list[dict]:
        """Run the remaining iterations; return their metrics.

        The episodes are played on ``pool`` when given (its owner closes it: tests pass a pool that
        replays recorded transitions, with no Java), else on ``config.n_envs`` ScienceWorld JVMs
        opened for this call and closed after it.
        """
        history = []
        opened = nullcontext(pool) if pool is not None else EnvPool(self.config.n_envs, self.config.env)
        with opened as pool:
            bar = tqdm(range(self.iteration, self.config.iterations), desc=self.config.algo,
                       unit="iter", disable=not progress, initial=self.iteration, total=self.config.iterations)
            for _ in bar:
                metrics = self.run_iteration(pool)
                history.append(metrics)
                bar.set_postfix(ret=f"{metrics['charts/return_mean']:.1f}", mode=metrics["mode"])
        self.run.close()
        return history

    def run_iteration(self, pool: EpisodePool) -> dict:
        """One iteration (see the module docstring); writes metrics and maybe a checkpoint."""
        config, it = self.config, self.iteration
        times: dict[str, float] = {"rollout": 0.0, "tips": 0.0, "memory": 0.0, "update": 0.0}
        mode = draw_mode(self.rng, config.p, config.q, off_policy=config.use_off_policy,
                         on_policy_with_tips=config.use_on_policy_with_tips)
        variations = self.draw_variations(mode.uses_memory)
        slot_entries = [self.memory.slot_size(self.task.name, variation) for variation in variations]
        specs = episode_specs(self.task.name, variations, config.group_size, run_seed=config.seed, purpose="train",
                              iteration=it)

        retrieval_seconds = 0.0

        def retrieve(query):
            nonlocal retrieval_seconds
            began = time.perf_counter()
            tips = self.memory.tips_for(query)
            retrieval_seconds += time.perf_counter() - began
            return tips

        began = time.perf_counter()
        trajectories = collect_rollouts(self.policy, pool, specs, config.rollout,
                                        retrieve=retrieve if mode.uses_memory else None,
                                        novelty=self.novelty if config.memory.novelty_coef > 0 else None,
                                        progress=False, sampler=self.sampler,
                                        tips=config.memory if config.write_tips else None, timings=times)
        times["rollout"] = time.perf_counter() - began - times["tips"]  # tips are written per wave, inside
        played = [t for t in trajectories if t.end_reason != "env_failure"]

        if config.write_tips:
            began = time.perf_counter()
            for trajectory in played:
                self.memory.add_episode(trajectory, trajectory.tip, iteration=it, run_id=config.name)
            times["memory"] = time.perf_counter() - began + retrieval_seconds

        began = time.perf_counter()
        update_metrics = {}
        equal_share = 0.0
        if played:
            novelty_terms = torch.tensor([aggregate_novelty(t, config.memory.novelty_aggregation) for t in played])
            returns = trajectory_returns(torch.tensor([t.score for t in played]), novelty_terms,
                                         config.memory.novelty_coef, config.reward_scale)
            group_ids = torch.tensor([t.group_id for t in played])
            advantages = grpo_advantages(returns, group_ids)
            equal_share = equal_return_group_share(returns, group_ids)
            views = update_views(mode, config.off_policy_old_logprob)
            batch = [TrainSample(sample, float(advantage)) for t, advantage in zip(played, advantages)
                     for sample in t.view(views.current_with_tips)]
            if views.recompute_old_without_tips:
                recompute_old_logprobs(self.policy, [item.sample for item in batch], config.update,
                                       temperature=config.logprob_temperature)
            update_metrics = update_policy(self.policy, self.optimizer, batch, config.update,
                                           temperature=config.logprob_temperature,
                                           generator=torch.Generator().manual_seed(config.seed * 100_003 + it))
        times["update"] = time.perf_counter() - began

        summary = summarize(trajectories)
        metrics = {
            "iteration": it,
            "mode": mode.value,
            **chart_metrics(summary),
            "diagnostics/equal_return_groups": equal_share,
            **{f"losses/{key}": value for key, value in update_metrics.items()
               if key not in ("tokens", "skipped_steps", "optimizer_steps")},
            "losses/skipped_steps": update_metrics.get("skipped_steps", 0.0),
            "update/optimizer_steps": update_metrics.get("optimizer_steps", 0),
            "tokens/update": update_metrics.get("tokens", 0.0),
            "tokens/generated": summary.tokens_generated,
            "tokens/prefilled": summary.tokens_prefilled,
            "tokens/prefill_computed": summary.tokens_prefill_computed,
            **{f"time/{phase}": round(seconds, 3) for phase, seconds in times.items()},
            "memory/entries": len(self.memory),
            "memory/tips_truncated": sum(t.tip_finish == "length" for t in trajectories),
            "memory/tips_skipped_context": sum(t.tip_finish == "context_limit" for t in trajectories),
            "memory/tip_block_share": summary.tip_block_share,
            "memory/tips_dropped_budget": summary.tips_dropped_budget,
            "memory/slot_entries": sum(slot_entries),
            "memory/filled_slot_share": sum(entries > 0 for entries in slot_entries) / len(slot_entries),
            "memory/kv_cache_peak_mb": summary.kv_cache_peak_bytes / 2**20,
            "memory/peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "memory/peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else 0.0,
        }
        self.run.append_metrics(metrics)
        self.run.log_scalars(it, metrics)
        self.iteration = it + 1
        if config.eval_every and self.iteration % config.eval_every == 0:
            result = evaluate(self.policy, pool, self.task, config.rollout, split="dev", seed=config.seed,
                              iteration=self.iteration, temperature=config.eval_temperature,
                              episodes_per_variation=config.eval_episodes_per_variation, warn_short_context=False)
            self.run.append_eval({"iteration": self.iteration, "kind": "periodic", **result})
        if self.iteration % config.checkpoint_every == 0 or self.iteration == config.iterations:
            self.save_checkpoint()
        return metrics

    def draw_variations(self, uses_memory: bool) -> list[int]:
        """The train variations of this iteration (one GRPO group each).

        The whole order is drawn every iteration, so the random stream advances alike in every
        mode. A plain iteration takes the first ``variations_per_iteration`` of it. A memory
        iteration with ``memory_draw == "filled"`` takes variations whose memory slot holds tips
        first (in the drawn order): memory is kept per variation, and drawing 1 of 5 variations
        uniformly found an empty slot in most memory iterations of the shipped cpu-learn runs."""
        order = self.rng.sample(self.task.train_variations, len(self.task.train_variations))
        if uses_memory and self.config.memory_draw == "filled":
            order.sort(key=lambda variation: self.memory.slot_size(self.task.name, variation) == 0)
        return order[: self.config.variations_per_iteration]

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Everything needed to continue exactly here (the memory file is cut back on resume)."""
        from peft import get_peft_model_state_dict

        version, internal, gauss = self.rng.getstate()
        state = {"python_rng": [version, list(internal), gauss],
                 "torch_rng": torch.get_rng_state().tolist(),
                 "novelty": self.novelty.to_json()}
        self.run.save_checkpoint(self.iteration, get_peft_model_state_dict(self.policy.model),
                                 self.optimizer.state_dict(), state)

    def _restore(self, checkpoint: Path) -> None:
        """Continue exactly where ``checkpoint`` left off: weights, optimizer, RNGs, novelty counts
        (the files were rewound to it by ``open_for_resume``)."""
        from peft import set_peft_model_state_dict

        adapter, optimizer_state, state = self.run.read_checkpoint(checkpoint)
        set_peft_model_state_dict(self.policy.model, adapter)
        self.optimizer.load_state_dict(optimizer_state)
        version, internal, gauss = state["python_rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        torch.set_rng_state(torch.tensor(state["torch_rng"], dtype=torch.uint8))
        self.novelty = Novelty.from_json(state["novelty"])
        self.iteration = state["iteration"]

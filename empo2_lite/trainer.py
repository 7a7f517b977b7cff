"""The EMPO² training loop: a run's state, and its iterations as a short chain of phases.

    choose -> collect -> store tips -> learn (rewards, advantages, samples, old log-probs, update)
    -> metrics -> (dev evaluation) -> checkpoint

The phases live in ``iteration.py`` (one function each, over one ``IterationBatch``); this module
owns what persists between iterations: the policy, optimiser, sampler, memory, novelty counts and
random generators, and the run folder. What an algorithm is (its advantage estimator, memory
rollouts, tips and novelty) is the algorithm table's (``algo/algorithms.py``): GRPO is the same
loop with p = 0, no tip writing and no novelty (then novelty is not even computed). How this
departs from the paper: LoRA instead of full fine-tuning, one GPU (or CPU, or N GPUs data-parallel under
torchrun: ``distributed.py``) instead of 8 x A100,
BM25 tip retrieval, the state-novelty reward in every mode; see docs/deviations.md. Commands::

    python -m empo2_lite train --preset cpu-smoke --task find-animal --algo empo2
    python -m empo2_lite train --preset gpu-24gb --task power-component --algo grpo --iterations 50
    python -m empo2_lite train --resume <run name>
"""

from __future__ import annotations

import logging
import random
from contextlib import nullcontext
from pathlib import Path

import torch

from empo2_lite import iteration as phases
from empo2_lite.config import ConfigError, MemoryConfig, TrainConfig, run_format_error
from empo2_lite.distributed import SINGLE, World, check_world_fits, current_world
from empo2_lite.env.pool import open_pool
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.evaluation import evaluate
from empo2_lite.memory import Novelty, TipMemory
from empo2_lite.policy import load_policy
from empo2_lite.policy.samplers import EpisodeSampler, episode_sampler
from empo2_lite.progress import progress_bar
from empo2_lite.rollout import check_tip_block_fits, warn_if_context_is_short
from empo2_lite.runs import RunDir
from empo2_lite.tasks import get_task
from empo2_lite.transitions import step_rows

logger = logging.getLogger(__name__)


def open_for_resume(run: RunDir, memory_config: MemoryConfig, world: World = SINGLE) -> tuple[Path, TipMemory]:
    """The checkpoint to resume ``run`` from, and its memory, with the run's files rewound to that
    checkpoint. Everything that can stop a resume is checked here, before the model loads (minutes
    for a real one): a folder of an older config format (its settings meant something else; its
    results stay readable), no checkpoint, a damaged memory file, another number of ranks (the
    checkpoint holds one torch random stream per rank). Data-parallel, every rank checks (alike:
    nothing has been written yet), rank 0 rewinds, and the others read the memory after it did,
    into a memory that writes no file."""
    error = run_format_error(run.config(), str(run.path))
    if error is not None:
        raise error
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"--resume: run folder {run.path} has no checkpoint to resume from")
    ranks = run.checkpoint_state(checkpoint).get("world_size", 1)
    if ranks != world.size:
        raise ConfigError(f"--nproc_per_node: run {run.path.name!r} was trained on {ranks} rank(s), not {world.size}; "
                          f"resume it with {ranks} (its checkpoints hold one random stream per rank)")
    if world.writes:
        run.rewind_to(checkpoint)
        memory = TipMemory.load(run.memory_path, memory_config)
    world.barrier("the resume")
    if not world.writes:
        memory = TipMemory.load(run.memory_path, memory_config)
        memory.path = None
    return checkpoint, memory


class Trainer:
    """Owns the policy, optimiser, memory, novelty counts and RNGs of one run."""

    def __init__(self, config: TrainConfig, run: RunDir, resume: bool = False, world: World | None = None) -> None:
        config.validate()
        world = current_world() if world is None else world
        if world.size > 1:
            check_world_fits(config.variations_per_iteration, config.group_size, config.n_envs, world.size)
            world.barrier("the run folder's checks")  # every rank has read the folder before rank 0 writes
        if resume:
            checkpoint, memory = open_for_resume(run, config.memory, world)
        elif run.latest_checkpoint() is not None:
            raise ConfigError(f"name: run folder {run.path} already has checkpoints; resume it or choose another name")
        self.config, self.run = config, run
        self.world = world
        """This process's rank among the data-parallel ones (``distributed.py``); rank 0 alone
        writes the run folder."""
        self.task = get_task(config.task)
        # Seed before loading: the LoRA A matrices are drawn at random when the adapter is made,
        # and unseeded they depended on whatever had used torch's generator before (import order).
        torch.manual_seed(config.seed)
        self.policy = load_policy(config.policy, config.rollout, tips=config.memory if config.write_tips else None)
        if not self.policy.has_adapter:
            raise ConfigError("policy.lora_rank: 0 is not allowed for training; the kit trains a LoRA adapter (> 0)")
        # The same seed draws the same adapter on every rank; rank 0's is sent anyway, so that ranks
        # on unlike devices (whose random kernels may differ) start from one set of weights.
        world.broadcast_tensors(self.policy.trainable_parameters(), "the adapter's first weights")
        if config.p > 0:
            check_tip_block_fits(self.policy.tokenizer, config.task, config.rollout)
        warn_if_context_is_short(self.policy.tokenizer, config.task, config.rollout, with_tips=config.p > 0)
        self.sampler: EpisodeSampler = episode_sampler(self.policy, config.rollout)
        """Samples the training rollouts' actions and tips; told after every optimiser step that
        the weights changed. Tests replace it with a scripted one (``tests/scripted.py``).
        Evaluation episodes are sampled by a sampler of their own, at the evaluation temperature."""
        self.optimizer = torch.optim.AdamW(self.policy.trainable_parameters(), lr=config.update.learning_rate)
        self.rng = random.Random(config.seed)
        torch.manual_seed(config.seed)  # sampling starts from the seed, as before the adapter was drawn
        self.novelty = Novelty(config.memory.novelty_threshold)
        self.iteration = 0
        if resume:
            self._restore(checkpoint)
        elif world.writes:
            run.start(config)
            memory = TipMemory.load(run.memory_path, config.memory)
        else:
            memory = TipMemory(config.memory)  # the same entries as rank 0's, written by rank 0 alone
        world.barrier("the run's start")
        self.memory = memory

    # -- the loop -------------------------------------------------------------------------------
    def train(self, progress: bool = True, pool: EpisodePool | None = None) -> list[dict]:
        """Run the remaining iterations; return their metrics.

        The episodes are played on ``pool`` when given (its owner closes it: tests pass a pool that
        replays recorded transitions, with no Java), else on ``config.n_envs`` ScienceWorld JVMs
        opened for this call and closed after it.
        """
        history = []
        opened = nullcontext(pool) if pool is not None else open_pool(None, self.config.n_envs, self.config.env)
        with opened as pool:
            bar = progress_bar(range(self.iteration, self.config.iterations), desc=self.config.algo,
                       unit="iter", disable=not progress or not self.world.writes, initial=self.iteration,
                       total=self.config.iterations)
            for _ in bar:
                metrics = self.run_iteration(pool)
                history.append(metrics)
                bar.set_postfix(ret=f"{metrics['charts/return_mean']:.1f}", mode=metrics["mode"])
        self.run.close()
        return history

    def run_iteration(self, pool: EpisodePool) -> dict:
        """One iteration (``iteration.py``'s phases in order); writes metrics and maybe a checkpoint."""
        config = self.config
        world = self.world
        batch = phases.choose(self.rng, config, self.memory, self.task, self.iteration)
        phases.collect(batch, self.policy, pool, config, self.task, self.memory, self.novelty, self.sampler, world)
        phases.store_tips(batch, self.memory, config)
        phases.learn(batch, self.policy, self.optimizer, config, on_step=self.sampler.weights_changed, world=world)
        metrics = phases.metrics(batch, self.memory)
        if world.writes:
            self.run.append_steps(step_rows(batch.trajectories, batch.iteration))
            self.run.append_metrics(metrics)
            self.run.log_scalars(batch.iteration, metrics)
        self.iteration = batch.iteration + 1
        if config.eval_every and self.iteration % config.eval_every == 0:
            result = evaluate(self.policy, pool, self.task, config.rollout, split="dev", seed=config.seed,
                              iteration=self.iteration, temperature=config.eval_temperature,
                              episodes_per_variation=config.eval_episodes_per_variation, warn_short_context=False,
                              world=world)
            if world.writes:
                self.run.append_eval({"iteration": self.iteration, "kind": "periodic", **result})
        if self.iteration % config.checkpoint_every == 0 or self.iteration == config.iterations:
            self.save_checkpoint()
        return metrics

    # -- checkpoints ----------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Everything needed to continue exactly here (the memory file is cut back on resume).
        Data-parallel, rank 0 writes it with every rank's torch random stream; the rest (weights,
        optimiser, Python generator, novelty counts) is the same on every rank."""
        from peft import get_peft_model_state_dict

        version, internal, gauss = self.rng.getstate()
        state = {"python_rng": [version, list(internal), gauss],
                 "torch_rng": torch.get_rng_state().tolist(),
                 "novelty": self.novelty.to_json()}
        if self.world.size > 1:
            state["world_size"] = self.world.size
            state["torch_rng_by_rank"] = self.world.gather([state["torch_rng"]], "the checkpoint")
        if self.world.writes:
            self.run.save_checkpoint(self.iteration, get_peft_model_state_dict(self.policy.model),
                                     self.optimizer.state_dict(), state)

    def _restore(self, checkpoint: Path) -> None:
        """Continue exactly where ``checkpoint`` left off: weights, optimizer, RNGs, novelty counts
        (the files were rewound to it by ``open_for_resume``)."""
        from peft import set_peft_model_state_dict

        adapter, optimizer_state, state = self.run.read_checkpoint(checkpoint)
        self.policy.for_training()  # never load into merged weights
        set_peft_model_state_dict(self.policy.model, adapter)
        self.optimizer.load_state_dict(optimizer_state)
        version, internal, gauss = state["python_rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        own_stream = state["torch_rng_by_rank"][self.world.rank] if self.world.size > 1 else state["torch_rng"]
        torch.set_rng_state(torch.tensor(own_stream, dtype=torch.uint8))
        self.novelty = Novelty.from_json(state["novelty"])
        self.iteration = state["iteration"]

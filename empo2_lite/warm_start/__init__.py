"""A warm start for small models: behaviour cloning on gold trajectories of a task's train split.

Why (a deviation from the paper, docs/deviations.md): the paper starts RL from Qwen2.5-7B-Instruct,
which writes ScienceWorld's commands zero-shot. The kit's embedded SmolLM2-135M-Instruct does not:
untrained, it writes sentences that the action correction maps to the closest valid action, so
RL reinforces the correction's choices more than the model's own. A short supervised start on the
train split's gold paths first teaches it the command language. No preset uses it by default (the
GPU presets follow the paper); ``policy.init_adapter`` or ``train --from WARM_RUN`` opts in, and
``eval --baseline warm-start --from WARM_RUN`` plays the warm start alone, so that a study shows what
RL adds on top of it.

What it does (``job.warm_start``)::

    python -m empo2_lite warm-start --preset cpu-learn --task find-non-living-thing

1. ``record.gold_paths``: ScienceWorld's gold action sequence of each chosen train variation,
   played through the kit's adapter; the actions it executed are kept, for the paths that solve
   the variation (score 100).
2. ``record.record_demonstrations``: each path played again through ``rollout.collect_rollouts``
   with a sampler that answers with the path's next action (``record.GoldSampler``), so every
   sample is rendered exactly as a rollout renders an episode: the same system prompt, first
   message with its demonstrations, step messages, packed token ids and action mask.
3. ``cloning.clone``: cross-entropy on the action tokens only (the rollout's action mask), one
   optimiser step per episode, the LoRA adapter alone trained, a progress bar over the steps.
4. The run folder (``RunDir``): ``config.json`` (the preset's config; ``iterations`` = epochs,
   ``update.learning_rate`` = the warm start's), ``metrics.jsonl`` (the loss curve, one row per
   epoch), ``checkpoints/`` (the adapter) and ``warm_start.json`` (the variations and actions seen,
   the settings, the minutes it took).

This module is torch-free: the command line checks the settings with it before loading a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from empo2_lite.config import ConfigError, check_integer, check_positive
from empo2_lite.tasks import Task

DEFAULT_VARIATIONS = 10
"""Train variations cloned by default: enough rooms and objects for the model to learn the shape
of the commands (open door, go to, focus on, move ... to) rather than one layout, few enough that
cloning takes minutes on a CPU and leaves RL something to learn. Measured with
``benchmarks/warm_start.py`` (find-non-living-thing, 10-step cap, 20 dev episodes at 0.4;
docs/warm-start-2026-12-07.json): untrained 0 of 20 solved, none of its actions executed as
written; 3 variations 1 of 20 (0.59 as written); 10 variations 5 of 20 (0.72); 30 variations 7 of
20 (0.51). Ten make the model act and leave three quarters of dev unsolved."""
DEFAULT_EPOCHS = 3
"""Passes over the recorded episodes: one pass of ten episodes moves a LoRA adapter little; many
passes make the model copy the few paths it saw, room for room."""
DEFAULT_LEARNING_RATE = 5e-4
"""AdamW learning rate of the LoRA parameters: above RL's 1e-5 (30 optimiser steps in all, on
exact targets), below cpu-learn's 1e-3 (tuned for noisy RL advantages on 5-step episodes)."""


@dataclass(frozen=True)
class WarmStartSettings:
    """What a warm start clones and how long."""

    variations: int = DEFAULT_VARIATIONS
    """How many train variations are cloned (``clone_variations`` says which)."""
    epochs: int = DEFAULT_EPOCHS
    """Passes over the recorded episodes."""
    learning_rate: float = DEFAULT_LEARNING_RATE
    """AdamW learning rate of the LoRA parameters."""
    seed: int = 0
    """Seeds the adapter's initialisation and the order of the episodes in every epoch."""

    def validate(self) -> None:
        """Raise ConfigError naming the first unusable setting."""
        check_integer("--variations", self.variations, minimum=1)
        check_integer("--epochs", self.epochs, minimum=1)
        check_positive("--lr", self.learning_rate)
        check_integer("--seed", self.seed, minimum=0)

    def row(self) -> dict:
        """The settings as JSON fields."""
        return asdict(self)


def clone_variations(task: Task, count: int) -> tuple[int, ...]:
    """The train variations a warm start of ``count`` clones: the train ids after the ones RL trains
    on (``task.train_variations``), in order. RL's own variations stay unseen, so what RL then gains
    on them is its own; dev and test variations are never used."""
    rl = set(task.train_variations)
    free = [variation for variation in task.split_ids("train") if variation not in rl]
    if count > len(free):
        raise ConfigError(f"--variations: {count} is not allowed for {task.name}; it has {len(free)} train variations "
                          f"besides the {len(rl)} RL trains on, so choose 1..{len(free)}")
    return tuple(free[:count])


def check_train_only(task: Task, variations: Sequence[int], learner: str = "a warm start") -> None:
    """Refuse any variation outside the train split, in one line: dev chooses settings and test
    reports results, so neither may be learnt from (by ``learner``: a warm start, a critic)."""
    train = task.split_ids("train")
    for variation in variations:
        if variation not in train:
            where = next((f"a {name}" for name in ("dev", "test") if variation in task.split_ids(name)), "not a")
            raise ConfigError(f"variations: {variation} is {where} variation of {task.name}; {learner} learns "
                              f"from train variations only ({train.start}..{train.stop - 1})")

"""The training run's configuration: one dataclass tree around the method's own knobs.

``TrainConfig`` groups the settings by topic (``env``, ``policy``, ``rollout``, ``memory``,
``update``, see ``sections.py``) around EMPO²'s knobs (p, q, group size, ...). It validates the
run-level fields and asks each section to validate itself.

One field per fact: the update scores actions at the temperature the rollouts sampled them with,
so that temperature is derived (``logprob_temperature``), not a second setting; the evaluation
temperature is ``eval_temperature`` and nothing else.

``config.json`` carries ``format_version``. A file written by an older version of the kit is read
(and migrated) for looking at results; training or resuming from it is refused with a one-line
message, because some of its settings meant something else then (``run_format_error``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from empo2_lite.config.checks import ConfigError, check_choice, check_fraction, check_integer, check_positive
from empo2_lite.config.sections import (EnvConfig, MemoryConfig, PolicyConfig, RolloutConfig, UpdateConfig,
                                       tip_block_needs)
from empo2_lite.tasks import UnknownTaskError, get_task

ALGOS = ("empo2", "grpo")
BASELINES = ("naive", "memory-only")
"""The paper's untrained baselines: the base model as is, and the base model with a growing tip memory."""
OFF_POLICY_OLD_LOGPROBS = ("with_tips", "without_tips")
MEMORY_DRAWS = ("filled", "uniform")
FORMAT_VERSION = 3
"""Version 2 (2026-11-26): GRPO without novelty and tips (``write_tips``), mini-batches counted in
actions (``update.mini_batch_actions``), ``eval_episodes_per_variation``; no ``update.temperature``.
Version 3 (2026-12-04): tokens drawn from per-episode seeds, periodic evaluations on the dev
split, ``memory_draw`` (version 2 drew memory iterations' variations uniformly), each step's tip
block shown at its own step only (version 2 kept blocks in the chat under
``rollout.tip_episode_tokens``, dropped when read)."""


@dataclass
class TrainConfig:
    """Everything one training run needs."""

    # -- the run --
    preset: str = ""
    """The preset this config started from (reports name it beside the model)."""
    name: str = "run"
    """Run folder name under the runs root (``EMPO2_RUNS``, default ./runs)."""
    task: str = "find-animal"
    """The ScienceWorld task (one model per task, as in the paper)."""
    algo: str = "empo2"
    """"empo2" or "grpo". Choosing "grpo" (``--algo``, a grid, an override) also sets p = 0,
    ``write_tips`` off and ``memory.novelty_coef`` = 0: the paper's GRPO is the same trainer without
    memory and without the intrinsic reward. Overrides given with it still apply afterwards, which is
    how the ablations "GRPO + novelty" and "GRPO + tips written but never shown" are reached."""
    baseline: str = ""
    """"" for a trained run. "naive" or "memory-only" marks a baseline folder (``eval --baseline``):
    the preset's base model evaluated without training, this config saying with which settings;
    ``algo`` and the training settings then describe nothing that ran."""
    iterations: int = 10
    """Training iterations of the run."""
    seed: int = 0
    """Seeds the mode draws, the variation draws, sampling and the update's shuffling."""
    # -- the method --
    p: float = 0.25
    """Probability of memory rollouts in an iteration."""
    q: float = 2 / 3
    """Probability that memory rollouts are updated off-policy (tips removed)."""
    off_policy_old_logprob: str = "with_tips"
    """Old log-probs of off-policy updates: "with_tips" (paper's table) or "without_tips" (Algorithm 1)."""
    use_off_policy: bool = True
    """Ablation switch: False never updates memory rollouts off-policy."""
    use_on_policy_with_tips: bool = True
    """Ablation switch: False never updates memory rollouts with the tips kept."""
    write_tips: bool = True
    """Write a tip after every training episode and store it in the memory (EMPO²). Off in GRPO;
    on with p = 0 it is the ablation "tips written but never shown" (the cost of the memory alone)."""
    variations_per_iteration: int = 1
    """Train variations sampled per iteration (the paper: 16 tasks per iteration)."""
    memory_draw: str = "filled"
    """How a memory iteration draws its variations: "filled" takes variations whose memory slot
    holds tips first (memory is kept per variation: with 1 of 5 variations drawn uniformly, most
    memory iterations of the shipped cpu-learn runs found an empty slot and showed no tip);
    "uniform" draws as plain iterations do (the paper, whose 16 tasks per iteration fill every
    slot at once)."""
    group_size: int = 8
    """Rollouts per variation per iteration (GRPO group)."""
    reward_scale: float = 1.0
    """Multiplies the extrinsic return (scores are in [-100, 100])."""
    n_envs: int = 8
    """ScienceWorld JVMs in the pool (episodes played at once)."""
    # -- evaluation --
    eval_every: int = 0
    """Evaluate on the dev variations (no memory, at ``eval_temperature``) every k iterations; 0 = off.
    Periodic evaluations never play the test split: it is played once, by the final evaluation."""
    eval_temperature: float = 0.4
    """Sampling temperature of every evaluation: periodic, final, baselines, OOD (the paper: 0.4)."""
    eval_episodes_per_variation: int = 1
    """Episodes per test variation in every evaluation (periodic, final, memory-only and OOD). The
    official test set plays each of the first 20 test variations 4 times (GPU presets: 4; CPU: 1)."""
    checkpoint_every: int = 1
    """Save a checkpoint every k iterations (and after the last)."""
    format_version: int = FORMAT_VERSION
    """The ``config.json`` format this config was written in (older ones are migrated for reading)."""
    # -- components --
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)

    @property
    def logprob_temperature(self) -> float:
        """The temperature of every log-prob the update uses: the rollouts' (1 when they are greedy,
        as the sampler then records temperature-1 log-probs)."""
        return self.rollout.temperature if self.rollout.temperature > 0 else 1.0

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting (nothing heavy is started)."""
        check_choice("algo", self.algo, ALGOS)
        if self.baseline:
            check_choice("baseline", self.baseline, BASELINES)
        try:
            get_task(self.task)
        except UnknownTaskError as error:
            raise ConfigError(str(error)) from None
        check_fraction("p", self.p)
        check_fraction("q", self.q)
        if self.algo == "grpo" and self.p != 0:
            raise ConfigError(f"p: {self.p!r} is not allowed with algo 'grpo' (GRPO has no memory rollouts); "
                              "set p=0 or use algo 'empo2'")
        check_choice("off_policy_old_logprob", self.off_policy_old_logprob, OFF_POLICY_OLD_LOGPROBS)
        check_choice("memory_draw", self.memory_draw, MEMORY_DRAWS)
        for name in ("iterations", "variations_per_iteration", "group_size", "n_envs", "checkpoint_every",
                     "eval_episodes_per_variation"):
            check_integer(name, getattr(self, name), minimum=1)
        check_integer("eval_every", self.eval_every, minimum=0)
        check_positive("reward_scale", self.reward_scale)
        if not 0 <= self.eval_temperature <= 5:
            raise ConfigError(f"eval_temperature: {self.eval_temperature!r} is not allowed; it must be in [0, 5]")
        if not self.name or "/" in self.name:
            raise ConfigError(f"name: {self.name!r} is not allowed; use a folder name without '/'")
        for section in (self.env, self.policy, self.rollout, self.memory, self.update):
            section.validate()
        need = tip_block_needs(self.memory, self.rollout)
        if self.p > 0 and self.rollout.tip_block_tokens < need:
            raise ConfigError(f"rollout.tip_block_tokens: {self.rollout.tip_block_tokens} is not allowed with memory "
                              f"rollouts (p > 0): a block of memory.top_k={self.memory.top_k} full-length tips needs "
                              f"{need}; raise it, or lower memory.top_k or memory.tip_max_new_tokens")
        if not self.baseline and self.rollout.top_p < 1:  # baselines only evaluate
            raise ConfigError(f"rollout.top_p: {self.rollout.top_p!r} is not allowed for training; it must be 1 (the "
                              "recorded log-probs are of the untruncated distribution, so a nucleus would bias the "
                              "PPO ratio); evaluation-only baselines may use less")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """The inverse of ``to_dict`` (unknown keys are errors naming them); a file of an older
        format is migrated to what ran (``format_version`` keeps the old number)."""
        from empo2_lite.config.overrides import apply_overrides, flatten

        flat = flatten(values)
        version = flat.get("format_version", 1)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ConfigError(f"format_version: {version!r} is newer than this kit understands ({FORMAT_VERSION}); "
                              "update empo2-lite")
        if version == 1:
            flat = migrate_from_version_1(flat)
        if version <= 2:
            flat.setdefault("memory_draw", "uniform")
            flat.pop("rollout.tip_episode_tokens", None)  # blocks stayed in the chat then
        return apply_overrides(cls(), flat)


def migrate_from_version_1(flat: dict[str, Any]) -> dict[str, Any]:
    """Version 1 as what ran: GRPO then used p = 0 whatever its stored p, and every algorithm wrote
    tips and paid novelty; ``update.mini_batch_size`` (trajectories per step) and
    ``update.temperature`` (a copy of the rollout's) have no version-2 equivalent and are dropped."""
    flat = {key: value for key, value in flat.items() if key not in ("update.mini_batch_size", "update.temperature")}
    flat.setdefault("write_tips", True)
    if flat.get("algo") == "grpo":
        flat["p"] = 0.0
    return {**flat, "format_version": 1}


def run_format_error(config: TrainConfig, where: str) -> ConfigError | None:
    """The one-line refusal to train on (or resume) a run folder written in an older format."""
    if config.format_version == FORMAT_VERSION:
        return None
    return ConfigError(f"{where}: written by an older empo2-lite (config format {config.format_version}, now "
                       f"{FORMAT_VERSION}) whose settings meant something else; its results can still be plotted, but "
                       f"to train, delete the folder or choose another run name")


def config_json(config: TrainConfig) -> str:
    """``config.json`` text."""
    return json.dumps(config.to_dict(), indent=1)

"""The training run's configuration: one dataclass tree around the method's own knobs.

``TrainConfig`` groups the settings by topic (``env``, ``policy``, ``rollout``, ``memory``,
``update``, see ``sections.py``) around EMPO²'s knobs (p, q, group size, ...). It validates the
run-level fields and asks each section to validate itself.

One field per fact: the update scores actions at the temperature the rollouts sampled them with,
so that temperature is derived (``logprob_temperature``), not a second setting; the evaluation
temperature is ``eval_temperature`` and nothing else.

What an algorithm is comes from the algorithm table (``algo/algorithms.py``): ``validate`` refuses
a config that contradicts its ``algo`` (p > 0 without memory rollouts, tips written or not against
the entry, a novelty reward the entry does not pay), naming the algorithm that does what was
asked, so a config built directly, from overrides, a YAML file or a grid gets the same check.

``config.json`` carries ``format_version``. A file written by an older version of the kit is read
(and migrated, ``reading.py``) for looking at results; training or resuming from it is refused with
a one-line message, because some of its settings meant something else then (``run_format_error``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from empo2_lite.algo.algorithms import ALGORITHMS, Algorithm, algorithm
from empo2_lite.config.checks import ConfigError, check_choice, check_fraction, check_integer, check_positive
from empo2_lite.config.reading import FORMAT_VERSION, read_config
from empo2_lite.config.sections import (EnvConfig, MemoryConfig, PolicyConfig, RolloutConfig, UpdateConfig,
                                       tip_block_needs)
from empo2_lite.tasks import UnknownTaskError, get_task

ALGOS = tuple(ALGORITHMS)
"""The algorithms' names (the table's order)."""
BASELINES = ("naive", "memory-only")
"""The untrained baselines ``compare`` plays by default: the base model as is (the paper's Naive), and
the base model with EMPO²'s growing tip memory and no training (the kit's own, not Reflexion)."""
WARM_START_BASELINE = "warm-start"
"""The kit's own reference: a warm start (``warm_start/``) played without RL, so that a study
separates what the warm start does from what RL adds (``eval --baseline warm-start --from RUN``)."""
REFLEXION_BASELINE = "reflexion"
"""Reflexion (Shinn et al., 2023) as the ScienceWorld literature plays it: frozen weights, K trials
per test variation, a written reflection after each failed one (``baselines/reflexion.py``). Not in
``BASELINES``, which ``compare`` plays by default: with its control it costs up to 2K - 1 episodes
per variation and episode index."""
RETROSPEX_BASELINE = "retrospex"
"""Retrospex (Xiang et al., 2024): the frozen base model's candidate actions re-ranked by an offline
IQL critic (``baselines/retrospex.py``; ``eval --baseline retrospex --critic FOLDER``). Not in
``BASELINES``: it needs a critic trained first (``python -m empo2_lite critic``)."""
BASELINE_KINDS = (*BASELINES, REFLEXION_BASELINE, RETROSPEX_BASELINE, WARM_START_BASELINE)
"""Every kind of baseline folder (``TrainConfig.baseline``)."""
OFF_POLICY_OLD_LOGPROBS = ("with_tips", "without_tips")
MEMORY_DRAWS = ("filled", "uniform")


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
    """A name of the algorithm table (``ALGOS``): "empo2", "grpo" (the paper's: the same trainer
    without memory and without the intrinsic reward), "grpo+novelty", "grpo+tips-unseen", "gigpo"
    (GRPO's settings with GiGPO's step-level advantages) and "empo2+gigpo" (EMPO²'s with them). Choosing
    one (``--algo``, a grid, an override) sets what its entry implies (p, ``write_tips``,
    ``memory.novelty_coef``) and ``validate`` refuses settings that contradict it."""
    baseline: str = ""
    """"" for a trained run. "naive", "memory-only", "reflexion" or "warm-start" marks a baseline folder (``eval --baseline``):
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
    """ScienceWorld JVMs in the pool (episodes played at once); per rank under torchrun, where
    each rank opens its own pool for its share of the groups (``distributed.py``)."""
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
            check_choice("baseline", self.baseline, BASELINE_KINDS)
        try:
            get_task(self.task)
        except UnknownTaskError as error:
            raise ConfigError(str(error)) from None
        from empo2_lite.env.spec import environment_of  # here: the env package's start imports this one

        owner = environment_of(self.task).name
        if owner != self.env.name:
            raise ConfigError(f"env.name: {self.env.name!r} does not play task {self.task!r}, a {owner} task; set "
                              f"env.name={owner} or choose a {self.env.name} task (`tasks` lists them)")
        check_fraction("p", self.p)
        check_fraction("q", self.q)
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
        contradiction = None if self.baseline else algorithm_contradiction(self)  # a baseline trains no algorithm
        if contradiction is not None:
            raise contradiction
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
        """The inverse of ``to_dict`` (unknown keys are errors naming them), read as what ran: a file
        of an older format is migrated (``format_version`` keeps the old number) and an ablation
        stored as "grpo" is relabelled (``reading.read_config``)."""
        return read_config(cls(), values)


def algorithm_contradiction(config: TrainConfig) -> ConfigError | None:
    """The one-line error for the first setting that contradicts ``config.algo``'s table entry
    (p, then ``write_tips``, then ``memory.novelty_coef``), pointing to an algorithm that allows it."""
    entry = algorithm(config.algo)
    if config.p > 0 and not entry.memory_rollouts:
        return _refusal(config, entry, "p", config.p, "no memory rollouts")
    if config.write_tips != entry.write_tips:
        return _refusal(config, entry, "write_tips", config.write_tips,
                        "it writes a tip after every episode" if entry.write_tips else "no tips written")
    if config.memory.novelty_coef > 0 and not entry.novelty:
        return _refusal(config, entry, "memory.novelty_coef", config.memory.novelty_coef, "no novelty reward")
    return None


def _refusal(config: TrainConfig, entry: Algorithm, field_name: str, value: object, why: str) -> ConfigError:
    """'<field>: <value> is not allowed with algo '<name>' (<why>); use algo '<other>'', where the
    other algorithm allows what the config does (its tips as they are only when ``write_tips`` is the
    field refused: choosing an algorithm sets them) and, of those, keeps its advantage estimator where
    one can, then differs least from it (ties: the table's order); no hint when none does."""
    does = (config.p > 0, config.write_tips, config.memory.novelty_coef > 0)

    def allows(other: Algorithm) -> bool:
        return ((other.memory_rollouts or not does[0]) and (other.novelty or not does[2])
                and (field_name != "write_tips" or other.write_tips == does[1]))

    candidates = sorted((other for other in ALGORITHMS.values() if other is not entry and allows(other)),
                        key=lambda other: (other.advantage != entry.advantage,
                                           sum(a != b for a, b in zip(other.switches, does))))
    hint = f"; use algo {candidates[0].name!r}" if candidates else ""
    return ConfigError(f"{field_name}: {value!r} is not allowed with algo {entry.name!r} ({why}){hint}")


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

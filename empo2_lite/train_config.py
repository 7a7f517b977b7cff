"""The training run's configuration: one dataclass tree, named presets, and overrides.

``TrainConfig`` groups the settings by topic (``env``, ``policy``, ``rollout``, ``memory``,
``update``) around the method's own knobs (p, q, group size, ...). A run starts from a preset,
then a YAML file and ``--set section.field=value`` overrides apply, and ``validate()`` checks
everything before any model or JVM is started; each error names the field and what is allowed.

Presets:

* ``cpu-smoke``: a tiny random model (built locally), one task, 2 variations x group 2, at most 4
  steps: an end-to-end iteration in seconds, for tests and CI.
* ``cpu-demo``: the embedded SmolLM2-135M-Instruct, one task, short episodes: minutes on a CPU.
* ``gpu-24gb`` and ``gpu-48gb``: Qwen2.5-3B- and Qwen2.5-7B-Instruct with LoRA in bf16 and
  paper-like settings (group 8, full history, 32-token actions). **Unverified until measured on
  such a GPU** with real weights: one offline check on an H200 with same-shape random weights
  (docs/hardware.md) found their rollouts inside 22 and 44 GB; full iterations are not yet timed.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empo2_lite.algo.modes import OFF_POLICY_OLD_LOGPROBS
from empo2_lite.algo.update import UpdateConfig
from empo2_lite.config import ConfigError, EnvConfig, MemoryConfig, PolicyConfig, check_choice, check_positive
from empo2_lite.rollout import RolloutConfig
from empo2_lite.tasks import UnknownTaskError, get_task

ALGOS = ("empo2", "grpo")
MASK_GRANULARITIES = ("token", "sequence", "off")


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
    iterations: int = 10
    seed: int = 0
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
    group_size: int = 8
    """Rollouts per variation per iteration (GRPO group)."""
    reward_scale: float = 1.0
    """Multiplies the extrinsic return (scores are in [-100, 100])."""
    n_envs: int = 8
    """ScienceWorld JVMs in the pool (episodes played at once)."""
    eval_every: int = 0
    """Evaluate on the test variations (no memory, temperature 0.4) every k iterations; 0 = off."""
    eval_temperature: float = 0.4
    """Sampling temperature of every evaluation (the paper: 0.4)."""
    eval_episodes_per_variation: int = 1
    """Episodes per test variation in every evaluation (periodic, final, memory-only and OOD). The
    official test set plays each of the first 20 test variations 4 times (GPU presets: 4; CPU: 1)."""
    checkpoint_every: int = 1
    # -- components --
    env: EnvConfig = field(default_factory=EnvConfig)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    memory: MemoryConfig = field(default_factory=MemoryConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)


    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting (nothing heavy is started)."""
        check_choice("algo", self.algo, ALGOS)
        if self.algo == "grpo" and self.p != 0:
            raise ConfigError(f"p: {self.p!r} is not allowed with algo 'grpo' (GRPO has no memory rollouts); "
                              "set p=0 or use algo 'empo2'")
        try:
            get_task(self.task)
        except UnknownTaskError as error:
            raise ConfigError(str(error)) from None
        for name in ("p", "q"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}: {value!r} is not allowed; it must be a number in [0, 1]")
        check_choice("off_policy_old_logprob", self.off_policy_old_logprob, OFF_POLICY_OLD_LOGPROBS)
        for name in ("iterations", "variations_per_iteration", "group_size", "n_envs", "checkpoint_every",
                     "eval_episodes_per_variation"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}: {value!r} is not allowed; it must be an integer >= 1")
        if not isinstance(self.eval_every, int) or self.eval_every < 0:
            raise ConfigError(f"eval_every: {self.eval_every!r} is not allowed; it must be an integer >= 0")
        check_positive("reward_scale", self.reward_scale)
        if not self.name or "/" in self.name:
            raise ConfigError(f"name: {self.name!r} is not allowed; use a folder name without '/'")
        check_choice("update.mask_granularity", self.update.mask_granularity, MASK_GRANULARITIES)
        check_positive("update.learning_rate", self.update.learning_rate)
        check_positive("update.mini_batch_actions", self.update.mini_batch_actions)
        check_positive("update.micro_batch_tokens", self.update.micro_batch_tokens)
        check_positive("update.epochs", self.update.epochs)
        if self.update.temperature != self.rollout.temperature and self.rollout.temperature > 0:
            raise ConfigError(
                f"update.temperature: {self.update.temperature!r} must equal rollout.temperature "
                f"({self.rollout.temperature!r}); the old log-probs were recorded with it"
            )
        self.env.validate()
        self.policy.validate()
        self.rollout.validate()
        self.memory.validate()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (what ``config.json`` holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """The inverse of ``to_dict`` (unknown keys are errors naming them).

        A config written before ``write_tips`` existed is read as what ran: such a GRPO run used
        p = 0 whatever its stored p, and wrote tips and paid novelty in every mode."""
        flat = _flatten(values)
        if "write_tips" not in flat:
            flat["write_tips"] = True
            if flat.get("algo") == "grpo":
                flat["p"] = 0.0
        if "update.mini_batch_size" in flat:
            flat.pop("update.mini_batch_size")
        return apply_overrides(cls(), flat)


SECTIONS = {"env": EnvConfig, "policy": PolicyConfig, "rollout": RolloutConfig, "memory": MemoryConfig,
            "update": UpdateConfig}


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and key in SECTIONS and not prefix:
            flat.update(_flatten(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _coerce(field_name: str, annotation: str, value: Any) -> Any:
    """Turn a --set string (or a YAML/JSON value) into the field's declared type."""
    if not isinstance(value, str):
        return tuple(value) if "tuple" in annotation and isinstance(value, list) else value
    if "None" in annotation and value.lower() in ("none", "null"):
        return None
    if annotation.startswith("bool"):
        if value.lower() in ("true", "1", "yes", "on"):
            return True
        if value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{field_name}: {value!r} is not allowed; choose one of: true, false")
    if "tuple" in annotation:
        return tuple(part.strip() for part in value.split(",") if part.strip())
    try:
        if annotation.startswith("int"):
            return int(value)
        if annotation.startswith("float"):
            return float(value)
    except ValueError:
        raise ConfigError(f"{field_name}: {value!r} is not allowed; it must be a number") from None
    return value


ALGO_SETTINGS: dict[str, dict[str, Any]] = {
    "empo2": {},
    "grpo": {"p": 0.0, "write_tips": False, "memory.novelty_coef": 0.0},
}
"""What choosing an algorithm sets (applied before the other overrides given with it)."""


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``config`` with ``{"field" or "section.field": value}`` applied.

    An ``algo`` key is applied first, with the settings it implies (``ALGO_SETTINGS``); the other
    keys then override those, so ``{"algo": "grpo", "memory.novelty_coef": 1}`` is GRPO + novelty.
    """
    config = copy.deepcopy(config)
    if "algo" in overrides:
        check_choice("algo", overrides["algo"], ALGOS)
        overrides = {"algo": overrides["algo"], **ALGO_SETTINGS[overrides["algo"]],
                     **{key: value for key, value in overrides.items() if key != "algo"}}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        target = getattr(config, section) if section in SECTIONS else config if not section else None
        fields = {f.name: f for f in dataclasses.fields(target)} if target is not None else {}
        if name not in fields:
            known = sorted([f.name for f in dataclasses.fields(TrainConfig) if f.name not in SECTIONS] +
                           [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)])
            raise ConfigError(f"{key}: unknown setting; known settings: {', '.join(known)}")
        setattr(target, name, _coerce(key, str(fields[name].type), value))
    return config


def parse_set_arguments(pairs: list[str]) -> dict[str, str]:
    """``["update.learning_rate=1e-5", ...]`` as a dict; a pair without '=' is an error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set: {pair!r} is not allowed; write it as section.field=value")
        result[key.strip()] = value.strip()
    return result


def load_overrides_file(path: str | Path) -> dict[str, Any]:
    """Overrides from a YAML (or JSON) file, nested by section or flat with dots."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--config: no file at {str(path)!r}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"--config: {str(path)!r} must hold a mapping of settings")
    return _flatten(values)


def preset(name: str) -> TrainConfig:
    """A fresh copy of a named preset."""
    builders = {"cpu-smoke": _cpu_smoke, "cpu-demo": _cpu_demo, "gpu-24gb": _gpu_24gb, "gpu-48gb": _gpu_48gb}
    check_choice("preset", name, tuple(builders))
    return builders[name]()


PRESETS = ("cpu-smoke", "cpu-demo", "gpu-24gb", "gpu-48gb")


def _cpu_smoke() -> TrainConfig:
    return TrainConfig(
        preset="cpu-smoke", name="smoke", iterations=2, variations_per_iteration=2, group_size=2, n_envs=4, p=0.5,
        policy=PolicyConfig(model="tiny:byte", lora_rank=4, lora_alpha=8),
        rollout=RolloutConfig(max_steps=4, max_new_tokens=8, demonstrations=0, max_context_tokens=16384),
        memory=MemoryConfig(tip_max_new_tokens=12),
        update=UpdateConfig(learning_rate=1e-3, mini_batch_actions=16, micro_batch_tokens=16384, log_delta=-8.0),
    )


def _cpu_demo() -> TrainConfig:
    return TrainConfig(
        preset="cpu-demo", name="demo", iterations=4, variations_per_iteration=1, group_size=4, n_envs=4,
        # One trajectory per micro-batch with checkpointing: CPU attention keeps its L x L weights
        # for the backward pass, so 4 packed trajectories in one micro-batch peaked at 11.7 GB of
        # RAM; this way it is 2.9 GB and no slower (docs/hardware.md).
        policy=PolicyConfig(lora_rank=8, lora_alpha=16, gradient_checkpointing=True),
        rollout=RolloutConfig(max_steps=5, max_new_tokens=16, demonstrations=1, max_context_tokens=4096),
        memory=MemoryConfig(tip_max_new_tokens=32),
        update=UpdateConfig(learning_rate=2e-5, mini_batch_actions=20, micro_batch_tokens=2048),
    )


def _gpu_24gb() -> TrainConfig:
    return TrainConfig(
        preset="gpu-24gb", name="gpu24", iterations=100, variations_per_iteration=4, group_size=8, n_envs=16, eval_every=10,
        eval_episodes_per_variation=4,
        policy=PolicyConfig(model="Qwen/Qwen2.5-3B-Instruct", lora_rank=32, lora_alpha=64, gradient_checkpointing=True),
        rollout=RolloutConfig(max_context_tokens=8192),
        update=UpdateConfig(learning_rate=1e-5, mini_batch_actions=128, micro_batch_tokens=8192),
    )


def _gpu_48gb() -> TrainConfig:
    return TrainConfig(
        preset="gpu-48gb", name="gpu48", iterations=100, variations_per_iteration=8, group_size=8, n_envs=16, eval_every=10,
        eval_episodes_per_variation=4,
        policy=PolicyConfig(model="Qwen/Qwen2.5-7B-Instruct", lora_rank=64, lora_alpha=128, gradient_checkpointing=True),
        rollout=RolloutConfig(max_context_tokens=8192),
        update=UpdateConfig(learning_rate=5e-6, mini_batch_actions=128, micro_batch_tokens=8192),
    )


def config_json(config: TrainConfig) -> str:
    """``config.json`` text."""
    return json.dumps(config.to_dict(), indent=1)

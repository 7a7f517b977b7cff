"""Time and memory a notebook cell will need, printed before it runs.

``estimate`` scales a preset's cost per iteration (``config.PRESET_COSTS``: measured for the CPU
presets and partly for ``gpu-24gb``, estimated otherwise; the source is always named) by the number
of episodes per iteration, their step cap, iterations, runs and evaluation episodes.

The step cap scales linearly: with keys and values kept across turns (``RolloutConfig.engine``) a
step computes only its new tokens, so an episode costs about the same per step whatever its length
(docs/hardware.md). Without the cache each step re-reads the whole history and a longer episode
costs more than this says.

EMPO²'s memory iterations (probability ``p``) are priced at the preset's
``memory_iteration_seconds`` where it is measured: an expected cost, since which iterations draw
memory is chance. The first iteration is priced as a plain one whatever it draws: memory is still
empty, so no tip reaches a prompt.
"""

from __future__ import annotations

from empo2_lite.config import PRESET_COSTS, PresetCost, TrainConfig, preset
from empo2_lite.tasks import step_cap


def _format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def _episode_steps(config: TrainConfig) -> int:
    """The step cap the config's episodes run under (its own, else its task's, else the default)."""
    return config.rollout.max_steps or step_cap(config.task, config.env.default_max_steps)


def scaled_seconds(config: TrainConfig, iterations: int, eval_episodes: int = 0) -> float | None:
    """Seconds of ``iterations`` iterations of ``config`` and ``eval_episodes`` evaluation episodes,
    scaled from its preset's cost by the episodes per iteration and their step cap (None: the
    preset has no measured or estimated cost). The study's ``--estimate`` sums these per phase."""
    cost = PRESET_COSTS.get(config.preset)
    if cost is None:
        return None
    reference = preset(config.preset)
    scale = (config.variations_per_iteration * config.group_size) / (reference.variations_per_iteration * reference.group_size)
    steps = _episode_steps(config) / _episode_steps(reference)
    return steps * (training_seconds(config, iterations, cost) * scale + eval_episodes * cost.episode_seconds)


def training_seconds(config: TrainConfig, iterations: int, cost: PresetCost) -> float:
    """The expected seconds of ``iterations`` iterations at the preset's size: EMPO²'s share ``p`` of
    the iterations after the first at ``cost.memory_iteration_seconds`` (when measured), the rest at
    ``cost.iteration_seconds``."""
    plain = iterations * cost.iteration_seconds
    if config.algo != "empo2" or not cost.memory_iteration_seconds:
        return plain
    return plain + config.p * max(iterations - 1, 0) * (cost.memory_iteration_seconds - cost.iteration_seconds)


def estimate(config: TrainConfig, iterations: int | None = None, eval_episodes: int = 0, runs: int = 1) -> str:
    """One line: the time and memory ``runs`` runs of ``config`` (``iterations`` each, default its
    own) plus ``eval_episodes`` evaluation episodes will need, scaled from the preset's cost by
    the number of episodes per iteration and by their step cap."""
    cost = PRESET_COSTS.get(config.preset)
    if cost is None:
        return f"no estimate for preset {config.preset or 'custom'!r}: time one iteration first"
    iterations = config.iterations if iterations is None else iterations
    seconds = scaled_seconds(config, runs * iterations, eval_episodes)
    memory = "GPU memory" if config.preset.startswith("gpu") else "RAM"
    return (f"{config.preset}: {_format_duration(seconds)} and ~{cost.peak_memory_gb:g} GB of {memory} "
            f"({cost.source})")

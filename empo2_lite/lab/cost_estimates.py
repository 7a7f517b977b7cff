"""Time and memory a notebook cell will need, printed before it runs.

``estimate`` scales a preset's cost per iteration (``config.PRESET_COSTS``: measured for the CPU
presets and partly for ``gpu-24gb``, estimated otherwise; the source is always named) by the number
of episodes per iteration, iterations, runs and evaluation episodes.
"""

from __future__ import annotations

from empo2_lite.config import PRESET_COSTS, TrainConfig, preset


def _format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def estimate(config: TrainConfig, iterations: int | None = None, eval_episodes: int = 0, runs: int = 1) -> str:
    """One line: the time and memory ``runs`` runs of ``config`` (``iterations`` each, default its
    own) plus ``eval_episodes`` evaluation episodes will need, scaled from the preset's cost by
    the number of episodes per iteration."""
    cost = PRESET_COSTS.get(config.preset)
    if cost is None:
        return f"no estimate for preset {config.preset or 'custom'!r}: time one iteration first"
    reference = preset(config.preset)
    scale = (config.variations_per_iteration * config.group_size) / (reference.variations_per_iteration * reference.group_size)
    iterations = config.iterations if iterations is None else iterations
    seconds = runs * iterations * cost.iteration_seconds * scale + eval_episodes * cost.episode_seconds
    memory = "GPU memory" if config.preset.startswith("gpu") else "RAM"
    return (f"{config.preset}: {_format_duration(seconds)} and ~{cost.peak_memory_gb:g} GB of {memory} "
            f"({cost.source})")

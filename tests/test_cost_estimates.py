"""Estimates of time and memory printed before heavy notebook cells."""

from __future__ import annotations

from empo2_lite.config import apply_overrides, preset
from empo2_lite.lab import cost_estimates


def test_estimates_scale_with_iterations_episodes_and_runs():
    demo = preset("cpu-demo")  # 60 s per iteration of 4 episodes, 7 s per evaluation episode
    assert cost_estimates.estimate(demo, iterations=3, eval_episodes=20).startswith("cpu-demo: ~5 min and ~4.5 GB of RAM (measured")
    doubled = apply_overrides(demo, {"group_size": 8})  # twice the episodes per iteration
    assert cost_estimates.estimate(doubled, iterations=1).startswith("cpu-demo: ~2 min")
    assert cost_estimates.estimate(preset("cpu-smoke"), iterations=2, runs=2).startswith("cpu-smoke: ~60 s")
    assert "estimate scaled from a 3-step iteration on an H200" in cost_estimates.estimate(preset("gpu-24gb"))
    assert "estimate: not yet measured" in cost_estimates.estimate(preset("gpu-48gb"))
    assert "GPU memory" in cost_estimates.estimate(preset("gpu-48gb"))
    assert "no estimate" in cost_estimates.estimate(apply_overrides(demo, {"preset": ""}))


def test_estimates_scale_with_the_step_cap():
    """Twice the steps per episode costs what twice the episodes cost (the KV cache makes a step's
    cost independent of how long the episode already is); no step cap means the task's own."""
    demo = preset("cpu-demo")
    longer = apply_overrides(demo, {"rollout.max_steps": 2 * demo.rollout.max_steps})
    more = apply_overrides(demo, {"group_size": 2 * demo.group_size})
    assert cost_estimates.estimate(longer, iterations=1) == cost_estimates.estimate(more, iterations=1)
    assert cost_estimates.estimate(longer, iterations=3) != cost_estimates.estimate(demo, iterations=3)
    gpu = preset("gpu-24gb")  # no step cap of its own: 30 steps, ScienceWorld's default
    sixty_steps = apply_overrides(gpu, {"task": "chemistry-mix"})  # a 60-step task
    twice = apply_overrides(gpu, {"group_size": 2 * gpu.group_size})
    assert cost_estimates.estimate(sixty_steps) == cost_estimates.estimate(twice)


def test_empo2_memory_iterations_are_priced_where_measured():
    """cpu-solve measured an EMPO² memory iteration with tips (939 s against 135 s plain): EMPO²'s
    iterations after the first cost p of the difference more; GRPO's and presets without such a
    measurement are priced plain."""
    empo2 = apply_overrides(preset("cpu-solve"), {"algo": "empo2"})
    grpo = apply_overrides(preset("cpu-solve"), {"algo": "grpo"})
    assert cost_estimates.scaled_seconds(grpo, 4) == 4 * 135
    assert cost_estimates.scaled_seconds(empo2, 1) == 135  # memory is empty in the first iteration
    assert cost_estimates.scaled_seconds(empo2, 4) == 4 * 135 + 0.25 * 3 * (939 - 135)
    rarer = apply_overrides(empo2, {"p": 0.5})
    assert cost_estimates.scaled_seconds(rarer, 4) == 4 * 135 + 0.5 * 3 * (939 - 135)
    demo = apply_overrides(preset("cpu-demo"), {"algo": "empo2"})
    assert cost_estimates.scaled_seconds(demo, 3) == 3 * 60


def test_the_chosen_cpu_solve_preset_is_the_study_setting_and_warns_without_its_warm_start(tmp_path, monkeypatch):
    import pytest

    from empo2_lite import jobs
    from empo2_lite.config import WARM_START_PRESETS

    chosen, family = preset("cpu-solve-chosen"), preset("cpu-solve")
    assert (chosen.update.learning_rate, chosen.iterations, WARM_START_PRESETS["cpu-solve-chosen"]) == (3e-4, 4, 10)
    assert (chosen.rollout, chosen.group_size, chosen.variations_per_iteration) == (
        family.rollout, family.group_size, family.variations_per_iteration)
    grpo = apply_overrides(chosen, {"algo": "grpo"})  # 4 x 130 s and 20 test episodes of 5 s
    assert cost_estimates.estimate(grpo, eval_episodes=20).startswith("cpu-solve-chosen: ~10 min and ~6.5 GB of RAM")
    assert cost_estimates.estimate(chosen, eval_episodes=20).startswith("cpu-solve-chosen: ~20 min")  # EMPO²
    with pytest.warns(UserWarning, match="make one with `warm-start --preset cpu-solve-chosen --task "
                                         "find-non-living-thing --variations 10`"):
        jobs.warn_without_warm_start(chosen)

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

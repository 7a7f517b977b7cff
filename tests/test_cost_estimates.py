"""Estimates of time and memory printed before heavy notebook cells."""

from __future__ import annotations

from empo2_lite.config import apply_overrides, preset
from empo2_lite.lab import cost_estimates


def test_estimates_scale_with_iterations_episodes_and_runs():
    demo = preset("cpu-demo")  # 85 s per iteration of 4 episodes, 10 s per evaluation episode
    assert cost_estimates.estimate(demo, iterations=3, eval_episodes=20).startswith("cpu-demo: ~8 min and ~5 GB of RAM (measured")
    doubled = apply_overrides(demo, {"group_size": 8})  # twice the episodes per iteration
    assert cost_estimates.estimate(doubled, iterations=1).startswith("cpu-demo: ~3 min")
    assert cost_estimates.estimate(preset("cpu-smoke"), iterations=2, runs=2).startswith("cpu-smoke: ~60 s")
    assert "estimate scaled from a 3-step iteration on an H200" in cost_estimates.estimate(preset("gpu-24gb"))
    assert "estimate: not yet measured" in cost_estimates.estimate(preset("gpu-48gb"))
    assert "GPU memory" in cost_estimates.estimate(preset("gpu-48gb"))
    assert "no estimate" in cost_estimates.estimate(apply_overrides(demo, {"preset": ""}))

"""Evaluation on a task's test variations, without memory (the paper's protocol).

Each protocol test variation is played ``episodes_per_variation`` times at temperature 0.4 with
no tips; the mean return (final score), its std and both success rates are reported.
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from empo2_lite.env.pool import EnvPool
from empo2_lite.policy.loading import Policy
from empo2_lite.rollout import EpisodeSpec, RolloutConfig, collect_rollouts
from empo2_lite.tasks import Task


def evaluate(policy: Policy, pool: EnvPool, task: Task, rollout: RolloutConfig, temperature: float = 0.4,
             episodes_per_variation: int = 1, progress: bool = False) -> dict:
    """Test-split results of ``policy`` on ``task`` (no memory is ever consulted)."""
    specs = [EpisodeSpec(task.name, variation, group_id=variation)
             for variation in task.test_variations for _ in range(episodes_per_variation)]
    trajectories = collect_rollouts(policy, pool, specs, replace(rollout, temperature=temperature), retrieve=None,
                                    progress=progress)
    played = [t for t in trajectories if t.end_reason != "env_failure"]
    scores = [t.score for t in played]
    return {
        "task": task.name,
        "episodes": len(played),
        "env_failures": len(trajectories) - len(played),
        "return_mean": statistics.mean(scores) if scores else float("nan"),
        "return_std": statistics.pstdev(scores) if scores else float("nan"),
        "success_rate": sum(t.success for t in played) / max(len(played), 1),
        "success_official_rate": sum(t.success_official for t in played) / max(len(played), 1),
        "per_variation": {str(v): statistics.mean([t.score for t in played if t.variation == v])
                          for v in sorted({t.variation for t in played})},
    }

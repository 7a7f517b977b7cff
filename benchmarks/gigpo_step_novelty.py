"""How much of GiGPO's step term is novelty, under ``empo2+gigpo``: the same played episodes given
advantages with novelty kept out of the step returns (the default) and with it in
(``update.gigpo_step_novelty``).

The untrained embedded model plays ``--iterations`` iterations of ``--task`` on ScienceWorld
(``cpu-learn``'s settings, empo2+gigpo: modes drawn, tips written and retrieved, novelty counted
across the iterations as in a run; no update, so every iteration plays the same model). For each
iteration and each setting it prints the share of actions in step groups of two or more
(``step_group_share``), the share of those step groups whose step returns differ only through
novelty (``step_novelty_only_share``), the mean |step term| (omega x A_step) over actions in such
groups, and how many actions' advantages change sign between the two settings.

Usage: ``python benchmarks/gigpo_step_novelty.py [--task find-non-living-thing] [--iterations 2]
[--max-steps 10]``. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from empo2_lite import iteration as phases
from empo2_lite.algo.gigpo import gigpo_action_advantages, step_group_share, step_groups
from empo2_lite.config import apply_overrides, preset
from empo2_lite.env.pool import EnvPool
from empo2_lite.memory import Novelty, TipMemory
from empo2_lite.policy import load_policy
from empo2_lite.policy.samplers import episode_sampler
from empo2_lite.tasks import get_task


def step_terms(trajectories, returns, config) -> tuple[list[list[float]], dict[str, float]]:
    """Each action's step term (the GiGPO advantage less its episode term) and the diagnostics."""
    with_steps = gigpo_action_advantages(trajectories, returns, config)
    episodes_only = gigpo_action_advantages(trajectories, returns, apply_overrides(config, {"update.gigpo_omega": 0.0}))
    terms = [[a - e for a, e in zip(full, episode)] for full, episode in zip(with_steps, episodes_only)]
    return terms, {"advantages": [list(values) for values in with_steps], **with_steps.diagnostics}


def measure(task: str, iterations: int, max_steps: int, seed: int) -> dict:
    config = apply_overrides(preset("cpu-learn"), {"algo": "empo2+gigpo", "task": task, "seed": seed,
                                                   "rollout.max_steps": max_steps})
    config.validate()
    settings = {name: apply_overrides(config, {"update.gigpo_step_novelty": on})
                for name, on in (("episode_level", False), ("step_level", True))}
    policy = load_policy(config.policy, config.rollout)
    sampler = episode_sampler(policy, config.rollout)
    memory, novelty, rng = TipMemory(config.memory), Novelty(config.memory.novelty_threshold), random.Random(seed)
    rows = []
    with EnvPool(config.n_envs, config.env) as pool:
        for index in range(iterations):
            began = time.perf_counter()
            batch = phases.choose(rng, config, memory, get_task(task), index)
            phases.collect(batch, policy, pool, config, get_task(task), memory, novelty, sampler)
            phases.store_tips(batch, memory, config)
            phases.rewards(batch, config)
            groups = step_groups(batch.played)
            row = {"iteration": index, "mode": batch.mode.value, "episodes": len(batch.played), "seconds": round(time.perf_counter() - began, 1),
                   "scores": [t.score for t in batch.played], "step_group_share": step_group_share(groups)}
            advantages = {}
            for name, setting in settings.items():
                terms, diagnostics = step_terms(batch.played, batch.returns, setting)
                grouped = [abs(terms[i][s]) for group in groups if len(group) > 1 for i, s in group]
                advantages[name] = diagnostics.pop("advantages")
                row[name] = {"step_novelty_only_share": diagnostics["step_novelty_only_share"],
                             "mean_abs_step_term_in_groups": sum(grouped) / len(grouped) if grouped else 0.0}
            pairs = [(a, b) for per_a, per_b in zip(advantages["episode_level"], advantages["step_level"])
                     for a, b in zip(per_a, per_b)]
            row["actions"] = len(pairs)
            row["sign_changes"] = sum((a > 0) != (b > 0) for a, b in pairs if abs(a) > 1e-6 or abs(b) > 1e-6)
            rows.append(row)
    return {"task": task, "preset": "cpu-learn", "algo": "empo2+gigpo", "max_steps": max_steps,
            "episodes_per_iteration": config.variations_per_iteration * config.group_size,
            "temperature": config.rollout.temperature, "model": config.policy.model, "iterations": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="find-non-living-thing")
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    print(json.dumps(measure(args.task, args.iterations, args.max_steps, args.seed), indent=1))


if __name__ == "__main__":
    main()

"""What a warm start does for the embedded model on the CPU: minutes, dev success and return against
the untrained model, and the share of actions executed as the model wrote them, before and after.

Prints one JSON object. Steps (all on real ScienceWorld JVMs):

1. the untrained model (the preset's base model, no adapter) plays the first ``--dev-variations``
   dev variations of the task, ``--episodes`` episodes each, at the preset's evaluation temperature
   (0.4) with the step cap ``--max-steps``;
2. for each size in ``--variations`` (several sizes share step 1): ``jobs.warm_start`` clones that
   many train variations (the ones after RL's own) for ``--epochs`` epochs at ``--lr``, timed (gold
   paths, recording and cloning: the job's ``minutes``);
3. that warm start (merged into the base weights, as ``policy.init_adapter`` loads it) plays the
   same episodes from the same seeds.

``success_rate``, ``return_mean`` and ``actions_as_written`` (``summary.BatchSummary``) of both,
and each warm start's final loss. The question it answers: how many train variations make the model
act (write commands the environment executes as written) without solving the dev split outright,
which would leave RL nothing to show.

Usage::

    python benchmarks/warm_start.py                       # find-non-living-thing, cpu-learn, 10-step cap
    python benchmarks/warm_start.py --quick               # 2 variations, 1 epoch, 4 dev variations
    python benchmarks/warm_start.py --preset cpu-solve --variations 3 10 30 --out runs/warm-bench
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from empo2_lite.config import apply_overrides, preset
from empo2_lite.runs import runs_under
from empo2_lite.tasks import get_task
from empo2_lite.warm_start import WarmStartSettings


def play_dev(policy, config, task, count: int, episodes: int) -> dict:
    """The policy on the first ``count`` dev variations, ``episodes`` each (seeds of the dev
    evaluation's purpose, so both models draw from the same seeds)."""
    from empo2_lite.env.pool import EnvPool
    from empo2_lite.rollout import collect_rollouts, episode_specs
    from empo2_lite.summary import summarize

    specs = episode_specs(task.name, task.dev_variations[:count], episodes, run_seed=config.seed, purpose="eval-dev",
                          iteration=0)
    began = time.perf_counter()
    with EnvPool(config.n_envs, config.env) as pool:
        trajectories = collect_rollouts(policy, pool, specs, replace(config.rollout, temperature=config.eval_temperature),
                                        progress=True)
    summary = summarize(trajectories)
    return {"episodes": summary.episodes, "success_rate": summary.success_rate, "return_mean": summary.return_mean,
            "return_se": summary.return_se, "actions_as_written": summary.actions_as_written,
            "steps_mean": summary.steps_mean, "end_reasons": summary.end_reasons,
            "minutes": (time.perf_counter() - began) / 60}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="find-non-living-thing")
    parser.add_argument("--preset", default="cpu-learn")
    parser.add_argument("--max-steps", type=int, default=10, help="step cap of the dev episodes and of RL after it")
    parser.add_argument("--variations", type=int, nargs="+", default=None,
                        help="train variations cloned, one warm start per size (default: the job's)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default: the job's)")
    parser.add_argument("--lr", type=float, default=None, help="learning rate (default: the job's)")
    parser.add_argument("--dev-variations", type=int, default=20, help="dev variations played (the protocol: 20)")
    parser.add_argument("--episodes", type=int, default=1, help="episodes per dev variation")
    parser.add_argument("--n-envs", type=int, default=4, help="ScienceWorld JVMs of the dev evaluations")
    parser.add_argument("--out", help="runs root to keep the warm start in (default: a temporary folder)")
    parser.add_argument("--quick", action="store_true", help="2 variations, 1 epoch, 4 dev variations")
    args = parser.parse_args()
    defaults = WarmStartSettings()
    sizes = args.variations or [2 if args.quick else defaults.variations]
    every = [WarmStartSettings(variations=size, epochs=args.epochs or (1 if args.quick else defaults.epochs),
                               learning_rate=args.lr or defaults.learning_rate) for size in sizes]
    for settings in every:
        settings.validate()
    dev_count = 4 if args.quick and args.dev_variations == 20 else args.dev_variations
    overrides = {"rollout.max_steps": args.max_steps, "n_envs": args.n_envs}
    load_at_start = os.getloadavg()[0]
    task = get_task(args.task)
    config = apply_overrides(preset(args.preset), {**overrides, "task": task.name})
    config.validate()

    from empo2_lite import jobs
    from empo2_lite.policy import load_policy

    untrained = play_dev(load_policy(replace(config.policy, lora_rank=0), config.rollout), config, task, dev_count,
                         args.episodes)
    print(f"untrained on dev: {json.dumps(untrained)}", file=sys.stderr, flush=True)  # each phase as it ends
    rows = []
    with tempfile.TemporaryDirectory() as scratch, runs_under(args.out or scratch):
        for settings in every:
            done = jobs.warm_start(args.preset, task.name, settings, name=f"warm-start-{task.name}-v{settings.variations}",
                                   overrides=overrides)
            record = done.record
            print(f"warm start of {settings.variations}: {record['minutes']:.1f} min, final loss "
                  f"{record['final_loss']:.3f}", file=sys.stderr, flush=True)
            warm_policy = load_policy(replace(config.policy, lora_rank=0, init_adapter=str(done.run.path.resolve())),
                                      config.rollout)
            warm = play_dev(warm_policy, config, task, dev_count, args.episodes)
            print(f"warm start of {settings.variations} on dev: {json.dumps(warm)}", file=sys.stderr, flush=True)
            rows.append({**settings.row(), "variations_cloned": [row["variation"] for row in record["cloned"]],
                         "action_tokens": record["action_tokens"], "final_loss": record["final_loss"],
                         "loss_by_epoch": [row["warm_start/loss"] for row in done.run.read_metrics()],
                         "minutes": record["minutes"], "dev": warm})
    print(json.dumps({
        "task": task.name, "preset": args.preset, "model": config.policy.model, "max_steps": args.max_steps,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores",
        "load_average_at_start": load_at_start,
        "dev": {"variations": list(task.dev_variations[:dev_count]), "episodes_per_variation": args.episodes,
                "temperature": config.eval_temperature, "untrained": untrained},
        "warm_starts": rows,
    }, indent=1))

if __name__ == "__main__":
    main()

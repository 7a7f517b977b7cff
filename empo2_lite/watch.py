"""Watch a run's agent play: one episode with the trained adapter (or the untrained base model of
the same run, or the warm start it started from), printed as a transcript.

Why: returns and curves say *that* a run learned; a transcript says *what* it learned (it stopped
focusing on the first object it saw, it opens the door before walking through it). The episode is
played exactly as an evaluation episode is (test settings: no memory unless asked, the run's
evaluation temperature, its rollout settings), so what one watches is what the numbers measured.

``python -m empo2_lite play --run NAME --task find-animal --variation 225 [--memory] [--untrained |
--warm-start-only]`` calls ``watch_run``; the gallery notebook shows a before/after pair with it.
"Untrained" is the base model with neither the run's adapter nor its warm start merged in, so that
a run started from a warm start is set beside the model nobody trained, not beside its warm start.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path

from empo2_lite.config import ConfigError
from empo2_lite.env.pool import PoolFactory, open_pool
from empo2_lite.evaluation import evaluation_settings, load_trained_policy
from empo2_lite.memory import TipMemory
from empo2_lite.policy.loading import Policy
from empo2_lite.prompts import STEP_REQUEST
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.runs import RunDir
from empo2_lite.seeding import episode_seed
from empo2_lite.tasks import get_task
from empo2_lite.trajectory import Trajectory


def watch_run(run_path: str | Path, task: str | None = None, variation: int | None = None, *, split: str = "test",
              untrained: bool = False, warm_start_only: bool = False,
              with_memory: bool = False, temperature: float | None = None, seed: int = 0,
              policy: Policy | None = None, make_pool: PoolFactory | None = None) -> Trajectory:
    """Play one episode of ``task`` (default: the run's) and ``variation`` (default: its first test
    variation) with the run's latest adapter, or with the untrained base model when ``untrained`` (no
warm start either), or with the run's warm start alone (no RL) when ``warm_start_only``.

    ``split`` is the split ``variation`` must belong to (the test split, as evaluation plays).
    ``with_memory`` shows the run's stored tips, retrieved as in training; ``temperature`` defaults
    to the run's evaluation temperature; ``seed`` fixes the sampling, so an untrained/trained pair
    with the same seed differs only by the adapter. ``policy`` skips loading (a notebook that
    already holds one).
    """
    run = RunDir(run_path)
    config = run.config()
    task_entry = get_task(task or config.task)
    variation = task_entry.test_variations[0] if variation is None else variation
    task_entry.check_variation(variation, split)
    if with_memory and (untrained or warm_start_only):
        raise ValueError("with_memory: the memory belongs to the trained run; watch the untrained model without it")
    if untrained and warm_start_only:
        raise ValueError("untrained, warm_start_only: choose one (the base model, or the warm start merged into it)")
    if warm_start_only and not config.policy.init_adapter:
        raise ConfigError(f"--warm-start-only: {run.path.name} did not start from a warm start (policy.init_adapter is empty)")
    if policy is None:
        if untrained or warm_start_only:
            from empo2_lite.policy import load_policy

            base = replace(config.policy, lora_rank=0, init_adapter=config.policy.init_adapter if warm_start_only else "")
            policy = load_policy(base, config.rollout)
        else:
            policy, _ = load_trained_policy(run.path)
    retrieve = TipMemory.load(run.memory_path, config.memory).tips_for if with_memory else None
    settings = replace(config.rollout, temperature=evaluation_settings(config, temperature).temperature)
    spec = EpisodeSpec(task_entry.name, variation, 0, seed=episode_seed(seed, "watch", 0, variation, 0))
    with open_pool(make_pool, 1, config.env) as pool:
        [trajectory] = collect_rollouts(policy, pool, [spec], settings,
                                        retrieve=retrieve, progress=False)
    return trajectory


def transcript(trajectory: Trajectory, width: int = 100) -> str:
    """The episode as text: each step's tips (if shown), the command the policy wrote (and what
    ScienceWorld executed, when it corrected it), what came back, the score; then how it ended."""
    lines = [f"== {trajectory.task}, variation {trajectory.variation}"]
    messages = [turn.user_message for turn in trajectory.turns[1:]] + [trajectory.final_message]
    for number, (turn, reply) in enumerate(zip(trajectory.turns, messages), start=1):
        for tip in turn.tips:
            lines.append("     tip: " + textwrap.shorten(tip, width - 10))
        corrected = f"   (wrote {turn.raw_action!r})" if turn.raw_action.strip() != turn.action else ""
        lines.append(f"[{number:2d}] > {turn.action}{corrected}")
        observation = reply.removesuffix(STEP_REQUEST).strip()
        if observation:
            lines.append(textwrap.indent(textwrap.shorten(observation, width * 2), "      "))
        lines.append(f"      score {turn.score}")
    lines.append(f"== ended: {trajectory.end_reason}, final score {trajectory.score}"
                 f"{', success' if trajectory.success else ''}")
    return "\n".join(lines)

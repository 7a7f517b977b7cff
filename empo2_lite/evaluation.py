"""Evaluation on a task's test variations, and the frozen-weight memory loop.

* ``evaluate``: each protocol test variation is played ``episodes_per_variation`` times at
  temperature 0.4 with no tips (the official test set plays each of the first 20 test variations
  4 times; the config's ``eval_episodes_per_variation``); its row holds the mean return (final
  score), its std, its standard error over variations and both success rates (``summary.py``,
  the statistics the trainer and the memory loop report too).
* ``memory_adaptation``: weights frozen, tips written after every iteration and retrieved in the
  next; iteration 0 has no memory. It is the paper's OOD adaptation protocol (a model trained on
  task A adapting to task B) and the memory-only, Reflexion-style baseline (K trials).
* ``load_trained_policy``: a run's policy with its latest adapter.
* ``final_evaluation``: a run's evaluation after its last iteration, played once per setting
  (temperature, episodes per variation) and then read back from ``eval.jsonl`` (so ``make demo``,
  ``eval --run`` and the notebooks can be re-run cheaply). It is one of the jobs in ``jobs.py``.

Run files are read and written through ``RunDir`` only; nothing here refuses a run folder of an
older config format, since evaluating a trained adapter does not continue its training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from empo2_lite.config import EnvConfig, MemoryConfig, RolloutConfig
from empo2_lite.env.pool import EnvPool
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.memory import TipMemory
from empo2_lite.policy.loading import Policy
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.runs import RunDir
from empo2_lite.summary import summarize
from empo2_lite.tasks import Task, get_task

PoolFactory = Callable[[int, EnvConfig], EpisodePool]
"""Builds the environments a job plays on from (slots, settings): ``EnvPool`` (one ScienceWorld
JVM per slot) by default; tests pass a pool replaying recorded transitions."""


def evaluation_specs(task: Task, episodes_per_variation: int) -> list[EpisodeSpec]:
    """Every protocol test variation of ``task``, ``episodes_per_variation`` times."""
    return [EpisodeSpec(task.name, variation, group_id=variation)
            for variation in task.test_variations for _ in range(episodes_per_variation)]


def evaluate(policy: Policy, pool: EnvPool, task: Task, rollout: RolloutConfig, *, temperature: float,
             episodes_per_variation: int, progress: bool = False) -> dict:
    """Test-split results of ``policy`` on ``task`` (no memory is ever consulted)."""
    trajectories = collect_rollouts(policy, pool, evaluation_specs(task, episodes_per_variation),
                                    replace(rollout, temperature=temperature), retrieve=None, progress=progress)
    return {"task": task.name, "episodes_per_variation": episodes_per_variation,
            **summarize(trajectories).evaluation_record()}


def load_trained_policy(run_path: str | Path):
    """The policy of a run with its latest checkpoint's adapter, and the run's config."""
    from peft import set_peft_model_state_dict

    from empo2_lite.policy import load_policy

    run = RunDir(run_path)
    config = run.config()
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise FileNotFoundError(f"{run.path} has no checkpoint to evaluate")
    policy = load_policy(config.policy)
    set_peft_model_state_dict(policy.model, run.read_adapter(checkpoint))
    return policy, config


def final_evaluation(run_path: str | Path, policy: Policy | None = None, progress: bool = False, *,
                     temperature: float | None = None, episodes_per_variation: int | None = None,
                     make_pool: PoolFactory | None = None) -> dict:
    """The test-split evaluation of a run after its last iteration: the recorded one when
    ``eval.jsonl`` has one with these settings, else played now (with ``policy`` or the run's
    latest adapter, on ``make_pool``'s environments) and appended as ``kind: final``.

    ``temperature`` and ``episodes_per_variation`` default to the config's ``eval_temperature``
    and ``eval_episodes_per_variation``; the row records both, so other settings play anew."""
    run = RunDir(run_path)
    config = run.config()
    temperature = config.eval_temperature if temperature is None else temperature
    episodes = config.eval_episodes_per_variation if episodes_per_variation is None else episodes_per_variation
    for row in run.read_evals():
        if (row.get("iteration") == config.iterations and row.get("temperature", config.eval_temperature) == temperature
                and row.get("episodes_per_variation", config.eval_episodes_per_variation) == episodes):
            return row
    if policy is None:
        policy, _ = load_trained_policy(run.path)
    with (make_pool or EnvPool)(config.n_envs, config.env) as pool:
        result = evaluate(policy, pool, get_task(config.task), config.rollout, temperature=temperature,
                          episodes_per_variation=episodes, progress=progress)
    record = {"iteration": config.iterations, "kind": "final", "temperature": temperature, **result}
    run.append_eval(record)
    return record


def memory_adaptation(policy: Policy, pool: EnvPool, task: Task, rollout: RolloutConfig, memory_config: MemoryConfig,
                      iterations: int, *, temperature: float, episodes_per_variation: int,
                      progress: bool = False) -> list[dict]:
    """Frozen weights, growing memory: iteration 0 plays the test variations without tips, every
    later iteration retrieves the tips written after the earlier ones (the OOD protocol, and the
    memory-only Reflexion-style baseline). No weight is ever updated."""
    memory = TipMemory(memory_config)
    settings = replace(rollout, temperature=temperature)
    history = []
    for iteration in range(iterations):
        use_memory = iteration > 0
        trajectories = collect_rollouts(policy, pool, evaluation_specs(task, episodes_per_variation), settings,
                                        retrieve=memory.tips_for if use_memory else None, progress=progress,
                                        tips=memory_config)
        played = [t for t in trajectories if t.end_reason != "env_failure"]
        for trajectory in played:
            memory.add_episode(trajectory, trajectory.tip, iteration=iteration)
        stats = summarize(trajectories)
        history.append({"iteration": iteration, "used_memory": use_memory, "episodes": stats.episodes,
                        "return_mean": stats.return_mean, "return_se": stats.return_se,
                        "success_rate": stats.success_rate, "tips_shown_mean": stats.tips_shown_mean,
                        "memory_entries": len(memory)})
    base = history[0]["return_mean"]
    for row in history:
        row["improvement_percent"] = 100.0 * (row["return_mean"] - base) / abs(base) if base else float("nan")
    return history


OOD_PAIRS = {
    "life-stages-2-to-shortest-lived": ("identify-life-stages-2", "lifespan-shortest-lived"),
    "longest-lived-to-conductivity": ("lifespan-longest-lived", "test-conductivity"),
    "power-component-to-secondary-color": ("power-component", "chemistry-mix-paint-secondary-color"),
}
"""The paper's three OOD pairs (trained on A, adapting to B)."""

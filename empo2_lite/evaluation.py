"""Evaluation on a task's dev or test variations, and the frozen-weight memory loop.

The protocol (what a reviewer can trust): every choice (settings, screening, periodic evaluations
during training) is scored on the **dev** split; the **test** split is played once per run, by a
final evaluation asked for explicitly, and never by training. Each evaluation draws its tokens
from episode seeds of its own purpose (``seeding.py``), so evaluating does not change training.

* ``evaluate``: each protocol variation of the split is played ``episodes_per_variation`` times at
  temperature 0.4 with no tips (the official test set plays each of the first 20 test variations
  4 times; the config's ``eval_episodes_per_variation``); its row holds the split, the seed, the
  mean return (final score), its std, its standard error over variations, both success rates and
  the episodes' end reasons (``summary.py``, the statistics the trainer and the memory loop report
  too).
* ``memory_adaptation``: weights frozen, tips written after every iteration and retrieved in the
  next; iteration 0 has no memory. It is the paper's OOD adaptation protocol (a model trained on
  task A adapting to task B) and the memory-only baseline (K trials): EMPO²'s memory without its
  training, not Reflexion (which writes a reflection per failed trial of one variation and shows the
  newest three: ``baselines/reflexion.py``).
* ``load_trained_policy``: a run's policy with its latest adapter.
* ``final_evaluation``: a run's evaluation after its last iteration, played once per split and
  setting (temperature, episodes per variation) and then read back from ``eval.jsonl`` (so
  ``make demo``, ``eval --run`` and the notebooks can be re-run cheaply); a second test evaluation
  under other settings is refused. It is one of the jobs in ``jobs.py``.
* ``evaluation_settings``: the temperature and episodes per variation of an evaluation, each the
  config's unless given (every job that evaluates, and ``watch.py``, asks it).

Run files are read and written through ``RunDir`` only; nothing here refuses a run folder of an
older config format, since evaluating a trained adapter does not continue its training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from empo2_lite.config import ConfigError, MemoryConfig, RolloutConfig, TrainConfig, check_choice
from empo2_lite.distributed import SINGLE, World
from empo2_lite.env.pool import PoolFactory, open_pool
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.memory import TipMemory
from empo2_lite.policy.loading import Policy
from empo2_lite.rollout import EpisodeSpec, collect_rollouts, episode_specs, warn_if_context_is_short
from empo2_lite.runs import RunDir
from empo2_lite.summary import summarize
from empo2_lite.tasks import EVAL_SPLITS, Task, get_task
from empo2_lite.trajectory import played


@dataclass(frozen=True)
class EvaluationSettings:
    """How an evaluation plays: two evaluations of one split are the same one exactly when these
    match, so a row records both and is read back only under them."""

    temperature: float
    episodes_per_variation: int

    def row(self) -> dict[str, Any]:
        """The settings as the fields of a results row."""
        return asdict(self)


def evaluation_settings(config: TrainConfig, temperature: float | None = None,
                        episodes_per_variation: int | None = None) -> EvaluationSettings:
    """The settings asked for, each one not given (None) the config's ``eval_temperature`` or
    ``eval_episodes_per_variation``: the one place those defaults are chosen, so a final evaluation,
    a baseline, an OOD adaptation and a watched episode of one run all play alike."""
    return EvaluationSettings(config.eval_temperature if temperature is None else temperature,
                              config.eval_episodes_per_variation if episodes_per_variation is None
                              else episodes_per_variation)


ROW_SPLIT_DEFAULT = "test"
"""How an ``eval.jsonl`` row without ``split`` is read: kits before the dev split evaluated on test only."""


def row_split(row: dict) -> str:
    """The split an evaluation row was played on (older rows: test)."""
    return row.get("split", ROW_SPLIT_DEFAULT)


def evaluation_specs(task: Task, episodes_per_variation: int, *, split: str, seed: int, purpose: str,
                     iteration: int) -> list[EpisodeSpec]:
    """Every protocol variation of ``split`` of ``task``, ``episodes_per_variation`` times, seeded
    by (run seed, purpose, iteration, variation, index)."""
    return episode_specs(task.name, task.eval_variations(split), episodes_per_variation, run_seed=seed,
                         purpose=purpose, iteration=iteration)


def evaluate(policy: Policy, pool: EpisodePool, task: Task, rollout: RolloutConfig, *, split: str, seed: int,
             iteration: int, temperature: float, episodes_per_variation: int, progress: bool = False,
             warn_short_context: bool = True, world: World = SINGLE) -> dict:
    """Results of ``policy`` on ``split`` of ``task`` (no memory is ever consulted), drawn from the
    episode seeds of (``seed``, ``eval-<split>``, ``iteration``). The trainer, which has said
    already whether its context is short, passes ``warn_short_context=False``. Data-parallel, each
    rank plays its block of the episodes and every rank gets the row of all of them (episodes are
    seeded by what they are, so the row is the one-process row)."""
    check_choice("split", split, EVAL_SPLITS)
    if warn_short_context:
        warn_if_context_is_short(policy.tokenizer, task.name, rollout, with_tips=False)
    specs = evaluation_specs(task, episodes_per_variation, split=split, seed=seed, purpose=f"eval-{split}",
                             iteration=iteration)
    share = world.block(len(specs))
    trajectories = world.gather(collect_rollouts(policy, pool, specs[share.start: share.stop],
                                                 replace(rollout, temperature=temperature), retrieve=None,
                                                 progress=progress), f"the {split} evaluation")
    return {"task": task.name, "split": split, "seed": seed, "episodes_per_variation": episodes_per_variation,
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
    policy = load_policy(config.policy, config.rollout)
    policy.for_training()  # never load into merged weights
    set_peft_model_state_dict(policy.model, run.read_adapter(checkpoint))
    return policy, config


def final_evaluation(run_path: str | Path, policy: Policy | None = None, progress: bool = False, *,
                     split: str = "test", temperature: float | None = None, episodes_per_variation: int | None = None,
                     make_pool: PoolFactory | None = None) -> dict:
    """The evaluation of a run on ``split`` after its last iteration: the recorded one when
    ``eval.jsonl`` has one of this split with these settings, else played now (with ``policy`` or
    the run's latest adapter, on ``make_pool``'s environments) and appended as ``kind: final``.

    ``temperature`` and ``episodes_per_variation`` default to the config's ``eval_temperature``
    and ``eval_episodes_per_variation``; the row records both and its split (a row without one is
    a test row), so a dev row is never returned for test. The test split is played once per run:
    asking for it again under other settings raises ConfigError before anything loads."""
    check_choice("split", split, EVAL_SPLITS)
    run = RunDir(run_path)
    config = run.config()
    settings = evaluation_settings(config, temperature, episodes_per_variation)
    finals = [row for row in run.read_evals() if row.get("iteration") == config.iterations and row_split(row) == split]
    for row in finals:
        if evaluation_settings(config, row.get("temperature"), row.get("episodes_per_variation")) == settings:
            return row
    played_test = [row for row in run.read_evals() if row_split(row) == "test" and row.get("kind") == "final"]
    if split == "test" and played_test:
        row = played_test[-1]
        raise ConfigError(f"split: the test split of {run.path.name} was played already (after iteration "
                          f"{row.get('iteration')}, temperature {row.get('temperature')}, "
                          f"{row.get('episodes_per_variation')} episode(s) per variation); a run's test split is "
                          "played once: evaluate other settings on 'dev'")
    if policy is None:
        policy, _ = load_trained_policy(run.path)
    with open_pool(make_pool, config.n_envs, config.env) as pool:
        result = evaluate(policy, pool, get_task(config.task), config.rollout, split=split, seed=config.seed,
                          iteration=config.iterations, progress=progress, **settings.row())
    record = {"iteration": config.iterations, "kind": "final", "temperature": settings.temperature, **result}
    run.append_eval(record)
    return record


def memory_adaptation(policy: Policy, pool: EpisodePool, task: Task, rollout: RolloutConfig, memory_config: MemoryConfig,
                      iterations: int, *, split: str, seed: int, temperature: float, episodes_per_variation: int,
                      progress: bool = False) -> list[dict]:
    """Frozen weights, growing memory: iteration 0 plays the variations of ``split`` without tips,
    every later iteration retrieves the tips written after the earlier ones (the OOD protocol, and
    the memory-only baseline: EMPO²'s memory without training). No weight is ever updated. On test, the iterations
    together are the one test evaluation of what is evaluated. Each row records its split, seed and
    the end reasons of its episodes."""
    check_choice("split", split, EVAL_SPLITS)
    warn_if_context_is_short(policy.tokenizer, task.name, rollout)
    memory = TipMemory(memory_config)
    settings = replace(rollout, temperature=temperature)
    history = []
    for iteration in range(iterations):
        use_memory = iteration > 0
        specs = evaluation_specs(task, episodes_per_variation, split=split, seed=seed, purpose=f"memory-{split}",
                                 iteration=iteration)
        trajectories = collect_rollouts(policy, pool, specs, settings,
                                        retrieve=memory.tips_for if use_memory else None, progress=progress,
                                        tips=memory_config)
        for trajectory in played(trajectories):
            memory.add_episode(trajectory, trajectory.tip, iteration=iteration)
        stats = summarize(trajectories)
        history.append({"iteration": iteration, "split": split, "seed": seed, "used_memory": use_memory,
                        "episodes": stats.episodes, "return_mean": stats.return_mean, "return_se": stats.return_se,
                        "success_rate": stats.success_rate, "tips_shown_mean": stats.tips_shown_mean,
                        "memory_entries": len(memory), "end_reasons": stats.end_reasons,
                        "per_variation": stats.per_variation})
    base = history[0]["return_mean"]
    for row in history:
        row["improvement_percent"] = 100.0 * (row["return_mean"] - base) / abs(base) if base else float("nan")
    return history


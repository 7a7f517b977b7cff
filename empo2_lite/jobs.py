"""The jobs that the command line, ``make demo`` and the notebooks share: one function each.

A command line command parses its arguments and calls one of these; a notebook cell calls the same
one; ``make demo`` chains three. So a run trained in a notebook, evaluated from a terminal and
plotted by the demo went through one piece of code for each step, and every job is restartable in
the same way (finished work is read back, not redone):

* ``train``: start, resume or skip (when done) the run named in a config; ``resume`` by name.
* ``train_runs``: several runs (an ablation grid, EMPO² against GRPO) one after another.
* ``final_evaluation``: a run's test-split evaluation after its last iteration (``evaluation.py``).
* ``baseline``: the naive, memory-only, Reflexion or Retrospex baseline of a preset's base model on a task, or
  a warm start played without RL ("warm-start").
* ``warm_start``: behaviour cloning on a task's train gold paths (``warm_start/``), a run folder.
* ``make_critic``: the Retrospex baseline's IQL critic on a task's train split
  (``baselines/critic_job.py``), a folder that ``baseline("retrospex", critic=...)`` plays with.
* ``adapt_ood``: a trained run adapting to another task with frozen weights, saved with the run.
* ``all_figures``: every figure a set of runs supports, optionally saved as PNG + PDF.

Jobs that play episodes take ``make_pool`` (without one, ``env.pool.open_pool`` opens ``EnvPool``,
one ScienceWorld JVM per slot), so tests run them on a pool replaying recorded transitions;
training also takes ``trainer_class`` (tests pass one that writes checkpoints without a model).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empo2_lite.config import (BASELINE_KINDS, BASELINES, REFLEXION_BASELINE, RETROSPEX_BASELINE, UNSCREENED_PRESETS,
                               WARM_START_PRESETS,
                               WARM_START_BASELINE,
                               ConfigError,
                               TrainConfig, apply_overrides, check_choice, config_json, preset, run_format_error)
from empo2_lite.config.overrides import flatten
from empo2_lite.baselines import LEGACY_RETROSPEX_ROW, ReflexionSettings, RetrospexSettings, evaluation_episodes
from empo2_lite.baselines.critic_job import critic_folder, make_critic
from empo2_lite.env.pool import PoolFactory, open_pool
from empo2_lite.evaluation import evaluation_settings, final_evaluation, row_split
from empo2_lite.experiments import run_status
from empo2_lite.policy.loading import UNTESTED_WARNING
from empo2_lite.runs import RunDir
from empo2_lite.tasks import EVAL_SPLITS, get_task
from empo2_lite.warm_start.job import warm_start, warm_start_folder

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from empo2_lite.policy.loading import Policy

__all__ = ["Trained", "adapt_ood", "all_figures", "baseline", "final_evaluation", "resume", "train",
           "train_runs", "warm_start", "make_critic", "BASELINES"]


# -- training ----------------------------------------------------------------------------------
@dataclass
class Trained:
    """What ``train`` did with a run."""

    run: RunDir
    outcome: str
    """"trained" (from scratch), "resumed" (from its last checkpoint) or "skipped (done)"."""
    history: list[dict[str, Any]] = field(default_factory=list)
    """The metrics of the iterations trained by this call."""
    policy: Policy | None = None
    """The trained policy when this call loaded one (evaluating it then needs no second load)."""


def _settings_changed(saved: TrainConfig, wanted: TrainConfig) -> list[str]:
    """The settings (other than the number of iterations) in which ``wanted`` differs from the
    config a run was started with, as ``key: old -> new``."""
    old = flatten(json.loads(config_json(replace(saved, iterations=wanted.iterations))))
    new = flatten(json.loads(config_json(wanted)))
    return _changes(old, new, sorted(set(old) | set(new)))


def _changes(old: dict[str, Any], new: dict[str, Any], keys: Iterable[str]) -> list[str]:
    """Each of ``keys`` whose value differs between ``old`` and ``new``, as ``key: old -> new``."""
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in keys if old.get(key) != new.get(key)]


def _check_same_run(run: RunDir, config: TrainConfig) -> None:
    """Refuse to continue a run under other settings: resuming would mix two experiments in one
    folder, and skipping it would report results of settings the caller did not ask for."""
    saved = run.config()
    error = run_format_error(saved, str(run.path))
    if error is not None:
        raise error
    changed = _settings_changed(saved, config)
    if changed:
        raise ConfigError(f"name: run {config.name!r} ({run.path}) was started with other settings "
                          f"({'; '.join(changed)}); choose another name, or delete the folder to start again")


def warn_if_unscreened(preset_name: str) -> None:
    """The kit's warning for settings that have never run (``UNTESTED_WARNING``) when the job's
    preset is one of ``UNSCREENED_PRESETS``, with why: its results need checking before they are trusted."""
    if preset_name in UNSCREENED_PRESETS:
        warnings.warn(UNTESTED_WARNING.format(field="preset", value=preset_name,
                                              why=UNSCREENED_PRESETS[preset_name]), stacklevel=3)


def warn_without_warm_start(config: TrainConfig) -> None:
    """A preset chosen for training from a warm start (``WARM_START_PRESETS``) trained without one:
    its settings and costs were measured from one, so say how to make it."""
    variations = WARM_START_PRESETS.get(config.preset)
    if variations and not config.policy.init_adapter:
        warnings.warn(f"preset {config.preset!r} was chosen for training from a warm start of {variations} train "
                      f"variations, and this run has none: make one with `warm-start --preset {config.preset} --task "
                      f"{config.task} --variations {variations}`, then train with `--from` its run", stacklevel=3)


def train(config: TrainConfig, *, progress: bool = True, make_pool: PoolFactory | None = None,
          trainer_class: type | None = None) -> Trained:
    """Bring the run named ``config.name`` to ``config.iterations`` iterations: start it, resume it
    from its last checkpoint, or skip it when it is done. Raising ``iterations`` extends a finished
    run; any other changed setting is refused before a model loads. Episodes are played on
    ``make_pool``'s environments when given, else on the trainer's own ScienceWorld JVMs."""
    if trainer_class is None:
        from empo2_lite.trainer import Trainer as trainer_class
    config.validate()
    warn_if_unscreened(config.preset)
    warn_without_warm_start(config)
    run = RunDir.named(config.name)
    status = run_status(run, config)
    if status != "new" and run.exists():
        _check_same_run(run, config)
    if status == "done":
        return Trained(run, "skipped (done)")
    trainer = trainer_class(config, run, resume=status == "partial")
    if make_pool is None:
        history = trainer.train(progress=progress)
    else:
        with make_pool(config.n_envs, config.env) as pool:
            history = trainer.train(progress=progress, pool=pool)
    return Trained(run, "resumed" if status == "partial" else "trained", history, trainer.policy)


def resume(name: str, iterations: int | None = None, *, progress: bool = True, make_pool: PoolFactory | None = None,
           trainer_class: type | None = None) -> Trained:
    """Continue the run called ``name`` with its own settings (to ``iterations`` if given)."""
    config = RunDir.existing(name, "--resume").config()
    if iterations:
        config.iterations = iterations
    return train(config, progress=progress, make_pool=make_pool, trainer_class=trainer_class)


def train_runs(configs: Iterable[TrainConfig], *, progress: bool = True, make_pool: PoolFactory | None = None,
               trainer_class: type | None = None) -> dict[str, str]:
    """Train every config in turn (a grid, or algorithms side by side); each run's outcome by name."""
    return {config.name: train(config, progress=progress, make_pool=make_pool, trainer_class=trainer_class).outcome
            for config in configs}


# -- evaluation --------------------------------------------------------------------------------
def baseline(kind: str, task_name: str, preset_name: str, *, trials: int = 3, temperature: float | None = None,
             episodes_per_variation: int | None = None, make_pool: PoolFactory | None = None,
             progress: bool = True, name: str | None = None, overrides: dict[str, Any] | None = None,
             split: str = "test", seed: int = 0, from_run: str | None = None, critic: str | None = None,
             retrospex: RetrospexSettings | None = None) -> dict[str, Any]:
    """The paper's baselines with the preset's base model (no adapter), on ``task_name``'s
    ``split`` (test by default; dev for choices): "naive" plays it once; "memory-only" plays
    ``trials`` times with EMPO²'s growing tip memory and no training (its row's return is the last
    trial's, every trial under ``trials``, together its one evaluation of the split); "reflexion"
    plays up to ``trials`` attempts per variation with written reflections, and the same attempts
    without them as its control (``baselines/reflexion.py``; its row's return is the best of the
    trials, labelled ``measure``); "retrospex" plays the base model's candidate actions re-ranked by
    the critic folder ``critic`` (a name under the runs root, made by ``make_critic`` for this task
    and model), and the same episodes with the actor alone choosing as its control
    (``baselines/retrospex.py``); with ``from_run`` its actor is that warm start, the kit's
    counterpart of the original's imitation-learned actor. Tokens are
    drawn from episode seeds of ``seed``, so seeds give independent evaluations. "warm-start" plays
    like "naive" with the warm start ``from_run`` (a run name) merged into the base model
    (``policy.init_adapter``): what the warm start does before any RL.

    Saved in the run folder ``name`` (default ``baseline-<kind>-<task>``, ``-s<seed>`` appended for
    a seed other than 0): a ``config.json`` saying what was evaluated (the preset's config with
    ``baseline`` and ``seed`` set, so the results layer, ``plot`` and ``report`` read it like a run
    of that seed) and the result appended to its ``eval.jsonl``; returned."""
    from empo2_lite.evaluation import evaluate, memory_adaptation
    from empo2_lite.policy import load_policy

    check_choice("baseline", kind, BASELINE_KINDS)
    check_choice("split", split, EVAL_SPLITS)
    if kind == WARM_START_BASELINE and from_run is None:
        raise ConfigError(f"from_run: the {WARM_START_BASELINE} baseline needs the warm-start run it plays")
    if from_run is not None and kind not in (WARM_START_BASELINE, RETROSPEX_BASELINE):
        raise ConfigError(f"from_run: only the {WARM_START_BASELINE} baseline (which plays it) and {RETROSPEX_BASELINE} "
                          f"(as its imitation-learned actor) start from a warm start, not {kind}")
    if (kind == RETROSPEX_BASELINE) != (critic is not None):
        raise ConfigError(f"critic: the {RETROSPEX_BASELINE} baseline, and only it, needs a critic folder (--critic)")
    if from_run is not None:
        overrides = {**(overrides or {}), "policy.init_adapter": warm_start_folder(from_run)}
    warn_if_unscreened(preset_name)
    task = get_task(task_name)
    run = RunDir.named(name or f"baseline-{kind}-{task.name}" + (f"-s{seed}" if seed else ""))
    config = apply_overrides(preset(preset_name), {**(overrides or {}), "task": task_name, "baseline": kind,
                                                   "seed": seed, "name": run.path.name})
    config.validate()
    if run.exists() and (run.config().baseline, run.config().seed) != (kind, seed):
        raise ConfigError(f"name: {run.path} already holds a run that is not a {kind} baseline of seed {seed}; "
                          "choose another name")
    settings = evaluation_settings(config, temperature, episodes_per_variation)
    reflexion_settings = ReflexionSettings(trials=trials)
    if kind == REFLEXION_BASELINE:
        reflexion_settings.validate()
    retrospex = retrospex or RetrospexSettings()
    critic_path = None
    if kind == RETROSPEX_BASELINE:
        retrospex.validate()
        critic_path = critic_folder(critic, task.name, config.policy.model)
    played_as = {**settings.row(), **(reflexion_settings.row() if kind == REFLEXION_BASELINE else {}),
                 **({**retrospex.row(), "retrospex_critic": critic} if kind == RETROSPEX_BASELINE else {})}
    if run.exists():
        recorded = recorded_baseline(run, config, split, played_as,
                                     trials if kind in ("memory-only", REFLEXION_BASELINE) else None)
        if recorded is not None:
            return recorded
    if progress and kind in (REFLEXION_BASELINE, RETROSPEX_BASELINE):
        _say_estimate(kind, config, task.eval_variations(split), settings.episodes_per_variation,
                      evaluation_episodes(kind, trials, retrospex.candidates))
    policy = load_policy(replace(config.policy, lora_rank=0), config.rollout,
                         tips=config.memory if kind == "memory-only" else None)
    with open_pool(make_pool, config.n_envs, config.env) as pool:
        if kind == REFLEXION_BASELINE:
            from empo2_lite.baselines.reflexion import reflexion

            result = reflexion(policy, pool, task, config.rollout, reflexion_settings, split=split, seed=seed,
                               progress=progress, **settings.row())
        elif kind == RETROSPEX_BASELINE:
            from empo2_lite.baselines.critic import load_critic
            from empo2_lite.baselines.retrospex import retrospex as play_retrospex

            result = {**play_retrospex(policy, pool, task, config.rollout, retrospex, load_critic(critic_path)[0],
                                       split=split, seed=seed, progress=progress, **settings.row()),
                      "retrospex_critic": critic}
        elif kind == "memory-only":
            history = memory_adaptation(policy, pool, task, config.rollout, config.memory, trials, split=split,
                                        seed=seed, progress=progress, **settings.row())
            last = history[-1]
            result = {"task": task.name, "split": split, "seed": seed,
                      "episodes_per_variation": settings.episodes_per_variation,
                      "episodes": last["episodes"], "return_mean": last["return_mean"], "return_se": last["return_se"],
                      "success_rate": last["success_rate"], "end_reasons": last["end_reasons"],
                      "per_variation": last["per_variation"], "trials": history}
        else:
            result = evaluate(policy, pool, task, config.rollout, split=split, seed=seed, iteration=0,
                              progress=progress, **settings.row())
    result = {"baseline": kind, "preset": preset_name, "temperature": settings.temperature, **result}
    if not run.exists():
        run.start(config)
    run.append_eval({"iteration": 0, "kind": "final", **result})
    return result


def _say_estimate(kind: str, config: TrainConfig, variations, episodes_per_variation: int, factor: int) -> None:
    """Print, before a costly baseline plays, its minutes of decoding: its naive evaluations' worth of
    episodes at the preset's measured seconds per episode (nothing when the preset has no cost).
    Not a bound on the whole piece: Reflexion's reflections or Retrospex's critic scoring, the model's
    load and the JVMs' start come on top (Reflexion on cpu-solve: ~12 min said, 19.6 min measured;
    docs/results-cpu-solve.md)."""
    from empo2_lite.lab.cost_estimates import scaled_seconds

    episodes = len(variations) * episodes_per_variation * factor
    seconds = scaled_seconds(config, 0, episodes)
    extra = {REFLEXION_BASELINE: "the reflections, ", RETROSPEX_BASELINE: "the critic's scoring, "}.get(kind, "")
    if seconds is not None:
        print(f"{kind}: ~{seconds / 60:.0f} min of decoding ({episodes} episodes' worth at {config.preset}'s measured "
              f"seconds per evaluation episode; {extra}the model's load and the JVMs' start come on top)",
              flush=True)


def recorded_baseline(run: RunDir, config: TrainConfig, split: str, settings: dict[str, Any],
                      trials: int | None) -> dict[str, Any] | None:
    """The row ``run`` recorded for ``split`` with ``settings`` (and ``trials`` for memory-only),
    else None when the split may still be played. Refused in one line, naming the folder and what
    differs: other settings of the baseline's config (the folder says what was evaluated), or the
    test split asked again under other evaluation settings (a baseline plays it once, like a run)."""
    differing = _settings_changed(run.config(), config)
    if differing:
        raise ConfigError(f"name: {run.path} holds this baseline under other settings ({'; '.join(differing)}); "
                          "choose another name")

    def played_with(row: dict[str, Any]) -> dict[str, Any]:
        return {**{key: row.get(key, LEGACY_RETROSPEX_ROW.get(key) if "retrospex_candidates" in row else None)
                   for key in settings},
                **({"trials": len(row.get("trials", []))} if trials is not None else {})}

    wanted = {**settings, **({"trials": trials} if trials is not None else {})}
    rows = [row for row in run.read_evals() if row_split(row) == split]
    for row in rows:
        if played_with(row) == wanted:
            return {key: value for key, value in row.items() if key not in ("iteration", "kind")}
    if split == "test" and rows:
        played = played_with(rows[-1])
        differs = "; ".join(_changes(played, wanted, wanted))
        raise ConfigError(f"split: {run.path} played the test split already under other settings ({differs}); "
                          "a test split is played once: evaluate other settings on 'dev'")
    return None


def adapt_ood(name: str, task_name: str, iterations: int, *, temperature: float | None = None,
              episodes_per_variation: int | None = None, make_pool: PoolFactory | None = None,
              progress: bool = True, split: str = "test") -> list[dict[str, Any]]:
    """The run ``name`` (trained on task A) adapting to ``task_name``'s ``split`` with frozen
    weights and a growing memory (the paper's OOD protocol; its iterations together are the one
    evaluation of that split), saved as the run's ``ood-<task>.jsonl`` and returned; an adaptation
    already saved with the same settings is read back instead (rows without a split are test), and
    one saved under other settings is refused in one line: the file holds one adaptation per task,
    and replacing a test adaptation would play that test split twice."""
    from empo2_lite.evaluation import load_trained_policy, memory_adaptation

    run = RunDir.existing(name, "--run")
    task = get_task(task_name)
    config = run.config()
    check_choice("split", split, EVAL_SPLITS)
    settings = evaluation_settings(config, temperature, episodes_per_variation).row()
    saved = run.read_ood().get(task.name, [])
    if saved:
        played = {"split": row_split(saved[0]), "iterations": len(saved), **{key: saved[0].get(key) for key in settings}}
        wanted = {"split": split, "iterations": iterations, **settings}
        if played == wanted:
            return saved
        differs = "; ".join(_changes(played, wanted, wanted))
        raise ConfigError(f"--task: {run.path} holds an adaptation to {task.name} under other settings ({differs}); "
                          "an adaptation is its split's one evaluation and is never replaced"
                          + (" (delete its ood file to replace a dev adaptation)" if played["split"] == "dev" else ""))
    policy, config = load_trained_policy(run.path)
    with open_pool(make_pool, config.n_envs, config.env) as pool:
        history = memory_adaptation(policy, pool, task, config.rollout, config.memory, iterations, progress=progress,
                                    split=split, seed=config.seed, **settings)
    run.write_ood(task.name, [{**row, **settings} for row in history])
    return run.read_ood()[task.name]


# -- figures -----------------------------------------------------------------------------------
CURVE_METRICS = ("charts/return_mean", "charts/success_rate", "charts/novelty_mean", "charts/steps_mean",
                 "charts/tips_shown_mean", "losses/masked_fraction", "losses/clip_fraction",
                 "diagnostics/step_group_share")
"""The metrics drawn as learning curves (each where the runs logged it: the step-group share only
where a GiGPO algorithm ran)."""


def all_figures(runs: Iterable[str | Path], out: str | Path | None = None) -> dict[str, Figure]:
    """Every figure the runs' files support, by name (learning curves, phase times, memory growth,
    the paper comparison for the runs' tasks, test return by algorithm, the algorithms beside the
    untrained baselines when the runs hold them, OOD curves); with ``out``,
    each is also saved there as ``<name>.png`` and ``<name>.pdf``."""
    from empo2_lite import plots, results

    runs = list(runs)
    metrics, evals, ood = results.load_metrics(runs), results.load_evals(runs), results.load_ood(runs)
    figures: dict[str, Figure] = {}
    for metric in CURVE_METRICS:
        if metric in metrics and metrics[metric].notna().any():
            figures[f"curve_{metric.split('/')[1]}"] = plots.learning_curves(metrics, metric=metric)
    if any(column.startswith("time/") for column in metrics):
        figures["phase_breakdown"] = plots.phase_breakdown(metrics)
    if "memory/entries" in metrics:
        figures["memory_growth"] = plots.memory_growth(metrics)
    tasks = sorted(set(metrics["task"]) | set(evals["task"]))
    figures["paper_comparison"] = plots.paper_comparison(results.paper_table(), evals, tasks=tasks or None)
    if len(evals):
        figures["ablation_algo"] = plots.ablation_bars(evals, "algo")
    if len(evals) and "naive" in set(evals["algo"]) and len(metrics):
        figures["learning_comparison"] = plots.learning_comparison(metrics, evals)
    if len(ood):
        figures["ood_curves"] = plots.ood_curves(ood)
    if out is not None:
        for name, figure in figures.items():
            plots.save_figure(figure, Path(out) / name)
    return figures

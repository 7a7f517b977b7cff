"""Command line: ``python -m empo2_lite COMMAND``.

Commands: ``tasks`` (the paper's 18 tasks and the variation ids the protocol uses), ``play`` (an
episode from given actions or the gold sequence), ``train`` (EMPO² or GRPO from a preset, with
overrides, or resumed), ``eval`` (a trained run or a baseline, naive, memory-only, reflexion or
retrospex, on the test split), ``critic`` (Retrospex's offline critic for a task), ``ood`` (a trained run adapting to a new task with memory only), ``ablate`` (a grid of runs,
restartable), ``plot`` and ``report`` (figures and a table from saved runs), ``warm-start``
(behaviour cloning on a task's train gold paths, for small models) and ``demo`` (the main job: a
short EMPO² training run, evaluated and plotted). Each command parses its arguments and calls
one job of ``jobs.py``, the functions that ``make demo`` and the notebooks call too.

Bad input exits with status 2 and one line naming the field and the valid choices. Every command
checks all of its settings (preset, overrides, task, run names, counts) with the torch-free
``config`` package before it imports ``jobs`` (and with it torch and transformers, seconds of
loading), so a typo costs well under a second; what only a loaded run can tell comes later.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from empo2_lite import tasks as task_registry
from empo2_lite.baselines import CriticSettings
from empo2_lite.config import (ALGORITHMS, BASELINE_KINDS, ENVIRONMENT_NAMES, PRESETS, RETROSPEX_BASELINE, WARM_START_BASELINE, ConfigError,
                               TrainConfig,
                               apply_overrides, check_choice, check_integer, load_overrides_file, parse_set_arguments,
                               preset, run_format_error)
from empo2_lite.distributed import refuse_other_commands
from empo2_lite.errors import KitError
from empo2_lite.env.scienceworld.tasks import OOD_PAIRS
from empo2_lite.runs import RunDir, runs_root
from empo2_lite.study.cli import add_study_parser
from empo2_lite.warm_start import WarmStartSettings

WARM_DEFAULTS = WarmStartSettings()
CRITIC_DEFAULTS = CriticSettings()

if TYPE_CHECKING:
    from empo2_lite.env.episode import EpisodeStart, StepResult

DEFAULT_SAMPLE_RUNS = "cpu-study/main"
"""The shipped sample-run group that ``plot`` and ``report`` show when no ``--runs`` is given."""
RUNS_HELP = f"folder holding run folders, at any depth (default: data/sample_runs/{DEFAULT_SAMPLE_RUNS})"


def _print_start(start: EpisodeStart) -> None:
    print(f"== {start.task}, variation {start.variation} (at most {start.max_steps} steps)")
    print(textwrap.indent(start.task_description.strip(), "   "))
    print(textwrap.indent(start.observation.strip(), "   "))


def _print_step(result: StepResult) -> None:
    said = f"   (policy said: {result.raw_action!r})" if result.action != result.raw_action.strip() else ""
    print(f"[{result.info['steps']:3d}] > {result.action}{said}")
    lines = result.observation.strip().splitlines()
    shown = lines[:6] + ([f"... ({len(lines) - 6} more lines)"] if len(lines) > 6 else [])
    print(textwrap.indent("\n".join(shown), "      "))
    end = f"  [episode over: {result.info['end_reason']}]" if result.done else ""
    print(f"      reward {result.reward:+d}   score {result.score}{end}")


def cmd_tasks(args: argparse.Namespace) -> int:
    """Print an environment's tasks (the paper's 18 ScienceWorld tasks by default) as a table, or as JSON."""
    from empo2_lite.env.spec import environment

    rows = environment(args.env).tasks()
    print(json.dumps(task_registry.as_json_rows(rows), indent=1) if args.json else task_registry.format_table(rows))
    if not args.json:
        others = [name for name in ENVIRONMENT_NAMES if name != args.env]
        print(f"\n(other environments: {', '.join(others)}; `tasks --env NAME` lists theirs)")
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    """Play the gold sequence or ``--actions`` through the adapter, printing each step; or, with
    ``--run``, let a trained run's policy play and print its transcript."""
    task = task_registry.get_task(args.task)
    if args.max_steps is not None:
        check_integer("--max-steps", args.max_steps, minimum=1)
    if args.run:
        return _watch(args, task)
    if args.memory or args.untrained or args.warm_start_only:
        raise ConfigError("--memory/--untrained/--warm-start-only: only with --run NAME (they choose how the run's "
                          "policy plays)")
    split = args.split or "train"
    task.check_variation(args.variation, split)
    actions = None if args.gold else [a.strip() for a in (args.actions or "").split(";") if a.strip()]
    if actions is not None and not actions:
        raise ConfigError("actions: no action given; pass them separated by ';', e.g. --actions \"look around;inventory\"")
    from empo2_lite.config import EnvConfig
    from empo2_lite.env.play import play_actions
    from empo2_lite.env.spec import environment_of

    owner = environment_of(task.name)
    with owner.open_game(EnvConfig(name=owner.name)) as game:
        episode = play_actions(game, task.name, args.variation, actions, max_steps=args.max_steps,
                               on_start=_print_start, on_step=_print_step)
    summary = episode.summary()
    print(json.dumps(summary) if args.json else
          f"score {summary['score']}  success {summary['success']}  steps {summary['steps']}  done {summary['done']}")
    return 0


def _watch(args: argparse.Namespace, task: task_registry.Task) -> int:
    """``play --run``: one episode by the run's policy (trained or not, with or without memory)."""
    if args.memory and (args.untrained or args.warm_start_only):
        raise ConfigError("--memory: the memory belongs to the trained run; leave out --untrained/--warm-start-only "
                          "to use it")
    if args.untrained and args.warm_start_only:
        raise ConfigError("--untrained, --warm-start-only: choose one (the base model, or its warm start)")
    task.check_variation(args.variation, args.split or "test")
    _check_temperature(args.temperature)
    run = RunDir.existing(args.run, "--run")
    from empo2_lite.watch import transcript, watch_run

    trajectory = watch_run(run.path, task.name, args.variation, split=args.split or "test", untrained=args.untrained,
                           warm_start_only=args.warm_start_only,
                           with_memory=args.memory, temperature=args.temperature, seed=args.seed)
    played = ("untrained base model" if args.untrained else "its warm start alone (no RL)" if args.warm_start_only
              else "trained adapter")
    print(f"{args.run}: {played}"
          f"{' with its memory' if args.memory else ''}")
    print(transcript(trajectory))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the agent the CPU solve study trained against the untrained model, and one
    iteration of its training (a GPU: gpu-learn briefly; EMPO2_SMOKE=1: the tiny stand-in). With
    ``--learn``: train that agent again from scratch."""
    from empo2_lite.demo import run_demo, run_learn_demo
    from empo2_lite.lab.switches import smoke_mode

    if args.learn:
        run_learn_demo(smoke=smoke_mode())
    else:
        run_demo(smoke=smoke_mode())
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train with a preset (plus overrides), or resume a run; every setting is checked first.
    Under ``torchrun --nproc_per_node N`` each rank joins the process group first (distributed.py)
    and rank 0 alone prints."""
    from empo2_lite.distributed import check_world_fits, close_world, init_world, world_size_from_environment

    if args.resume:
        _check_resume(args)
        config = RunDir.existing(args.resume, "--resume").config()
    else:
        config = _training_config(args)
    if world_size_from_environment() > 1:  # before any rank joins a process group or loads a model
        check_world_fits(config.variations_per_iteration, config.group_size, config.n_envs,
                         world_size_from_environment())
    world = init_world(config.policy.device)
    try:
        from empo2_lite import jobs

        trained = jobs.resume(args.resume, args.iterations) if args.resume else jobs.train(config)
    finally:
        close_world(world)
    if not world.writes:
        return 0
    metrics = trained.run.read_metrics()
    print(f"{trained.run.path.name}: {trained.outcome}, {iterations_line(metrics, trained.run.config().iterations)}")
    print(f"run folder: {trained.run.path}  (metrics.jsonl, memory.jsonl, checkpoints/, tensorboard/)")
    return 0


def _training_config(args: argparse.Namespace) -> TrainConfig:
    """``train``'s preset with its file, flags and ``--set`` overrides applied, validated."""
    overrides = load_overrides_file(args.config) if args.config else {}
    for key in ("task", "algo", "iterations", "name"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    overrides.update(parse_set_arguments(args.set))
    if args.from_run:
        overrides["policy.init_adapter"] = _warm_start_path(args.from_run)
    config = apply_overrides(preset(args.preset), overrides)
    config.validate()
    return config


def _check_resume(args: argparse.Namespace) -> None:
    """``train --resume``: the run exists, its config can be trained on, and nothing else is asked
    of it (a run resumes with its own settings; only ``--iterations`` may extend it)."""
    given = [flag for flag, value in (("--task", args.task), ("--algo", args.algo), ("--name", args.name),
                                      ("--config", args.config), ("--set", args.set), ("--from", args.from_run))
             if value]
    if given:
        raise ConfigError(f"{'/'.join(given)}: not with --resume (a run resumes with its own settings; "
                          "only --iterations may change)")
    run = RunDir.existing(args.resume, "--resume")
    config = run.config()
    if args.iterations is not None:
        check_integer("--iterations", args.iterations, minimum=1)
        config.iterations = args.iterations
    error = run_format_error(config, str(run.path))
    if error is not None:
        raise error
    config.validate()


def _warm_start_path(name: str) -> str:
    """``--from NAME``: the folder of a finished warm start, checked torch-free."""
    run = RunDir.existing(name, "--from")
    if run.read_warm_start() is None or run.latest_checkpoint() is None:
        raise ConfigError(f"--from: run {name!r} ({run.path}) is not a finished warm start (make one with `warm-start`)")
    return str(run.path)


def cmd_warm_start(args: argparse.Namespace) -> int:
    """Behaviour cloning on the task's train gold paths into the preset's LoRA adapter (``warm_start/``)."""
    from empo2_lite.warm_start import clone_variations

    task = task_registry.get_task(args.task)
    settings = WarmStartSettings(variations=args.variations, epochs=args.epochs, learning_rate=args.lr,
                                 seed=args.seed)
    settings.validate()
    clone_variations(task, settings.variations)
    check_choice("--preset", args.preset, PRESETS)
    overrides = parse_set_arguments(args.set)
    from empo2_lite.warm_start.job import warm_start_config

    config = warm_start_config(args.preset, task.name, settings, args.name, overrides)
    from empo2_lite import jobs

    done = jobs.warm_start(args.preset, task.name, settings, name=config.name, overrides=overrides)
    record = done.record
    print(f"{done.run.path.name}: {done.outcome}; {len(record['cloned'])} gold episodes of train variations "
          f"{[row['variation'] for row in record['cloned']]}, {record['action_tokens']} action tokens, "
          f"{settings.epochs} epochs, final loss {record['final_loss']:.3f}, {record['minutes']:.1f} min")
    print(f"run folder: {done.run.path}  (warm_start.json, metrics.jsonl: the loss, checkpoints/: the adapter); "
          f"RL from it: train --from {done.run.path.name}; alone: eval --baseline warm-start --from {done.run.path.name}")
    return 0


def cmd_critic(args: argparse.Namespace) -> int:
    """Retrospex's IQL critic for a task, from its train split (and a run's rollouts with --from)."""
    task = task_registry.get_task(args.task)
    check_choice("--preset", args.preset, PRESETS)
    settings = CriticSettings(gold_variations=args.gold_variations, untrained_episodes=args.untrained_episodes,
                              max_minutes=args.max_minutes, max_updates=args.max_updates, seed=args.seed)
    settings.validate()
    if args.from_run:
        RunDir.existing(args.from_run, "--from")
    from empo2_lite import jobs

    record = jobs.make_critic(args.preset, task.name, settings, from_run=args.from_run, name=args.name)
    name = args.name or f"critic-{task.name}"
    data = ", ".join(f"{source}: {row['episodes']} episodes, {row['steps']} steps" for source, row in record["data"].items())
    print(f"{name}: {record['updates']} IQL updates in {record['minutes']['training']:.1f} min "
          f"(data {record['minutes']['data']:.1f} min; {data}); final Q loss {record['curve'][-1]['q_loss']:.4f}")
    print(f"critic folder: {runs_root() / name}  (critic.json, critic.safetensors, steps.jsonl, figures/critic_curve.png); "
          f"play it: eval --baseline retrospex --critic {name} --task {task.name} --preset {args.preset}")
    return 0


def iterations_line(metrics: list[dict], iterations: int) -> str:
    """'iteration 3/3: return 4.0, success 0.00, mode plain' (1-based, as every table and figure)."""
    if not metrics:
        return f"0/{iterations} iterations"
    last = metrics[-1]
    return (f"iteration {last['iteration'] + 1}/{iterations}: return {last['charts/return_mean']:.1f}, "
            f"success {last['charts/success_rate']:.2f}, mode {last['mode']}")


def _check_evaluation_flags(args: argparse.Namespace) -> None:
    """Reject an unusable --episodes-per-variation or --temperature before any model or JVM starts."""
    if args.episodes_per_variation is not None:
        check_integer("--episodes-per-variation", args.episodes_per_variation, minimum=1)
    _check_temperature(args.temperature)
    check_choice("--split", args.split, task_registry.EVAL_SPLITS)


def _check_temperature(temperature: float | None) -> None:
    """A --temperature the config's ``eval_temperature`` would accept, or none (the config's)."""
    if temperature is not None and not 0 <= temperature <= 5:
        raise ConfigError(f"--temperature: {temperature!r} is not allowed; it must be in [0, 5]")


def cmd_eval(args: argparse.Namespace) -> int:
    """Evaluation of a trained run, or of a baseline (naive / memory-only / reflexion) of a preset's base model,
    on the test split (once per run) or the dev split; episodes per variation and temperature come
    from the run's or preset's config."""
    if args.baseline is not None:
        check_choice("--baseline", args.baseline, BASELINE_KINDS)
    if bool(args.run) == bool(args.baseline):
        raise ConfigError("eval: give either --run NAME or --baseline naive|memory-only|reflexion (with --task and "
                          "--preset), --baseline retrospex --critic FOLDER, or --baseline warm-start --from WARM_RUN")
    if (args.baseline == RETROSPEX_BASELINE) != bool(args.critic):
        raise ConfigError(f"--critic: give it with --baseline {RETROSPEX_BASELINE}, and only then (the critic that re-ranks)")
    if args.candidates_by is not None:
        from empo2_lite.baselines import RETROSPEX_SEARCHES

        if args.baseline != RETROSPEX_BASELINE:
            raise ConfigError(f"--candidates-by: give it with --baseline {RETROSPEX_BASELINE}, and only then")
        check_choice("--candidates-by", args.candidates_by, RETROSPEX_SEARCHES)
    if args.baseline == WARM_START_BASELINE and not args.from_run:
        raise ConfigError(f"--from: --baseline {WARM_START_BASELINE} needs it (the warm start played)")
    if args.from_run and args.baseline not in (WARM_START_BASELINE, RETROSPEX_BASELINE):
        raise ConfigError(f"--from: give it with --baseline {WARM_START_BASELINE} (the warm start played) or "
                          f"{RETROSPEX_BASELINE} (its actor), and only then")
    if args.from_run:
        warm = RunDir.existing(args.from_run, "--from").config()
        _warm_start_path(args.from_run)
        args.task, args.preset = args.task or warm.task, args.preset or warm.preset
    if args.baseline and not args.task:
        raise ConfigError("--task: a baseline needs a task (see `tasks`)")
    if args.baseline and not args.preset:
        raise ConfigError(f"--preset: a baseline needs the preset whose model and settings it uses; "
                          f"choose one of: {', '.join(PRESETS)}")
    if args.run and args.preset:
        raise ConfigError("--preset: only for baselines (a run is evaluated with its own config)")
    if args.run and (args.name or args.set):
        raise ConfigError("--name/--set: only for baselines (a run is evaluated with its own config, into its folder)")
    if args.run and args.task:
        raise ConfigError("--task: only for baselines (a run is evaluated on its own task; for another, see `ood`)")
    if args.run and args.seed is not None:
        raise ConfigError("--seed: only for baselines (a run is evaluated with its own seed)")
    _check_evaluation_flags(args)
    settings = {"temperature": args.temperature, "episodes_per_variation": args.episodes_per_variation,
                "split": args.split}
    if args.baseline:
        task_registry.get_task(args.task)
        check_integer("--trials", args.trials, minimum=1)
        seed = args.seed or 0
        overrides = parse_set_arguments(args.set)
        named = {"name": args.name} if args.name else {}
        checked = apply_overrides(preset(args.preset), {**overrides, "task": args.task, "baseline": args.baseline,
                                                        "seed": seed, **named})
        checked.validate()
        if args.critic:
            from empo2_lite.baselines.critic_job import critic_folder

            critic_folder(args.critic, checked.task, checked.policy.model)
        from empo2_lite import jobs
        from empo2_lite.baselines import RetrospexSettings

        retrospex = RetrospexSettings(search=args.candidates_by or RetrospexSettings.search)
        result = jobs.baseline(args.baseline, args.task, args.preset, trials=args.trials, name=args.name, seed=seed,
                               overrides=overrides, from_run=args.from_run, critic=args.critic, retrospex=retrospex,
                               **settings)
    else:
        run = RunDir.existing(args.run, "--run")
        from empo2_lite import jobs

        result = jobs.final_evaluation(run.path, progress=True, **settings)
    print(json.dumps(result, indent=1))
    return 0


def cmd_ood(args: argparse.Namespace) -> int:
    """OOD adaptation of a trained run to task B: frozen weights, memory only (the paper's OOD protocol)."""
    if args.pair:
        if args.pair not in OOD_PAIRS:
            raise ConfigError(f"--pair: {args.pair!r} is not allowed; choose one of: {', '.join(OOD_PAIRS)}")
        args.task = OOD_PAIRS[args.pair][1]
    if not args.run or not args.task:
        raise ConfigError("ood: give --run NAME (trained on task A) and --task B (or --pair NAME)")
    _check_evaluation_flags(args)
    check_integer("--iterations", args.iterations, minimum=1)
    task_registry.get_task(args.task)
    RunDir.existing(args.run, "--run")
    from empo2_lite import jobs

    history = jobs.adapt_ood(args.run, args.task, args.iterations, temperature=args.temperature,
                             episodes_per_variation=args.episodes_per_variation, split=args.split)
    for row in history:
        gain = row["improvement_percent"]
        print(f"iteration {row['iteration'] + 1:2d}  memory {'on ' if row['used_memory'] else 'off'}  "
              f"return {row['return_mean']:7.1f} +- {row['return_se']:.1f} (se)  improvement "
              + ("n/a" if gain != gain else f"{gain:+.0f}%"))
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    """Expand --grid into runs and train them one after another (finished runs are skipped)."""
    from empo2_lite.experiments import expand_grid, parse_grid_arguments

    overrides = {key: getattr(args, key) for key in ("task", "iterations", "name") if getattr(args, key) is not None}
    overrides.update(parse_set_arguments(args.set))
    configs = expand_grid(apply_overrides(preset(args.preset), overrides), parse_grid_arguments(args.grid))
    from empo2_lite import jobs

    print(f"{len(configs)} runs: " + ", ".join(config.name for config in configs))
    for name, outcome in jobs.train_runs(configs).items():
        print(f"{name}: {outcome}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Every figure that the runs under --runs support, as PNG + PDF in --out."""
    from empo2_lite import results

    runs = results.find_runs(args.runs or results.sample_runs_dir(DEFAULT_SAMPLE_RUNS))
    from empo2_lite import jobs

    figures = jobs.all_figures(runs, out=args.out)
    print(f"{len(figures)} figures (PNG + PDF) in {args.out}: {', '.join(figures)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """A Markdown table of the runs' test returns beside the paper's."""
    from empo2_lite import results

    runs = results.find_runs(args.runs or results.sample_runs_dir(DEFAULT_SAMPLE_RUNS))
    print(results.report_markdown(results.load_evals(runs), results.paper_table()))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """The algorithms of --algos (EMPO² vs GRPO by default) over seeds plus the untrained baselines,
    each seed of each: a study plan without a screening (``study/compare.py``), then the table (and
    how often tips reached a prompt) and the figure under ``--out``."""
    from empo2_lite import comparison  # torch-free; run_comparison checks its settings before any model loads
    from empo2_lite.study import compare

    check_choice("--preset", args.preset, PRESETS)
    if args.task:
        task_registry.get_task(args.task)
    root = Path(args.out) if args.out else runs_root() / args.preset
    table = compare.run_comparison(root, args.preset, args.seeds, task=args.task, only=args.only,
                                   trials=args.trials, algos=args.algos or compare.COMPARED,
                                   baselines=args.baselines or compare.BASELINES, critic=args.critic)
    if not args.only:
        from empo2_lite import plots, results

        runs = results.find_runs(root)
        plots.save_figure(plots.learning_comparison(results.load_metrics(runs), results.load_evals(runs)),
                          root / "learning_comparison")
        print(f"figure: {root / 'learning_comparison.png'}")
    print(table.round(1).to_string(index=False))
    for line in comparison.tips_lines(table):
        print(line)
    return 0


def _add_evaluation_flags(parser: argparse.ArgumentParser) -> None:
    """The overrides of the config's evaluation settings shared by ``eval`` and ``ood``."""
    parser.add_argument("--episodes-per-variation", type=int, default=None,
                        help="episodes per test variation (default: the config's eval_episodes_per_variation; "
                             "the paper: 4)")
    parser.add_argument("--temperature", type=float, default=None,
                        help="sampling temperature (default: the config's eval_temperature, 0.4)")
    parser.add_argument("--split", default="test",
                        help="variations played: test (default; a run's test split is played once) or dev "
                             "(for choices: settings, screening, checkpoints)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="python -m empo2_lite", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    tasks = commands.add_parser("tasks", help="list an environment's tasks (default: the paper's 18 ScienceWorld tasks)")
    tasks.add_argument("--env", default="scienceworld", choices=ENVIRONMENT_NAMES, help="the environment (default %(default)s)")
    tasks.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    tasks.set_defaults(handler=cmd_tasks)

    play = commands.add_parser("play", help="play one episode: gold actions, given actions, or a trained run's policy")
    play.add_argument("--task", required=True, help="task name (see `tasks`)")
    play.add_argument("--variation", required=True, type=int, help="ScienceWorld variation id")
    play.add_argument("--split", default=None, choices=task_registry.SPLITS,
                      help="split the variation belongs to (default: train; test with --run)")
    source = play.add_mutually_exclusive_group(required=True)
    source.add_argument("--gold", action="store_true", help="play ScienceWorld's gold action sequence")
    source.add_argument("--actions", help="actions separated by ';'")
    source.add_argument("--run", help="let this run's trained policy play (prints its transcript)")
    play.add_argument("--memory", action="store_true", help="with --run: show the run's stored tips, as in training")
    play.add_argument("--untrained", action="store_true",
                      help="with --run: the base model without the adapter (and without a warm start)")
    play.add_argument("--warm-start-only", action="store_true",
                      help="with --run: the warm start the run started from, without its RL adapter")
    play.add_argument("--temperature", type=float, default=None, help="with --run: default the run's eval temperature")
    play.add_argument("--seed", type=int, default=0, help="with --run: sampling seed (same seed, same draws)")
    play.add_argument("--max-steps", type=int, default=None, help="step cap (default: the task's)")
    play.add_argument("--json", action="store_true", help="end with one JSON line: score, success, steps, done")
    play.set_defaults(handler=cmd_play)

    train = commands.add_parser("train", help="train a policy with EMPO² or GRPO")
    train.add_argument("--preset", default="cpu-smoke", help=", ".join(PRESETS))
    train.add_argument("--task", help="task name (see `tasks`)")
    train.add_argument("--algo", metavar="ALGO", help="the algorithm (default: the preset's, empo2), which sets p, "
                       "write_tips and memory.novelty_coef as it needs; one of: "
                       + "; ".join(f"{entry.name} ({entry.summary})" for entry in ALGORITHMS.values()))
    train.add_argument("--iterations", type=int, help="number of iterations")
    train.add_argument("--name", help="run folder name (an unfinished run of that name and settings resumes)")
    train.add_argument("--config", help="YAML file of overrides")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a setting, e.g. --set update.learning_rate=1e-5 (repeatable)")
    train.add_argument("--resume", metavar="RUN", help="continue the named run from its latest checkpoint")
    train.add_argument("--from", dest="from_run", metavar="WARM_RUN",
                       help="start from this warm start (sets policy.init_adapter; see `warm-start`)")
    train.set_defaults(handler=cmd_train)

    evaluation = commands.add_parser("eval", help="evaluate a trained run or a baseline on the test split")
    evaluation.add_argument("--run", help="run name (its latest checkpoint is evaluated)")
    evaluation.add_argument("--baseline", metavar="KIND",
                            help="the base model without training: " + ", ".join(BASELINE_KINDS)
                                 + " (warm-start: with the warm start of --from)")
    evaluation.add_argument("--from", dest="from_run", metavar="WARM_RUN",
                            help="--baseline warm-start: the warm-start run to play; --baseline retrospex: its actor "
                                 "(task and preset default to the warm start's)")
    evaluation.add_argument("--critic", metavar="FOLDER",
                            help="--baseline retrospex: the critic folder (a name under the runs root; see `critic`)")
    evaluation.add_argument("--candidates-by", metavar="{beam,sample}",
                            help="--baseline retrospex: how the actor proposes its 6 candidates: beam (default, the "
                                 "original's top 6 of a beam search) or sample (6 independent samples at the "
                                 "evaluation temperature, duplicates merged)")
    evaluation.add_argument("--task", help="baselines (required): the task to play")
    evaluation.add_argument("--preset", help="baselines (required): the preset whose model and settings they use: "
                            + ", ".join(PRESETS))
    evaluation.add_argument("--trials", type=int, default=3,
                            help="memory-only: trials (memory iterations); reflexion: attempts per test variation, "
                                 "fewer once one scores 100 (default 3; the paper does not say its number)")
    evaluation.add_argument("--seed", type=int, default=None,
                            help="baselines: the seed their episodes draw from (default 0; `compare` plays one per "
                                 "training seed)")
    evaluation.add_argument("--name", help="baselines: run folder to save into (default baseline-<kind>-<task>, "
                                                 "-s<seed> appended for a seed other than 0)")
    evaluation.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                            help="baselines: change a preset setting first (e.g. rollout.demonstrations=0)")
    _add_evaluation_flags(evaluation)
    evaluation.set_defaults(handler=cmd_eval)

    ood = commands.add_parser("ood", help="OOD adaptation: a trained run on a new task with memory only")
    ood.add_argument("--run", help="run trained on task A")
    ood.add_argument("--task", help="task B")
    ood.add_argument("--pair", help="one of the paper's pairs (sets --task to its B): " + ", ".join(OOD_PAIRS))
    ood.add_argument("--iterations", type=int, default=10, help="adaptation iterations; the first has no memory")
    _add_evaluation_flags(ood)
    ood.set_defaults(handler=cmd_ood)

    ablate = commands.add_parser("ablate", help="run an ablation grid, one run after another")
    ablate.add_argument("--preset", default="cpu-smoke")
    ablate.add_argument("--task")
    ablate.add_argument("--iterations", type=int)
    ablate.add_argument("--name", default="ablation", help="prefix of the run names")
    ablate.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                        help="values to try, e.g. --grid p=0.1,0.25 --grid seed=0,1 (repeatable)")
    ablate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="fixed overrides")
    ablate.set_defaults(handler=cmd_ablate)

    plot = commands.add_parser("plot", help="figures (PNG + PDF) from saved runs")
    plot.add_argument("--runs", help=RUNS_HELP)
    plot.add_argument("--out", default="figures", help="where to write the figures")
    plot.set_defaults(handler=cmd_plot)

    report = commands.add_parser("report", help="Markdown table of runs vs the paper")
    report.add_argument("--runs", help=RUNS_HELP)
    report.set_defaults(handler=cmd_report)

    compare = commands.add_parser("compare", help="algorithms (default EMPO² vs GRPO) over seeds with the untrained "
                                                  "baselines, as data/sample_runs/cpu-learn was made")
    compare.add_argument("--preset", default="cpu-learn", help="the preset every piece uses")
    compare.add_argument("--task", help="task (default: the preset's)")
    compare.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                         help="seeds: each algorithm is trained, and each baseline evaluated, once per seed")
    compare.add_argument("--algos", nargs="+", metavar="ALGO",
                         help="the algorithms trained, each once per seed (default: empo2 grpo, the paper's Table 1 "
                              f"pair; any of: {', '.join(ALGORITHMS)})")
    compare.add_argument("--baselines", nargs="+", metavar="BASELINE",
                         help="the untrained references, each once per seed (default: naive memory-only; any of: "
                              "naive, memory-only, reflexion, retrospex)")
    compare.add_argument("--critic", metavar="FOLDER", help="--baselines retrospex: the critic folder (see `critic`)")
    compare.add_argument("--trials", type=int, default=3, help="memory-only: trials; reflexion: attempts per variation")
    compare.add_argument("--out", help="folder of the experiment (default: <runs root>/<preset>, e.g. runs/cpu-learn)")
    compare.add_argument("--only", nargs="+", help="play only these pieces (e.g. naive-s0 grpo-s1), for parallel "
                                                   "processes; a plain run afterwards collects")
    compare.set_defaults(handler=cmd_compare)

    critic = commands.add_parser("critic", help="Retrospex's offline IQL critic for a task (its train split)")
    critic.add_argument("--preset", default="cpu-learn", help="the preset whose model and prompt play the data: "
                        + ", ".join(PRESETS))
    critic.add_argument("--task", required=True, help="task name (see `tasks`)")
    critic.add_argument("--from", dest="from_run", metavar="RUN",
                        help="also learn from this run's training episodes (its steps.jsonl)")
    critic.add_argument("--gold-variations", type=int, default=CRITIC_DEFAULTS.gold_variations,
                        help="train variations whose gold paths are data (default %(default)s)")
    critic.add_argument("--untrained-episodes", type=int, default=CRITIC_DEFAULTS.untrained_episodes,
                        help="episodes of the untrained model on train variations (default %(default)s)")
    critic.add_argument("--max-minutes", type=float, default=CRITIC_DEFAULTS.max_minutes,
                        help="cap of the IQL training time (default %(default)s)")
    critic.add_argument("--max-updates", type=int, default=CRITIC_DEFAULTS.max_updates,
                        help="cap of the IQL updates (default %(default)s)")
    critic.add_argument("--seed", type=int, default=0, help="networks, batches and untrained episodes")
    critic.add_argument("--name", help="folder to save into (default critic-<task>)")
    critic.set_defaults(handler=cmd_critic)

    warm = commands.add_parser("warm-start", help="behaviour cloning on a task's train gold paths (small models)")
    warm.add_argument("--preset", default="cpu-learn", help="the preset whose model, LoRA and prompt it uses: "
                      + ", ".join(PRESETS))
    warm.add_argument("--task", required=True, help="task name (see `tasks`)")
    warm.add_argument("--variations", type=int, default=WARM_DEFAULTS.variations,
                      help="train variations cloned: the first ones after those RL trains on (default %(default)s)")
    warm.add_argument("--epochs", type=int, default=WARM_DEFAULTS.epochs, help="passes over them (default %(default)s)")
    warm.add_argument("--lr", type=float, default=WARM_DEFAULTS.learning_rate,
                      help="AdamW learning rate of the LoRA weights (default %(default)s)")
    warm.add_argument("--seed", type=int, default=0, help="adapter initialisation and episode order")
    warm.add_argument("--name", help="run folder name (default warm-start-<task>)")
    warm.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                      help="change a preset setting first (e.g. rollout.demonstrations=0)")
    warm.set_defaults(handler=cmd_warm_start)

    add_study_parser(commands)

    demo = commands.add_parser("demo", help="the main job (make demo): a trained agent against the untrained model")
    demo.add_argument("--learn", action="store_true",
                      help="train the demo's agent again from scratch (make demo-learn; its minutes are printed first)")
    demo.set_defaults(handler=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors print one line and return 2."""
    args = build_parser().parse_args(argv)
    try:
        refuse_other_commands(args.command)
        return args.handler(args)
    except (task_registry.UnknownTaskError, KitError, FileNotFoundError) as error:
        # Under torchrun every rank runs the same checks: rank 0 alone says what they found.
        if not isinstance(error, ConfigError) or os.environ.get("RANK", "0") == "0":
            print(f"empo2-lite: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("empo2-lite: interrupted; a run keeps its files up to its last checkpoint "
              "(continue it with `train --resume NAME`)", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The main job behind ``make demo``: show an agent that RL taught to solve a task, and the loop that did it.

* On a CPU: the agent the CPU solve study trained (issue #36; ``data/sample_runs/cpu-solve/agent``:
  a warm start and a compared run on top of it) plays the dev variations of its task beside the
  untrained model and the warm start alone, on the same variations and episode seeds; then one
  iteration of the same training, from the warm start, shows the loop (rollouts, tips, the update).
  Training the agent took the study tens of minutes; the demo takes about ten (the estimate is
  printed first). ``make demo-learn`` trains the whole thing from scratch instead.
* ``EMPO2_SMOKE=1`` (what CI runs): the same demo with the tiny random model, whose "agent" is a
  two-variation warm start and one iteration made on the spot, so CI checks the path a user runs.
* A CUDA GPU: the ``gpu-learn`` preset for 3 iterations (the embedded SmolLM2-135M in bf16: no
  download; unscreened on a GPU so far, see docs/gpu-study.md).

Everything goes under ``runs/`` (``demo-solve``, ``demo-smoke``, ``demo``); running the demo again
reads back what it played and trained, an interrupted run resumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from empo2_lite import jobs
from empo2_lite.config import TrainConfig, apply_overrides, preset
from empo2_lite.env.pool import PoolFactory, shared_pool
from empo2_lite.lab.cost_estimates import estimate
from empo2_lite.lab.switches import AUTO_PRESET, preset_for_this_machine
from empo2_lite.palette import style
from empo2_lite.results import counted, sample_runs_dir
from empo2_lite.runs import RunDir, runs_root
from empo2_lite.shipped_agent import install_agent, read_agent, ship_agent
from empo2_lite.tasks import get_task

DEMO_TASK = "find-animal"
"""The GPU demo's task (``gpu-learn`` trains it from scratch)."""
SOLVE_NAME, LEARN_NAME, SMOKE_NAME = "demo-solve", "demo-learn", "demo-smoke"
SMOKE_TASK = "find-non-living-thing"


def shipped_agent_dir() -> Path:
    """Where the kit keeps the agent the CPU solve study trained."""
    return sample_runs_dir("cpu-solve") / "agent"


def demo_config(smoke: bool, cuda: bool | None = None) -> TrainConfig:
    """The config of the demo's training run on this machine (``cuda``: whether a CUDA GPU is here;
    None asks torch): the smoke agent's iteration, or the GPU demo's run (the CPU demo's iteration
    is the shipped agent's own config, see ``solve_demo``)."""
    if smoke:
        # 3 steps: the tiny byte-level model's prompts are thousands of tokens, so each step is costly.
        return apply_overrides(preset("cpu-smoke"), {"name": f"{SMOKE_NAME}-source-trained", "task": SMOKE_TASK,
                                                      "iterations": 1, "rollout.max_steps": 3})
    name = preset_for_this_machine(AUTO_PRESET, cuda_available=cuda)
    return apply_overrides(preset(name), {"name": "demo", "task": DEMO_TASK, "iterations": 3, "eval_every": 0})


@dataclass
class SolveDemo:
    """What ``solve_demo`` played: the three policies on dev, and the one iteration trained."""

    agent: dict[str, Any]
    rows: list[tuple[str, str, dict[str, Any]]]
    """Label, palette name and dev evaluation row of the untrained model, the warm start alone and
    the study's agent, in that order."""
    iteration: dict[str, Any]
    """The metrics of the demo's own training iteration."""
    figure: Path
    folder: Path


def agent_label(agent: dict[str, Any]) -> str:
    """The trained agent as the table and the figure name it."""
    return f"{style(agent['algo']).label} seed {agent['seed']} (warm start + RL)"


def agent_origin(agent: dict[str, Any]) -> str:
    """Where the agent comes from and what it cost, as the demo prints it."""
    minutes = agent["warm_start_minutes"] + agent["training_minutes"]
    return (f"adapter trained by the study ({minutes:.0f} min on 2 cores: a warm start of "
            f"{counted(agent['warm_start_variations'], 'train variation')}, then "
            f"{counted(agent['iterations'], 'iteration')} of {style(agent['algo']).label})")


def _count(row: dict[str, Any]) -> str:
    return f"{round(row['success_rate'] * row['episodes'])} of {row['episodes']}"


def print_table(rows: list[tuple[str, str, dict[str, Any]]], split: str) -> None:
    """Success first, then return, one line per policy."""
    width = max(len(label) for label, _, _ in rows) + 2
    print(f"\n{'':{width}}{split + ' success':>14}   {split} return (se)")
    for label, _, row in rows:
        print(f"{label:{width}}{_count(row):>14}   {row['return_mean']:6.1f} ({row['return_se']:.1f})")


def solve_demo(agent_folder: str | Path, *, name: str = SOLVE_NAME, progress: bool = True,
               make_pool: PoolFactory | None = None) -> SolveDemo:
    """Play the shipped agent ``agent_folder``, its warm start alone and the untrained model on its
    task's dev variations (same episode seeds and settings), train one iteration from the warm start,
    print the table and save the figure; all under the runs root's ``name``."""
    from empo2_lite.evaluation import final_evaluation

    agent = read_agent(agent_folder)
    warm, trained = install_agent(agent_folder, name)
    config = trained.config()
    task = get_task(config.task)
    dev = task.eval_variations("dev")
    episodes = len(dev) * config.eval_episodes_per_variation
    print(f"empo2-lite demo: the agent the CPU solve study trained, against the untrained model, on "
          f"{config.task}'s {counted(len(dev), 'dev variation')}; then one training iteration to show the loop.\n"
          f"The agent: {agent_origin(agent)}.")
    print("Estimate: " + estimate(config, iterations=1, eval_episodes=3 * episodes))
    # The references play under the trained run's own prompt, step cap and evaluation settings.
    same = {**{f"rollout.{key}": value for key, value in asdict(config.rollout).items()},
            "eval_temperature": config.eval_temperature, "n_envs": config.n_envs,
            "eval_episodes_per_variation": config.eval_episodes_per_variation}
    played = dict(split="dev", seed=config.seed, make_pool=make_pool, progress=progress, overrides=same)
    rows = [("untrained", "naive",
             jobs.baseline("naive", config.task, config.preset, name=f"{name}-untrained", **played)),
            ("warm start alone (no RL)", "warm-start",
             jobs.baseline("warm-start", config.task, config.preset, name=f"{name}-warm-start-alone",
                           from_run=str(warm.path.relative_to(runs_root())), **played)),
            (agent_label(agent), config.algo,
             final_evaluation(trained.path, split="dev", progress=progress, make_pool=make_pool))]
    print_table(rows, "dev")
    one = apply_overrides(config, {"name": f"{name}-one-iteration", "iterations": 1})
    print(f"\nOne iteration of {style(config.algo).label} from the warm start, as the study trained it "
          f"({counted(one.variations_per_iteration * one.group_size, 'episode')}):")
    jobs.train(one, make_pool=make_pool, progress=progress)
    iteration = RunDir.named(one.name).read_metrics()[-1]
    print(f"  training success {iteration['charts/success_rate']:.2f}, return {iteration['charts/return_mean']:.1f} "
          f"(the study's first iteration: {trained.read_metrics()[0]['charts/success_rate']:.2f}, "
          f"{trained.read_metrics()[0]['charts/return_mean']:.1f})")
    from empo2_lite.plots import demo_figure, save_figure

    folder = runs_root() / name
    drawn = demo_figure(rows, trained.read_metrics(), iteration, agent_origin(agent))
    figure = save_figure(drawn, folder / "figures" / "demo.png")[0]
    print(f"\nfigure: {figure}\nunder {runs_root()}: {name}/ (the agent: warm-start/, trained/), {name}-untrained/, "
          f"{name}-warm-start-alone/, {name}-one-iteration/")
    return SolveDemo(agent, rows, iteration, figure, folder)


def learn_demo(agent_folder: str | Path, *, name: str = LEARN_NAME, played_as: str = SOLVE_NAME,
               progress: bool = True, make_pool: PoolFactory | None = None) -> dict[str, Any]:
    """``make demo-learn``: make the shipped agent again from scratch (its warm start, then its
    training run, with the settings recorded in ``agent_folder``), evaluate it on dev and print it
    beside the shipped agent's dev numbers when ``make demo`` has played them (under the runs root's
    ``played_as``); the runs go under ``name``. Returns the dev row."""
    from empo2_lite.evaluation import final_evaluation
    from empo2_lite.warm_start import WarmStartSettings
    from empo2_lite.warm_start.job import warm_start

    agent = read_agent(agent_folder)
    shipped = RunDir(Path(agent_folder) / "trained")
    warm_record = RunDir(Path(agent_folder) / "warm-start").read_warm_start() or {}
    warm_config = RunDir(Path(agent_folder) / "warm-start").config()
    minutes = agent["warm_start_minutes"] + agent["training_minutes"]
    task = get_task(agent["task"])
    print(f"empo2-lite demo-learn: {style(agent['algo']).label} on {agent['task']} from scratch as the CPU solve "
          "study trained it: "
          f"a warm start of {counted(agent['warm_start_variations'], 'train variation')}, then "
          f"{counted(agent['iterations'], 'iteration')} ({minutes:.0f} minutes on the study's 2 cores), then the "
          f"{counted(len(task.dev_variations), 'dev variation')}.")
    warmed = warm_start(agent["preset"], agent["task"], WarmStartSettings(**warm_record["settings"]),
                        name=f"{name}-warm-start", variations=warm_record["variations_asked"],
                        overrides={f"rollout.{key}": value for key, value in asdict(warm_config.rollout).items()},
                        progress=progress)  # its own one JVM: a shared pool has one size
    config = apply_overrides(shipped.config(), {"name": f"{name}-trained",
                                                "policy.init_adapter": str(warmed.run.path.resolve())})
    trained = jobs.train(config, make_pool=make_pool, progress=progress)
    row = final_evaluation(trained.run.path, split="dev", progress=progress, make_pool=make_pool)
    compared = [("trained now", agent["algo"], row)]
    demo_copy = RunDir(runs_root() / played_as / "trained")
    shipped_dev = [row for row in demo_copy.read_evals() if row.get("split") == "dev"] if demo_copy.exists() else []
    if shipped_dev:
        compared.append(("the shipped agent (make demo)", agent["algo"], shipped_dev[-1]))
    print_table(compared, "dev")
    if not shipped_dev:
        print("(`make demo` plays the shipped agent on the same dev variations, for comparison)")
    return row


def smoke_agent(make_pool: PoolFactory | None = None) -> Path:
    """A stand-in for the shipped agent made with the tiny random model (a warm start of two train
    variations, one iteration on top), shipped into ``runs/demo-smoke/agent`` like the real one."""
    from empo2_lite.warm_start import WarmStartSettings
    from empo2_lite.warm_start.job import warm_start

    out = runs_root() / f"{SMOKE_NAME}-agent"
    if out.exists():
        return out
    config = demo_config(smoke=True)
    warmed = warm_start("cpu-smoke", SMOKE_TASK, WarmStartSettings(variations=2, epochs=2),  # gold paths: 3-7 actions
                        name=f"{SMOKE_NAME}-source-warm-start", overrides={"rollout.max_steps": 10},
                        progress=False)  # its own one JVM: a shared pool has one size
    trained = jobs.train(apply_overrides(config, {"policy.init_adapter": str(warmed.run.path.resolve())}),
                         make_pool=make_pool, progress=False)
    ship_agent(trained.run.path, out, why="the smoke demo's stand-in (tiny random model)")
    return out


def run_learn_demo(smoke: bool) -> dict[str, Any]:
    """``make demo-learn`` for this machine (smoke: the tiny stand-in agent, made again)."""
    with shared_pool() as make_pool:
        if smoke:
            return learn_demo(smoke_agent(make_pool), name=f"{SMOKE_NAME}-learn", played_as=f"{SMOKE_NAME}-play",
                              make_pool=make_pool)
        return learn_demo(shipped_agent_dir(), make_pool=make_pool)


def run_demo(smoke: bool) -> Path:
    """The demo for this machine; returns the folder of what it made."""
    if smoke:
        with shared_pool() as make_pool:
            return solve_demo(smoke_agent(make_pool), name=f"{SMOKE_NAME}-play", make_pool=make_pool).folder
    import torch

    if not torch.cuda.is_available():
        with shared_pool() as make_pool:
            return solve_demo(shipped_agent_dir(), make_pool=make_pool).folder
    return _gpu_demo(demo_config(smoke=False, cuda=True))


def _gpu_demo(config: TrainConfig) -> Path:
    """Train ``gpu-learn`` briefly from scratch, evaluate on test, plot."""
    config.validate()
    episodes = config.variations_per_iteration * config.group_size
    print(f"empo2-lite demo: EMPO² on {config.task} with the {config.preset} preset ({config.policy.model}), "
          f"{counted(config.iterations, 'iteration')} of {counted(episodes, 'episode')}, then a test-split evaluation.")
    print("Estimate: " + estimate(config, eval_episodes=len(get_task(config.task).test_variations)))
    with shared_pool() as make_pool:  # one set of JVMs for training and evaluation
        trained = jobs.train(config, make_pool=make_pool)
        final = jobs.final_evaluation(trained.run.path, trained.policy, progress=True, make_pool=make_pool)
    figures = jobs.all_figures([trained.run.path], out=trained.run.figures)
    print(f"\n{trained.outcome}; test return {final['return_mean']:.1f} over {counted(final['episodes'], 'episode')} "
          f"(the paper's EMPO² reaches 100.0 on {config.task} with Qwen2.5-7B after full training)")
    print(f"run folder: {trained.run.path}\n  metrics.jsonl, eval.jsonl, memory.jsonl, checkpoints/, tensorboard/\n"
          f"  figures/: {', '.join(f'{name}.png' for name in figures)}")
    return trained.run.path

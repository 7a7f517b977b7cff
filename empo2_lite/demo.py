"""The main job behind ``make demo``: train EMPO² briefly, evaluate, plot, say where it all is.

* ``EMPO2_SMOKE=1``: the ``cpu-smoke`` preset (a tiny random model, 2 iterations): the whole
  pipeline in about a minute, which is what CI runs.
* A CUDA GPU: the ``gpu-24gb`` preset for 3 iterations (unverified preset, see docs/hardware.md).
* Otherwise: the ``cpu-demo`` preset (SmolLM2-135M-Instruct on the CPU) for 3 iterations, about
  4 minutes of training and 3 of evaluation on 2 cores (measured: docs/hardware.md).

The run goes to ``runs/demo`` (``runs/demo-smoke`` in smoke mode). Running the demo again reuses
it: a finished run is only re-evaluated if needed and re-plotted, an interrupted one resumes.
"""

from __future__ import annotations

from pathlib import Path

from empo2_lite import plots, results
from empo2_lite.experiments import run_status
from empo2_lite.lab.cost_estimates import estimate
from empo2_lite.runs import RunDir
from empo2_lite.tasks import get_task
from empo2_lite.config import apply_overrides, preset

DEMO_TASK = "find-animal"


def demo_config(smoke: bool, cuda: bool):
    """The demo's TrainConfig for this machine."""
    if smoke:
        return apply_overrides(preset("cpu-smoke"), {"name": "demo-smoke", "task": DEMO_TASK, "iterations": 2})
    name = "gpu-24gb" if cuda else "cpu-demo"
    return apply_overrides(preset(name), {"name": "demo", "task": DEMO_TASK, "iterations": 3, "eval_every": 0})


def run_demo(smoke: bool) -> Path:
    """Train (or resume), evaluate and plot; return the run folder."""
    import torch

    from empo2_lite.evaluation import final_evaluation
    from empo2_lite.trainer import Trainer

    config = demo_config(smoke, torch.cuda.is_available())
    config.validate()
    run = RunDir.named(config.name)
    status = run_status(run, config)
    episodes = config.variations_per_iteration * config.group_size
    print(f"empo2-lite demo: EMPO² on {config.task} with the {config.preset} preset ({config.policy.model}), "
          f"{config.iterations} iterations of {episodes} episodes, then a test-split evaluation.")
    print("Estimate: " + estimate(config, eval_episodes=len(get_task(config.task).test_variations)))
    trainer = Trainer(config, run, resume=status != "new")
    if status != "done":
        trainer.train()
    final_evaluation(run.path, trainer.policy, progress=True)
    metrics, evals = results.load_metrics([run.path]), results.load_evals([run.path])
    figures = {"learning_curve": plots.learning_curves(metrics, title=f"{config.algo} on {config.task}"),
               "phase_breakdown": plots.phase_breakdown(metrics), "memory_growth": plots.memory_growth(metrics),
               "paper_comparison": plots.paper_comparison(results.paper_table(), evals, tasks=[config.task])}
    for name, figure in figures.items():
        plots.save_figure(figure, run.figures / name)
    final = evals.sort_values("iteration").iloc[-1]
    print(f"\ntest return {final['return_mean']:.1f} over {int(final['episodes'])} episodes "
          f"(the paper's EMPO² reaches 100.0 on {config.task} with Qwen2.5-7B after full training)")
    print(f"run folder: {run.path}\n  metrics.jsonl, eval.jsonl, memory.jsonl, checkpoints/, tensorboard/\n"
          f"  figures/: {', '.join(f'{name}.png' for name in figures)}")
    return run.path

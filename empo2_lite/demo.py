"""The main job behind ``make demo``: train EMPO² briefly, evaluate, plot, say where it all is.

* ``EMPO2_SMOKE=1``: the ``cpu-smoke`` preset (a tiny random model, 2 iterations): the whole
  pipeline in about a minute, which is what CI runs.
* A CUDA GPU: the ``gpu-learn`` preset for 3 iterations (the embedded SmolLM2-135M in bf16: no
  download; unscreened on a GPU so far, see docs/gpu-study.md).
* Otherwise: the ``cpu-demo`` preset (SmolLM2-135M-Instruct on the CPU) for 3 iterations, about
  4 minutes of training and 3 of evaluation on 2 cores (measured: docs/hardware.md).

The run goes to ``runs/demo`` (``runs/demo-smoke`` in smoke mode). It chains three jobs of
``jobs.py`` (train, final evaluation, all figures), so running the demo again reuses the run: a
finished run is only re-evaluated if needed and re-plotted, an interrupted one resumes.
"""

from __future__ import annotations

from pathlib import Path

from empo2_lite import jobs
from empo2_lite.config import TrainConfig, apply_overrides, preset
from empo2_lite.env.pool import shared_pool
from empo2_lite.lab.cost_estimates import estimate
from empo2_lite.lab.switches import AUTO_PRESET, preset_for_this_machine
from empo2_lite.results import counted
from empo2_lite.tasks import get_task

DEMO_TASK = "find-animal"


def demo_config(smoke: bool, cuda: bool | None = None) -> TrainConfig:
    """The demo's TrainConfig for this machine (``cuda``: whether a CUDA GPU is here; None asks torch)."""
    if smoke:
        return apply_overrides(preset("cpu-smoke"), {"name": "demo-smoke", "task": DEMO_TASK, "iterations": 2})
    name = preset_for_this_machine(AUTO_PRESET, cuda_available=cuda)
    return apply_overrides(preset(name), {"name": "demo", "task": DEMO_TASK, "iterations": 3, "eval_every": 0})


def run_demo(smoke: bool) -> Path:
    """Train (or resume), evaluate and plot; return the run folder."""
    config = demo_config(smoke)
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

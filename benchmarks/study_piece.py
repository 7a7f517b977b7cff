"""One piece of the GPU study in a process of its own (``gpu_study.py`` runs k at once).

A piece is one of:

* ``train``: a run of the preset with an algorithm, seed and overrides, trained for at most
  ``train_seconds`` (counted from this process's start) and then evaluated once on ``split``: dev
  for the screening, test for the compared runs. A run the clock stops ends at its latest
  checkpoint (``RunDir.end_early``), so that its evaluation, tables and figures say how far it got.
* ``naive``: the untrained model (``jobs.baseline``) on the test split, once per entry of
  ``evaluations`` (a runs root and the overrides it is played with: with and without the
  preset's demonstration).

Why a process per piece: ``study_schedule.py``. The clock is an alarm that raises ``Deadline``, a
BaseException, so that no ``except Exception`` of the kit (the pool turns env failures into ended
episodes) swallows it.

Usage (what the study does): ``python benchmarks/study_piece.py '<spec as JSON>'``; the piece writes
its timings as JSON to ``spec["report"]``: started (the process's start), trained and evaluated
(epoch seconds), the iterations done, whether the clock cut the run, and the seconds of each
iteration's phases.
"""

from __future__ import annotations

import gc
import json
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import psutil

from empo2_lite import jobs
from empo2_lite.comparison import training_config
from empo2_lite.config import apply_overrides
from empo2_lite.evaluation import row_split
from empo2_lite.runs import RunDir, runs_under


class Deadline(BaseException):
    """The piece's training time is up (raised by the alarm in the main thread)."""


def _stop(signum: int, frame: Any) -> None:
    raise Deadline


def iteration_seconds(run: RunDir) -> list[float]:
    """Each finished iteration's phases summed (``time/*`` of ``metrics.jsonl``): its cost without
    the start of the process, the JVMs and the evaluations."""
    return [sum(value for key, value in row.items() if key.startswith("time/")) for row in run.read_metrics()]


def train_piece(spec: dict, started: float) -> dict:
    """Train until done, or until ``train_seconds`` after ``started`` or the epoch second
    ``train_until`` (when given: a phase whose pieces start one after another), whichever comes
    first; then evaluate on ``spec["split"]``."""
    config = apply_overrides(training_config(spec["preset"], spec["algo"], spec["seed"], spec["task"]),
                             {**spec["overrides"], "name": spec["name"]})
    run = RunDir.named(config.name)
    previous = signal.signal(signal.SIGALRM, _stop)
    deadline = min(started + spec["train_seconds"], spec.get("train_until") or math.inf)
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.time(), 1e-3))
    policy, cut = None, False
    try:
        policy = jobs.train(config, progress=False).policy
    except Deadline:
        cut = True
        gc.collect()  # the interrupted trainer's model and caches, before the evaluation loads the model again
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    done = run.end_early() if cut else run.iterations_done()
    report = {"started": started, "trained": time.time(), "iterations": done, "cut": cut,
              "iteration_seconds": iteration_seconds(run)}
    write_report(spec, report)  # what the training cost counts even if the evaluation is cut short
    print(f"{spec['name']}: {done} iteration(s){' (cut by the clock)' if cut else ''}", flush=True)
    if done:  # a recorded evaluation of this iteration and split is returned, not played again
        row = jobs.final_evaluation(run.path, policy, split=spec["split"])
        print(f"{spec['name']}: {spec['split']} return {row['return_mean']:.1f}", flush=True)
    return {**report, "evaluated": time.time()}


def evaluated(run: RunDir, split: str) -> bool:
    """Whether ``run`` already holds an evaluation on ``split``: a study started again on its own
    folder (``--work``) continues where it stopped instead of playing a reference twice (a trained
    piece resumes from its latest checkpoint or is skipped when done, ``jobs.train``, and its
    recorded evaluation is returned, ``jobs.final_evaluation``)."""
    return any(row_split(row) == split for row in run.read_evals())


def write_report(spec: dict, report: dict) -> None:
    """The piece's timings as JSON at ``spec["report"]`` (replaced as the piece goes on)."""
    Path(spec["report"]).write_text(json.dumps(report) + "\n")


def naive_piece(spec: dict, started: float) -> dict:
    """The untrained model on the test split, once per entry of ``spec["evaluations"]``."""
    for evaluation in spec["evaluations"]:
        with runs_under(evaluation["root"]):
            if evaluated(RunDir.named(spec["name"]), "test"):
                print(f"{evaluation['root']}/{spec['name']}: evaluated before", flush=True)
                continue
            row = jobs.baseline("naive", spec["task"], spec["preset"], seed=spec["seed"], name=spec["name"],
                                overrides=evaluation["overrides"], progress=False)
        print(f"{evaluation['root']}/{spec['name']}: test return {row['return_mean']:.1f}", flush=True)
    return {"started": started, "trained": started, "evaluated": time.time()}


def main(argv: list[str]) -> int:
    """Run the piece described by the JSON spec in ``argv[0]``; write its report. Its clock starts
    when the process did (imports included), as the study's schedule counts it."""
    started = psutil.Process().create_time()
    spec = json.loads(argv[0])
    if spec["kind"] == "train":
        with runs_under(spec["root"]):
            report = train_piece(spec, started)
    else:
        report = naive_piece(spec, started)
    write_report(spec, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The kinds of piece a study runs, as a table: what a piece plays, when its results are already on
disk (a resumed study skips it) and how far it got (the progress line).

* ``train``: a run of the preset with an algorithm, seed and overrides, trained for at most
  ``train_seconds`` after its process started (or until the epoch second ``train_until``), then
  evaluated once on ``split``: dev for the screening, test for the compared runs. The clock cuts
  the two differently. A screening run ends at its latest checkpoint (``RunDir.end_early``) and is
  scored there on dev, which may be played again. A compared run is left at its checkpoint,
  untested: every compared run trains the plan's iterations before its test split is played
  once, so a resumed study trains it on and tests it then.
* ``reference``: an untrained reference (``jobs.baseline``: naive, memory-only, or warm-start, the
  warm start ``from_run`` without RL) on the test split, once per entry of ``evaluations`` (a runs
  root and the overrides it is played with: with and without the preset's demonstration).
* ``probe``: the untrained model on the dev split with a task, step cap and demonstrations, one
  episode per variation (``probe.py`` picks the study's task from these).
* ``warm-start``: behaviour cloning of ``variations`` train variations (``warm_start.job``); the
  runs of a candidate with that warm start start from it (``policy.init_adapter``).
* ``ood``: a compared run adapting to a sibling task with frozen weights and a growing memory
  (``jobs.adapt_ood``), its test split played once.

Adding a kind is one ``PieceKind`` entry in ``PIECE_KINDS`` and a builder of its specs in ``phases.py``.

A piece runs in a process of its own (``schedule.py`` says why): ``python -m empo2_lite.study.pieces
'<spec as JSON>'`` writes its timings as JSON to ``spec["report"]`` (started, trained and evaluated
in epoch seconds, the iterations done, whether the clock cut the run, each iteration's seconds).
``compare`` runs the same functions in its own process (``schedule.run_inline``). The clock is an
alarm that raises ``Deadline``, a BaseException, so that no ``except Exception`` of the kit (the
pool turns env failures into ended episodes) swallows it.
"""

from __future__ import annotations

import gc
import json
import math
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empo2_lite.runs import RunDir, runs_under


class Deadline(BaseException):
    """The piece's training time is up (raised by the alarm in the main thread)."""


def _stop(signum: int, frame: Any) -> None:
    raise Deadline


def row_split(row: dict) -> str:
    """The split an evaluation row was played on (rows of older kits: test); ``evaluation.row_split``
    without its imports, so that the orchestrator checks pieces without loading torch."""
    return row.get("split", "test")


def evaluated(run: RunDir, split: str) -> bool:
    """Whether ``run`` already holds an evaluation on ``split``."""
    return any(row_split(row) == split for row in run.read_evals())


def iteration_seconds(run: RunDir) -> list[float]:
    """Each finished iteration's phases summed (``time/*`` of ``metrics.jsonl``): its cost without
    the start of the process, the JVMs and the evaluations."""
    return [sum(value for key, value in row.items() if key.startswith("time/")) for row in run.read_metrics()]


def train_config(spec: dict):
    """The validated config of a ``train`` piece (``comparison.training_config`` with its overrides)."""
    from empo2_lite.comparison import training_config
    from empo2_lite.config import apply_overrides

    return apply_overrides(training_config(spec["preset"], spec["algo"], spec["seed"], spec["task"]),
                           {**spec["overrides"], "name": spec["name"]})


def train_piece(spec: dict, started: float, progress: bool = False, **job_options: Any) -> dict:
    """Train until done, or until ``train_seconds`` after ``started`` or the epoch second
    ``train_until`` (when given: a phase whose pieces start one after another), whichever comes
    first; then evaluate on ``spec["split"]`` (a compared run the clock cut: not yet, see the module
    docstring). ``job_options`` go to the jobs (``make_pool``, ``trainer_class``: tests)."""
    from empo2_lite import jobs

    with runs_under(spec["root"]):
        config = train_config(spec)
        run = RunDir.named(config.name)
        limit = spec.get("train_seconds")
        deadline = min(started + (math.inf if limit is None else limit), spec.get("train_until") or math.inf)
        timed = math.isfinite(deadline)
        if timed:
            previous = signal.signal(signal.SIGALRM, _stop)
            signal.setitimer(signal.ITIMER_REAL, max(deadline - time.time(), 1e-3))
        policy, cut = None, False
        try:
            policy = jobs.train(config, progress=progress, **job_options).policy
        except Deadline:
            cut = True
            gc.collect()  # the interrupted trainer's model and caches, before the evaluation loads the model again
        finally:
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
        ends = not cut or spec["split"] != "test"
        done = run.end_early() if cut and ends else run.iterations_done()
        report = {"started": started, "trained": time.time(), "iterations": done, "cut": cut,
                  "iteration_seconds": iteration_seconds(run)}
        write_report(spec, report)  # what the training cost counts even if the evaluation is cut short
        print(f"{spec['name']}: {done} iteration(s){' (cut by the clock)' if cut else ''}", flush=True)
        if not ends:
            print(f"{spec['name']}: not tested: it trains on to {config.iterations} iterations and is tested when the "
                  "study is run again on its folder", flush=True)
            return report
        if done:  # a recorded evaluation of this iteration and split is returned, not played again
            row = jobs.final_evaluation(run.path, policy, progress=progress, split=spec["split"],
                                        make_pool=job_options.get("make_pool"))
            print(f"{spec['name']}: {spec['split']} return {row['return_mean']:.1f}", flush=True)
    return {**report, "evaluated": time.time()}


def reference_piece(spec: dict, started: float, progress: bool = False, **job_options: Any) -> dict:
    """The untrained model (``spec["baseline"]``) on the test split, once per entry of
    ``spec["evaluations"]``; an entry evaluated before is not played again."""
    from empo2_lite import jobs

    for evaluation in spec["evaluations"]:
        with runs_under(evaluation["root"]):
            if evaluated(RunDir.named(spec["name"]), "test"):
                print(f"{evaluation['root']}/{spec['name']}: evaluated before", flush=True)
                continue
            row = jobs.baseline(spec["baseline"], spec["task"], spec["preset"], seed=spec["seed"], name=spec["name"],
                                trials=spec.get("trials", 3), overrides=evaluation["overrides"], progress=progress,
                                make_pool=job_options.get("make_pool"), from_run=spec.get("from_run"),
                                critic=spec.get("critic"))
        print(f"{evaluation['root']}/{spec['name']}: test return {row['return_mean']:.1f}", flush=True)
    return {"started": started, "trained": started, "evaluated": time.time()}


def probe_piece(spec: dict, started: float, progress: bool = False, **job_options: Any) -> dict:
    """The untrained model (naive) on ``spec["task"]``'s dev split, one episode per variation, at
    ``spec["temperature"]`` (None: the preset's evaluation temperature); a row recorded before with
    the same settings is read back, not played again."""
    from empo2_lite import jobs

    with runs_under(spec["root"]):
        row = jobs.baseline("naive", spec["task"], spec["preset"], seed=spec["seed"], name=spec["name"], split="dev",
                            temperature=spec.get("temperature"), episodes_per_variation=1,
                            overrides=spec["overrides"], progress=progress, make_pool=job_options.get("make_pool"))
    print(f"{spec['name']}: dev return {row['return_mean']:.1f}, success {row['success_rate']:.0%}", flush=True)
    return {"started": started, "trained": started, "evaluated": time.time()}


def warm_start_piece(spec: dict, started: float, progress: bool = False, **job_options: Any) -> dict:
    """A warm start cloning ``spec["variations"]`` train variations of ``spec["task"]``, saved as
    ``spec["root"]/spec["name"]``; a finished one of the same settings is read back."""
    from empo2_lite.warm_start import WarmStartSettings
    from empo2_lite.warm_start.job import warm_start

    with runs_under(spec["root"]):
        done = warm_start(spec["preset"], spec["task"], WarmStartSettings(variations=spec["variations"]),
                          name=spec["name"], overrides=spec["overrides"], make_pool=job_options.get("make_pool"),
                          progress=progress)
    print(f"{spec['name']}: {done.outcome}, {len(done.record['cloned'])} variation(s) cloned", flush=True)
    return {"started": started, "trained": time.time(), "evaluated": time.time()}


def ood_piece(spec: dict, started: float, progress: bool = False, **job_options: Any) -> dict:
    """The compared run ``spec["name"]`` adapting to ``spec["sibling"]`` for ``spec["iterations"]``
    memory iterations on its test split (``jobs.adapt_ood``: one saved with the same settings is
    read back)."""
    from empo2_lite import jobs

    with runs_under(spec["root"]):
        rows = jobs.adapt_ood(spec["name"], spec["sibling"], spec["iterations"], progress=progress,
                              make_pool=job_options.get("make_pool"))
    print(f"{spec['name']} on {spec['sibling']}: returns {[round(row['return_mean'], 1) for row in rows]}", flush=True)
    return {"started": started, "trained": started, "evaluated": time.time()}


def train_done(spec: dict) -> bool:
    """A trained piece is done once its run holds an evaluation on its split."""
    return evaluated(RunDir(Path(spec["root"]) / spec["name"]), spec["split"])


def reference_done(spec: dict) -> bool:
    """A reference piece is done once every folder holds its test evaluation."""
    return all(evaluated(RunDir(Path(entry["root"]) / spec["name"]), "test") for entry in spec["evaluations"])


def probe_done(spec: dict) -> bool:
    """A probe is done once its folder holds a dev evaluation."""
    return evaluated(RunDir(Path(spec["root"]) / spec["name"]), "dev")


def warm_start_done(spec: dict) -> bool:
    """A warm start is done once its record and adapter are saved."""
    run = RunDir(Path(spec["root"]) / spec["name"])
    return run.exists() and run.read_warm_start() is not None and run.latest_checkpoint() is not None


def ood_done(spec: dict) -> bool:
    """An adaptation is done once the run holds all its iterations on the sibling task."""
    run = RunDir(Path(spec["root"]) / spec["name"])
    return run.exists() and len(run.read_ood().get(spec["sibling"], [])) == spec["iterations"]


def one_step(done: Callable[[dict], bool]) -> Callable[[dict], tuple[int, int | None]]:
    """The progress of a piece that is one step: done or not."""
    return lambda spec: (int(done(spec)), 1)


def train_progress(spec: dict) -> tuple[int, int | None]:
    """Iterations finished (lines of ``metrics.jsonl``) and planned (None: it trains until the clock)."""
    planned = None if spec.get("until_the_clock") else spec["overrides"].get("iterations")
    return len(RunDir(Path(spec["root"]) / spec["name"]).read_metrics()), planned


def reference_progress(spec: dict) -> tuple[int, int | None]:
    """Folders evaluated, of all."""
    return (sum(evaluated(RunDir(Path(entry["root"]) / spec["name"]), "test") for entry in spec["evaluations"]),
            len(spec["evaluations"]))


@dataclass(frozen=True)
class PieceKind:
    """One kind of piece: how it plays, when it is done, how far it got."""

    play: Callable[..., dict]
    """(spec, started epoch second, progress=..., **job options) -> its report."""
    done: Callable[[dict], bool]
    """Whether its results are on disk already (a resumed study skips it)."""
    progress: Callable[[dict], tuple[int, int | None]]
    """(steps done, steps planned or None) for the progress line."""
    unit: str
    """What ``progress`` counts."""


PIECE_KINDS: dict[str, PieceKind] = {
    "train": PieceKind(train_piece, train_done, train_progress, "iteration"),
    "reference": PieceKind(reference_piece, reference_done, reference_progress, "folder"),
    "probe": PieceKind(probe_piece, probe_done, one_step(probe_done), "evaluation"),
    "warm-start": PieceKind(warm_start_piece, warm_start_done, one_step(warm_start_done), "warm start"),
    "ood": PieceKind(ood_piece, ood_done, one_step(ood_done), "adaptation"),
}


def write_report(spec: dict, report: dict) -> None:
    """The piece's timings as JSON at ``spec["report"]`` (replaced as the piece goes on; none in process)."""
    if spec.get("report"):
        Path(spec["report"]).write_text(json.dumps(report) + "\n")


def main(argv: list[str]) -> int:
    """Run the piece described by the JSON spec in ``argv[0]``; write its report. Its clock starts
    when the process did (imports included), as the study's schedule counts it."""
    import psutil

    started = psutil.Process().create_time()
    spec = json.loads(argv[0])
    write_report(spec, PIECE_KINDS[spec["kind"]].play(spec, started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The GPU study of issue #27: a learning curve of GRPO, GiGPO and EMPO² with the embedded model on
one card, under the kit's protocol, inside one device call (docs/gpu-study.md).

Within ``budget_s`` seconds counted from ``--started-at`` (the device wrapper's start, so that the
machine's setup counts too), with the plan of ``benchmarks/gpu_study.yaml``:

1. The preset's model is built once (the embedded SmolLM2 from its GGUF) before k processes would
   race to build it.
2. Phase 1, the screening and the references, k pieces at a time (each a process of its own:
   ``study_schedule.py`` runs ``study_piece.py``): per algorithm one run per declared value
   (learning rates 3e-4 and 1e-3), all with the same seed and the same wall seconds, then one
   evaluation on the **dev** split; per seed, the untrained model on the test split, with and
   without the preset's demonstration.
3. The choice: per algorithm, the value of best dev return (ties: the first listed).
4. Phase 2, the compared runs: each algorithm x seed with its value, all for the same number of
   iterations, sized from phase 1's seconds per iteration of the slowest algorithm so that every run
   finishes in the time left (one the clock still stops ends at its last checkpoint; the summary
   says so), then the **test** split, once.
5. ``compare``'s tables (gains over the untrained model paired by test variation, one table per
   reference), every figure of the compared runs (``jobs.all_figures``: ``learning_comparison``,
   the success-rate curve, ...), ``study.json`` and one archive of all run folders without
   checkpoints: ``<out>/gpu-study.tgz`` (in parts when larger than a call brings back). The
   archive is written whatever failed before it.

``--rehearse`` runs the same orchestration on a CPU with the plan's ``rehearse`` block (the tiny
random model of cpu-smoke, EMPO² alone, one seed), in about two minutes::

    bash benchmarks/gpu_study.sh --budget 310              # on the GPU machine: setup, then this
    python benchmarks/gpu_study.py --rehearse --out /tmp/rehearsal
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from model_parts import split_file
from study_schedule import Piece, piece_command, run_pieces

from empo2_lite.comparison import check_comparison, run_name
from empo2_lite.config import ConfigError, apply_overrides, parse_set_arguments, preset
from empo2_lite.config.overrides import flatten
from empo2_lite.errors import KitError

ROOT = Path(__file__).resolve().parents[1]
PLAN = ROOT / "benchmarks" / "gpu_study.yaml"
SCREEN, MAIN = "screen", "main"
"""Folders of the study: the screening runs; the compared runs beside the untrained references."""
SCREEN_ITERATIONS = 1000
"""Iteration cap of a screening run: the clock ends it long before."""
MARGIN = 1.1
"""Phase 1's seconds per iteration and per evaluation are taken 10% longer when phase 2 is sized."""
LARGEST_FILE = 15 * 2**20
"""A device call brings back files of up to 16 MiB (8 of them): a larger archive comes back in parts."""
PEAKS = ("memory/peak_gpu_mb", "memory/peak_rss_mb")
"""Per-iteration peaks in ``metrics.jsonl`` whose maximum over the runs the summary reports."""


@dataclass
class Plan:
    """The study's declared settings (``gpu_study.yaml``; the keys are these fields)."""

    preset: str
    task: str | None
    algos: list[str]
    seeds: list[int]
    screen: dict
    """``setting`` (a ``--set`` key), ``values`` (in order of preference on ties), ``seed``."""
    screen_share: float
    references: dict[str, dict]
    """Folder -> overrides of the untrained model played there on the test split (one per seed)."""
    budget_s: float
    k: int
    pack_reserve_s: float
    eval_reserve_s: float
    overrides: dict
    iterations: int | None = None
    """Iterations of every compared run, fixed in advance (the CPU plan); None: sized from phase 1's
    seconds per iteration so that phase 2 fits the time left (the GPU plan)."""
    name: str = "gpu-study"
    """The study's archive (``<name>.tgz``) and top folder in it."""


def read_plan(path: Path = PLAN, rehearse: bool = False, settings: dict | None = None, **changes: object) -> Plan:
    """The plan in ``path``, its ``rehearse`` block applied when asked, then ``changes`` that are
    not None (``--budget``, ``--k``) and ``settings`` added to every piece's overrides (``--set``),
    checked before anything heavy starts; no task: the preset's."""
    values = yaml.safe_load(path.read_text())
    rehearsal = values.pop("rehearse", {})
    values.update(rehearsal if rehearse else {})
    values.update({key: value for key, value in changes.items() if value is not None})
    try:
        plan = Plan(**values)
    except TypeError as error:
        raise ConfigError(f"{path}: {error}") from None
    plan.overrides = {**plan.overrides, **(settings or {})}
    check_plan(plan)
    plan.task = plan.task or preset(plan.preset).task
    return plan


def check_plan(plan: Plan) -> None:
    """Every piece's config validates, ``main`` is a reference folder, and the numbers make sense;
    ConfigError in one line otherwise."""
    check_comparison(plan.preset, plan.seeds, task=plan.task, algos=plan.algos)
    if MAIN not in plan.references:
        raise ConfigError(f"references: needs {MAIN!r}, the folder of the compared runs and their reference")
    screened = screening_algos(plan)
    unknown = sorted(set(screened) - set(plan.algos))
    if unknown:
        raise ConfigError(f"screen.algos: {', '.join(unknown)} is not in algos ({', '.join(plan.algos)})")
    if not plan.screen.get("shared") and set(screened) != set(plan.algos):
        raise ConfigError("screen.algos: without screen.shared every algorithm needs its own screening; "
                          "screen them all or set shared: true")
    if not candidates(plan):
        raise ConfigError("screen: give at least one value (values) or candidate (candidates)")
    for algo in screened:
        for _, overrides in candidates(plan):
            apply_overrides(preset(plan.preset), {**plan.overrides, **overrides, "algo": algo}).validate()
    for overrides in plan.references.values():
        apply_overrides(preset(plan.preset), {**plan.overrides, **overrides, "baseline": "naive"}).validate()
    if plan.k < 1 or not 0 < plan.screen_share < 1:
        raise ConfigError(f"k: {plan.k}, screen_share: {plan.screen_share}: need k >= 1 and 0 < screen_share < 1")


def candidates(plan: Plan) -> list[tuple[object, dict]]:
    """The screened settings as (key, overrides), in order of preference on ties: ``setting`` with
    ``values`` (one setting: the key is the value) or ``candidates`` (name -> overrides: settings
    that differ in several keys, e.g. the CPU plan's learning rate, demonstrations and group)."""
    if "candidates" in plan.screen:
        return [(str(name), dict(overrides or {})) for name, overrides in plan.screen["candidates"].items()]
    return [(value, {plan.screen["setting"]: value}) for value in plan.screen.get("values", [])]


def screening_algos(plan: Plan) -> list[str]:
    """The algorithms that screen (``screen.algos``; default all). Fewer than all only with
    ``screen.shared``: then one choice, the best mean dev return over them, serves every algorithm."""
    return list(plan.screen.get("algos") or plan.algos)


def screen_name(algo: str, value: object) -> str:
    """The screening run of ``algo`` with a candidate: ``grpo-0.0003``, ``grpo-d0``."""
    return f"{algo}-{value}"


def screening_pieces(plan: Plan, root: Path, train_seconds: float, train_until: float | None = None) -> list[Piece]:
    """Per screening algorithm, one run per candidate, all with the screening seed, evaluated on dev;
    for ``screen.iterations`` iterations when the plan fixes them, else until the clock
    (``train_seconds`` after the process started, or ``train_until``)."""
    iterations = plan.screen.get("iterations") or SCREEN_ITERATIONS
    return [Piece(screen_name(algo, key), {
        "kind": "train", "root": str(root / SCREEN), "name": screen_name(algo, key), "preset": plan.preset,
        "task": plan.task, "algo": algo, "seed": plan.screen["seed"], "split": "dev", "train_seconds": train_seconds,
        "train_until": train_until, "overrides": {**plan.overrides, **overrides, "iterations": iterations}})
        for algo in screening_algos(plan) for key, overrides in candidates(plan)]


def reference_pieces(plan: Plan, root: Path, chosen: dict | None = None) -> list[Piece]:
    """Per seed, one process playing the untrained model on test once per reference folder, with the
    shared choice's settings (``chosen``) under each reference's own: the references then play the
    episodes the compared runs are evaluated on (the same step cap, the same demonstrations unless
    the reference is about them)."""
    return [Piece(run_name("naive", seed), {
        "kind": "naive", "name": run_name("naive", seed), "preset": plan.preset, "task": plan.task, "seed": seed,
        "evaluations": [{"root": str(root / folder), "overrides": {**plan.overrides, **(chosen or {}), **overrides}}
                        for folder, overrides in plan.references.items()]})
        for seed in plan.seeds]


def compared_pieces(plan: Plan, root: Path, chosen: dict[str, dict], iterations: int,
                    train_seconds: float, train_until: float | None = None) -> list[Piece]:
    """Each algorithm x seed with its chosen settings for ``iterations`` iterations, evaluated on
    test; training stops ``train_seconds`` after its process started or at ``train_until``."""
    return [Piece(run_name(algo, seed), {
        "kind": "train", "root": str(root / MAIN), "name": run_name(algo, seed), "preset": plan.preset,
        "task": plan.task, "algo": algo, "seed": seed, "split": "test", "train_seconds": train_seconds,
        "train_until": train_until,
        "overrides": {**plan.overrides, **chosen[algo], "iterations": iterations}})
        for algo in plan.algos for seed in plan.seeds]


def training_seconds(window_s: float, pieces: int, k: int, evaluation_s: float) -> float:
    """What each piece of a phase may train, counted from its process's start: the phase's window
    split into waves of k pieces, less one evaluation per wave."""
    return window_s / math.ceil(pieces / k) - evaluation_s


def iterations_for(train_s: float, overhead_s: float, iteration_s: float) -> int:
    """Iterations that fit ``train_s`` after ``overhead_s`` (process, model and JVM start, the
    checkpoints) at ``iteration_s`` each, taken ``MARGIN`` longer."""
    return max(0, math.floor((train_s - overhead_s) / (iteration_s * MARGIN)))


def phase_costs(plan: Plan, outcomes: dict[str, dict]) -> dict[str, float]:
    """From phase 1's outcomes (``run_pieces``): the slowest algorithm's median seconds per
    iteration; the largest overhead of a training piece (its time to the end of training less its
    iterations: a run the clock cut counts its unfinished iteration here, so this errs long); the
    longest evaluation after training (one the phase's end killed counts up to then)."""
    trained = [outcome for outcome in outcomes.values() if outcome.get("iteration_seconds")]
    if not trained:
        raise ConfigError("phase 1: no screening run finished an iteration; raise --budget (docs/gpu-study.md)")
    per_iteration = [statistics.median(seconds) for algo in screening_algos(plan) for key, _ in candidates(plan)
                     if (seconds := outcomes.get(screen_name(algo, key), {}).get("iteration_seconds"))]
    return {"iteration_s": max(per_iteration),
            "overhead_s": max(o["trained"] - o["started"] - sum(o["iteration_seconds"]) for o in trained),
            "evaluation_s": max((o["evaluated"] if "evaluated" in o else o["started"] + o["seconds"]) - o["trained"]
                                for o in trained)}


def choose(plan: Plan, screen_root: Path) -> dict[str, dict]:
    """Per algorithm: each candidate's dev return (None where its run has none) and the candidate
    chosen (``value``, with its ``overrides``), the best (ties: the first listed). With
    ``screen.shared``, one choice for all: the best mean dev return over the screening algorithms.
    No run evaluated: the preset as it is (``screened: false``)."""
    from empo2_lite.runs import RunDir

    def dev_return(algo: str, key: object) -> float | None:
        rows = [row for row in RunDir(screen_root / screen_name(algo, key)).read_evals() if row.get("split") == "dev"]
        return rows[-1]["return_mean"] if rows else None

    def best(returns: dict) -> dict:
        scored = [key for key, _ in candidates(plan) if returns[key] is not None]
        if not scored:
            fallback = {setting: flatten(preset(plan.preset).to_dict())[setting]
                        for _, overrides in candidates(plan)[:1] for setting in overrides}
            return {"value": "preset", "overrides": fallback, "dev_returns": returns, "screened": False}
        key = max(scored, key=lambda key: returns[key])
        return {"value": key, "overrides": dict(candidates(plan))[key], "dev_returns": returns, "screened": True}

    screened = {algo: {key: dev_return(algo, key) for key, _ in candidates(plan)} for algo in screening_algos(plan)}
    if not plan.screen.get("shared"):
        return {algo: best(returns) for algo, returns in screened.items()}
    means = {}
    for key, _ in candidates(plan):
        scores = [returns[key] for returns in screened.values() if returns[key] is not None]
        means[key] = statistics.mean(scores) if scores else None
    return dict.fromkeys(plan.algos, best(means))


def prepare(plan: Plan) -> None:
    """Build the preset's model once (the embedded one from its GGUF, ~20 s) before the pieces
    would race to, and refuse at once a CUDA preset on a machine without CUDA."""
    from empo2_lite.policy.loading import resolve_model_source

    config = preset(plan.preset)
    if config.policy.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"{plan.preset}: policy.device is cuda and no CUDA GPU is here; --rehearse runs on a CPU")
    resolve_model_source(config.policy.model)


def run_study(plan: Plan, work: Path, started_at: float, record: dict,
              command: Callable[[Piece], list[str]] = piece_command) -> None:
    """Phases 1 and 2 and the choice between them (module docstring), written into ``record`` as
    they happen (what ran, when, what was chosen: ``study.json``), so that it holds as much as the
    study got through when something fails."""
    end, logs = started_at + plan.budget_s, work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record.update(plan=asdict(plan), started_at=started_at)

    def clock() -> str:
        return f"[{time.time() - started_at:4.0f} s]"

    prepare(plan)
    shared = bool(plan.screen.get("shared"))
    now = time.time()
    phase_end = now + plan.screen_share * (end - plan.pack_reserve_s - now)
    first = [] if shared else reference_pieces(plan, work)
    screened = len(screening_algos(plan)) * len(candidates(plan))
    if plan.screen.get("iterations"):  # fixed iterations: the clock only guards the phase's end
        train_s = phase_end - now - plan.eval_reserve_s
    else:
        train_s = training_seconds(phase_end - now, screened + len(first), plan.k, plan.eval_reserve_s)
    if train_s <= 0 or phase_end - now < len(plan.references) * plan.eval_reserve_s:
        raise ConfigError(f"budget_s: {plan.budget_s} leaves phase 1 no training time or too little for the "
                          f"{len(plan.references)} evaluations of a reference piece; raise it (docs/gpu-study.md)")
    first = screening_pieces(plan, work, train_s, phase_end - plan.eval_reserve_s) + first
    print(f"{clock()} phase 1: {len(first)} pieces, {plan.k} at once; screening runs train {train_s:.0f} s", flush=True)
    record["phase1"] = {"train_seconds": train_s, "pieces": run_pieces(first, plan.k, phase_end + plan.eval_reserve_s / 2,
                                                                        logs, command=command, began=started_at)}
    record["choices"] = choose(plan, work / SCREEN)
    for algo, choice in record["choices"].items():
        print(f"{clock()} {algo}: {choice['value']} {choice['overrides']} (dev returns {choice['dev_returns']})",
              flush=True)
    costs = record["costs"] = phase_costs(plan, record["phase1"]["pieces"])
    now = time.time()
    chosen = {algo: choice["overrides"] for algo, choice in record["choices"].items()}
    references = reference_pieces(plan, work, chosen[plan.algos[0]]) if shared else []
    pieces = len(plan.algos) * len(plan.seeds)
    train_until = end - plan.pack_reserve_s - costs["evaluation_s"] * MARGIN
    if plan.iterations:  # the pieces start one after another: the clock is the phase's, not each piece's
        train_s = train_until - now
        iterations = plan.iterations
    else:
        train_s = training_seconds(end - plan.pack_reserve_s - now, pieces + len(references), plan.k,
                                   costs["evaluation_s"] * MARGIN)
        iterations = iterations_for(train_s, costs["overhead_s"], costs["iteration_s"])
    record["phase2"] = {"train_seconds": train_s, "iterations": iterations}
    if iterations < 1:
        raise ConfigError(f"phase 2: {train_s:.0f} s per run leave no iteration after {costs['overhead_s']:.0f} s of "
                          f"start at {costs['iteration_s']:.1f} s each; raise --budget (docs/gpu-study.md)")
    print(f"{clock()} phase 2: {pieces} runs of {iterations} iterations ({costs['iteration_s']:.1f} s each in phase 1)"
          f"{f' and {len(references)} reference pieces' if references else ''}, {plan.k} at once", flush=True)
    record["phase2"]["pieces"] = run_pieces(compared_pieces(plan, work, chosen, iterations, train_s, train_until)
                                            + references,
                                            plan.k, end - plan.pack_reserve_s, logs, command=command, began=started_at)


def collect(plan: Plan, work: Path) -> dict:
    """``compare``'s table against each reference (``comparison.study_tables``) with the lines saying how
    often EMPO²'s tips reached a prompt, by reference folder; the peak memory of one training
    process (what k was sized by); every figure of the compared runs in ``figures/``."""
    from empo2_lite import comparison, jobs, results

    if not (work / MAIN).is_dir():
        return {}
    metrics = results.load_metrics(results.find_runs(work))
    peaks = {column: float(metrics[column].max()) for column in PEAKS if column in metrics}
    compared = results.find_runs(work / MAIN)
    tables = {folder: "\n".join([table.round(2).to_string(index=False), *comparison.tips_lines(table)])
              for folder, table in comparison.study_tables(work, MAIN).items()}
    jobs.all_figures(compared, out=work / "figures")
    return {"tables": tables, "peaks": peaks}


def pack(work: Path, out: Path, largest: int = LARGEST_FILE, name: str = "gpu-study") -> list[Path]:
    """Every file of the study but checkpoints and TensorBoard events, as ``out/<name>.tgz``;
    an archive larger than ``largest`` bytes (a file the device call would not bring back) is left
    as parts instead (``model_parts.split_file``: ``out/<name>.tgz-part-1/``, ...; put it back
    with ``model_parts.py join``). Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    skipped = {"checkpoints", "tensorboard"}
    archive = out / f"{name}.tgz"
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(work, arcname=name,
                   filter=lambda member: None if skipped & set(Path(member.name).parts) else member)
    if archive.stat().st_size <= largest:
        return [archive]
    manifest = split_file(archive, out / f"{name}.tgz-part", largest)
    archive.unlink()
    return [out / part["folder"] / part["file"] for part in manifest["parts"]]


def main(argv: list[str] | None = None) -> int:
    """Read the plan, run the study, write study.json, print the tables, pack; 2 on a refusal."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", type=Path, default=PLAN, help="the declared plan (default benchmarks/gpu_study.yaml)")
    parser.add_argument("--rehearse", action="store_true", help="the plan's rehearse block: a CPU, the tiny model")
    parser.add_argument("--budget", type=float, dest="budget_s", help="seconds for everything (default: the plan's)")
    parser.add_argument("--k", type=int, help="pieces at once (default: the plan's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of every piece, e.g. --set rollout.engine=kv-cache (repeatable)")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-study-out"),
                        help="where the archive goes (default $OUT, else ./gpu-study-out)")
    parser.add_argument("--work", type=Path, help="the study's folder (default: a new temporary one)")
    parser.add_argument("--started-at", type=float, default=time.time(), help="epoch seconds the budget counts from")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-study-"))
    record: dict = {}
    status, name = 0, "gpu-study"
    try:
        plan = read_plan(args.plan, args.rehearse, parse_set_arguments(args.set), budget_s=args.budget_s, k=args.k)
        name = plan.name
        run_study(plan, work, args.started_at, record)
        record.update(collect(plan, work))
        for folder, table in record.get("tables", {}).items():
            print(f"\n== against the untrained model in {folder}/ (test split)\n{table}")
        print(f"peaks of one training process (MB): {record.get('peaks')}, {plan.k} processes at once")
    except KitError as error:  # ConfigError among them: a refusal in one line, the archive written all the same
        print(f"gpu_study: error: {error}", file=sys.stderr)
        status = 2
    finally:
        work.mkdir(parents=True, exist_ok=True)
        (work / "study.json").write_text(json.dumps(record, indent=1, default=str) + "\n")
        for path in pack(work, args.out, name=name):
            print(f"archive: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
        print(f"gpu_study: {time.time() - args.started_at:.0f} s since the start")
    return status


if __name__ == "__main__":
    sys.exit(main())

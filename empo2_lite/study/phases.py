"""The study's two phases and the choice between them (issue #27's protocol, docs/gpu-study.md):

1. Phase 1, the screening (when the plan has one), k pieces at a time: per screening algorithm one
   run per candidate, all with the screening seed and the same wall seconds (or the plan's fixed
   screening iterations), each then evaluated once on the **dev** split; beside them, unless the
   choice is shared, the untrained references on the test split.
2. The choice: per algorithm the candidate of best dev return (ties: the first listed); with a
   shared screening, the best mean over the screening algorithms, for all.
3. Phase 2, the compared runs: each algorithm x seed with its choice, all for the same number of
   iterations (the plan's; else sized from phase 1's seconds per iteration of the slowest
   algorithm, so that every run finishes in the time left; without a screening, the preset's),
   then the **test** split once; with a shared choice, the references play here, with its
   settings, so that they play the episodes the compared runs are tested on.

Everything is written into ``record`` (``study.json``) as it happens. A study run again on its
folder continues: a finished phase 1 is not run again (its choice and phase 2's iterations are
read back from the record), finished pieces are skipped, and a compared run the clock cut trains on
from its checkpoint and is tested then.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from empo2_lite.comparison import run_name
from empo2_lite.config import ConfigError, preset
from empo2_lite.study.plan import SCREEN, Plan, candidates, plan_from_dict, preset_values, screening_algos
from empo2_lite.study.schedule import Piece, clock, done_before, piece_command, run_pieces

SCREEN_ITERATIONS = 1000
"""Iteration cap of a screening run without fixed iterations: the clock ends it long before."""
MARGIN = 1.1
"""Phase 1's seconds per iteration and per evaluation are taken 10% longer when phase 2 is sized."""
TIME_KEYS = ("budget_s", "k", "pack_reserve_s", "eval_reserve_s", "screen_share")
"""Plan keys that a study run again on its folder may change: when and how fast, not what."""


def screen_name(algo: str, value: object) -> str:
    """The screening run of ``algo`` with a candidate: ``grpo-0.0003``, ``grpo-d0``."""
    return f"{algo}-{value}"


def _seconds(value: float) -> float | None:
    """A clock for a spec: None where there is none (JSON holds no infinity)."""
    return value if math.isfinite(value) else None


def screening_pieces(plan: Plan, root: Path, train_seconds: float, train_until: float | None = None) -> list[Piece]:
    """Per screening algorithm, one run per candidate, all with the screening seed, evaluated on dev;
    for ``screen.iterations`` iterations when the plan fixes them, else until the clock
    (``train_seconds`` after the process started, or ``train_until``)."""
    iterations = plan.screen.get("iterations") or SCREEN_ITERATIONS
    return [Piece(screen_name(algo, key), {
        "kind": "train", "root": str(root / SCREEN), "name": screen_name(algo, key), "preset": plan.preset,
        "task": plan.task, "algo": algo, "seed": plan.screen["seed"], "split": "dev",
        "train_seconds": _seconds(train_seconds), "train_until": train_until and _seconds(train_until),
        "until_the_clock": not plan.screen.get("iterations"),
        "overrides": {**plan.overrides, **overrides, "iterations": iterations}})
        for algo in screening_algos(plan) for key, overrides in candidates(plan)]


def reference_pieces(plan: Plan, root: Path, chosen: dict | None = None) -> list[Piece]:
    """Per baseline and seed, one piece playing the untrained model on test once per reference
    folder, with the shared choice's settings (``chosen``) under each reference's own: the
    references then play the episodes the compared runs are evaluated on (the same step cap, the
    same demonstrations unless the reference is about them)."""
    return [Piece(run_name(baseline, seed), {
        "kind": "reference", "baseline": baseline, "name": run_name(baseline, seed), "preset": plan.preset,
        "task": plan.task, "seed": seed, "trials": plan.trials,
        "evaluations": [{"root": str(root / folder), "overrides": {**plan.overrides, **(chosen or {}), **overrides}}
                        for folder, overrides in plan.references.items()]})
        for seed in plan.seeds for baseline in plan.baselines]


def compared_pieces(plan: Plan, root: Path, chosen: dict[str, dict], iterations: int | None,
                    train_seconds: float = math.inf, train_until: float | None = None) -> list[Piece]:
    """Each algorithm x seed with its chosen settings for ``iterations`` iterations (None: the
    preset's), evaluated on test; training stops ``train_seconds`` after its process started or at
    ``train_until``."""
    fixed = {"iterations": iterations} if iterations else {}
    return [Piece(run_name(algo, seed), {
        "kind": "train", "root": str(root / plan.main), "name": run_name(algo, seed), "preset": plan.preset,
        "task": plan.task, "algo": algo, "seed": seed, "split": "test", "train_seconds": _seconds(train_seconds),
        "train_until": train_until and _seconds(train_until),
        "overrides": {**plan.overrides, **chosen.get(algo, {}), **fixed}})
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
    No run evaluated: the preset as it is (``screened: false``); no screening: the preset, for all."""
    from empo2_lite.runs import RunDir

    if plan.screen is None:
        return dict.fromkeys(plan.algos, {"value": "preset", "overrides": {}, "dev_returns": {}, "screened": False})

    def dev_return(algo: str, key: object) -> float | None:
        rows = [row for row in RunDir(screen_root / screen_name(algo, key)).read_evals() if row.get("split") == "dev"]
        return rows[-1]["return_mean"] if rows else None

    def best(returns: dict) -> dict:
        scored = [key for key, _ in candidates(plan) if returns[key] is not None]
        if not scored:
            return {"value": "preset", "overrides": preset_values(plan), "dev_returns": returns, "screened": False}
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


def check_same_study(plan: Plan, record: dict, work: Path) -> None:
    """A study run again on its folder must be the same study: only ``TIME_KEYS`` may differ."""
    if "plan" not in record:
        return
    before, now = asdict(plan_from_dict(record["plan"])), asdict(plan)
    changed = [key for key in now if key not in TIME_KEYS and before.get(key) != now[key]]
    if changed:
        raise ConfigError(f"--work: {work} holds a study of another plan (it differs in {', '.join(changed)}); "
                          "give a new --work folder, or the plan it was started with")


def run_study(plan: Plan, work: Path, started_at: float, record: dict,
              command: Callable[[Piece], list[str]] = piece_command) -> None:
    """Phases 1 and 2 and the choice between them (module docstring), written into ``record`` as
    they happen (what ran, when, what was chosen: ``study.json``), so that it holds as much as the
    study got through when something fails; a record of an earlier call on ``work`` is continued."""
    check_same_study(plan, record, work)
    end, logs = started_at + plan.budget_s, work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record.update(plan=asdict(plan))
    record.setdefault("started_at", started_at)
    record.setdefault("calls", []).append({"started_at": started_at, "budget_s": plan.budget_s})
    shared = bool(plan.screen and plan.screen.get("shared"))
    prepare(plan)
    if plan.screen is not None and not record.get("phase1", {}).get("done"):
        _phase1(plan, work, started_at, end, record, command, shared)
    elif plan.screen is None:
        record["choices"] = choose(plan, work / SCREEN)
    else:
        print(f"{clock(started_at)} phase 1: done before; the choice and phase 2's iterations are read back", flush=True)
    _phase2(plan, work, started_at, end, record, command, shared)


def _phase1(plan: Plan, work: Path, started_at: float, end: float, record: dict,
            command: Callable[[Piece], list[str]], shared: bool) -> None:
    """The screening (with the references when the choice is not shared), the choice, the costs."""
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
    print(f"{clock(started_at)} phase 1: {len(first)} pieces, {plan.k} at once; screening runs train "
          f"{train_s:.0f} s" if math.isfinite(train_s) else f"{clock(started_at)} phase 1: {len(first)} pieces", flush=True)
    outcomes = run_pieces(first, plan.k, phase_end + plan.eval_reserve_s / 2, logs=work / "logs", command=command,
                          began=started_at, phase="phase 1")
    record["phase1"] = {"train_seconds": train_s, "pieces": _merged(record.get("phase1", {}), outcomes)}
    record["choices"] = choose(plan, work / SCREEN)
    for algo, choice in record["choices"].items():
        print(f"{clock(started_at)} {algo}: {choice['value']} {choice['overrides']} (dev returns {choice['dev_returns']})",
              flush=True)
    record["costs"] = phase_costs(plan, record["phase1"]["pieces"])
    record["phase1"]["done"] = True


def _phase2(plan: Plan, work: Path, started_at: float, end: float, record: dict,
            command: Callable[[Piece], list[str]], shared: bool) -> None:
    """The compared runs (and the references: after a shared choice, or without a screening)."""
    now = time.time()
    chosen = {algo: choice["overrides"] for algo, choice in record["choices"].items()}
    if shared or plan.screen is None:
        references = reference_pieces(plan, work, chosen[plan.algos[0]])
    else:  # played in phase 1; here only what its end (or an interrupt) stopped
        references = [piece for piece in reference_pieces(plan, work) if not done_before(piece)]
    pieces = len(plan.algos) * len(plan.seeds)
    costs = record.get("costs")
    evaluation_s = costs["evaluation_s"] * MARGIN if costs else plan.eval_reserve_s
    train_until = end - plan.pack_reserve_s - evaluation_s
    planned = record.get("phase2", {}).get("iterations")
    if planned:  # a study run again: its runs train to the iterations sized (or fixed) the first time
        train_s, iterations = train_until - now, planned
    elif not plan.sized:  # the pieces start one after another: the clock is the phase's, not each piece's
        train_s, iterations = train_until - now, plan.iterations or preset(plan.preset).iterations
    else:
        train_s = training_seconds(end - plan.pack_reserve_s - now, pieces + len(references), plan.k, evaluation_s)
        iterations = iterations_for(train_s, costs["overhead_s"], costs["iteration_s"])
    if iterations < 1:
        raise ConfigError(f"phase 2: {train_s:.0f} s per run leave no iteration after {costs['overhead_s']:.0f} s of "
                          f"start at {costs['iteration_s']:.1f} s each; raise --budget (docs/gpu-study.md)")
    if train_s <= 0:
        raise ConfigError(f"budget_s: {plan.budget_s} leaves phase 2 no training time; raise --budget")
    record["phase2"] = {**record.get("phase2", {}), "train_seconds": train_s, "iterations": iterations}
    speed = f" ({costs['iteration_s']:.1f} s each in phase 1)" if costs else ""
    print(f"{clock(started_at)} phase 2: {pieces} runs of {iterations} iterations{speed}"
          f"{f' and {len(references)} reference pieces' if references else ''}, {plan.k} at once", flush=True)
    compared = compared_pieces(plan, work, chosen, iterations, train_s, train_until if not plan.sized else None)
    outcomes = run_pieces(compared + references, plan.k, end - plan.pack_reserve_s, work / "logs", command=command,
                          began=started_at, phase="phase 2")
    record["phase2"]["pieces"] = _merged(record["phase2"], outcomes)
    untested = sorted(piece.name for piece in compared if outcomes[piece.name].get("cut")
                      or outcomes[piece.name]["exit"] is None)
    record["phase2"]["untested"] = untested
    if untested:
        print(f"{clock(started_at)} not tested, the clock stopped them first: {', '.join(untested)}; run the study "
              f"again with --work {work} to train them on and test them", flush=True)


def _merged(phase: dict, outcomes: dict[str, dict]) -> dict[str, dict]:
    """A phase's outcomes of this call over those of an earlier one, but for pieces skipped as done
    before (their earlier outcome holds their timings)."""
    earlier = phase.get("pieces", {})
    return {**earlier, **{name: outcome for name, outcome in outcomes.items()
                          if not (outcome.get("done_before") and name in earlier)}}

"""The study's phases and the choices between them (issue #27's protocol, docs/gpu-study.md; the
probe, warm starts, OOD and parts of issue #36, docs/cpu-solve-plan.md):

0. The probe (when the plan has one, ``probe.py``): the untrained model on dev under each declared
   task, step cap and demonstrations; the plan's rule picks the study's task and settings.
1. Phase 1, the screening (when the plan has one), k pieces at a time: per screening algorithm one
   run per candidate, all with the screening seed and the same wall seconds (or the plan's fixed
   screening iterations), each then evaluated once on the **dev** split; beside them, unless the
   choice is shared, the untrained references on the test split.
   A candidate with a warm start (``warm_start: N``) trains from one built first, once per N.
2. The choice: per algorithm the candidate of best dev success rate, then best dev return (ties:
   the first listed); with a shared screening, the best means over the screening algorithms, for all.
3. Phase 2, the compared runs: each algorithm x seed with its choice, all for the same number of
   iterations (the plan's; else sized from phase 1's seconds per iteration of the slowest
   algorithm, so that every run finishes in the time left; without a screening, the preset's),
   then the **test** split once; with a shared choice, the references play here, with its
   settings, so that they play the episodes the compared runs are tested on (the warm-start
   reference: the chosen warm start, when the choice has one).
4. OOD (when the plan has one): the named compared runs adapt to the chosen task's sibling.

A plan in parts runs the stages (``plan.stages``) of one part per call (``--part N``), each call
under its own clock of ``part_limit_s``, each recording the machine's load at its start; a part
refuses to start before the stages it needs are done.

Everything is written into ``record`` (``study.json``) as it happens. A study run again on its
folder continues: a finished phase 1 is not run again (its choice and phase 2's iterations are
read back from the record), finished pieces are skipped, and a compared run the clock cut trains on
from its checkpoint and is tested then.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from empo2_lite.comparison import run_name
from empo2_lite.config import RETROSPEX_BASELINE, WARM_START_BASELINE, ConfigError, preset
from empo2_lite.study.plan import (OOD_STAGE, PROBE_STAGE, SCREEN, Plan, baseline_folders, candidates, part_stages,
                                   plan_from_dict, preset_values, screening_algos, seed_stage, warm_start_of)
from empo2_lite.study.probe import choose_probe, probe_pieces, probed
from empo2_lite.study.schedule import Piece, clock, done_before, piece_command, run_pieces

SCREEN_ITERATIONS = 1000
"""Iteration cap of a screening run without fixed iterations: the clock ends it long before."""
MARGIN = 1.1
"""Phase 1's seconds per iteration and per evaluation are taken 10% longer when phase 2 is sized."""
TIME_KEYS = ("budget_s", "k", "pack_reserve_s", "eval_reserve_s", "screen_share", "part_limit_s")
"""Plan keys that a study run again on its folder may change: when and how fast, not what."""


WARM_STARTS = "warm-start"
"""The study's folder of warm starts (``warm-start-v<N>``: N train variations cloned)."""


def warm_start_folder(work: Path, variations: int) -> Path:
    """Where the study's warm start of ``variations`` train variations is saved."""
    return work / WARM_STARTS / f"warm-start-v{variations}"


def with_warm_start(work: Path, overrides: dict) -> dict:
    """A candidate's overrides as a run takes them: ``warm_start: N`` becomes ``policy.init_adapter``."""
    variations, rest = warm_start_of(overrides)
    return {**rest, "policy.init_adapter": str(warm_start_folder(work, variations))} if variations else rest


def warm_start_pieces(plan: Plan, work: Path, counts: list[int]) -> list[Piece]:
    """One warm start per distinct count > 0, with the plan's (probed) settings: a warm start is
    rendered by the rollout, so it takes the step cap and demonstrations the runs play with."""
    return [Piece(warm_start_folder(work, count).name, {
        "kind": "warm-start", "root": str(work / WARM_STARTS), "name": warm_start_folder(work, count).name,
        "preset": plan.preset, "task": plan.task, "variations": count, "overrides": dict(plan.overrides)})
        for count in sorted({count for count in counts if count})]


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
        "overrides": {**plan.overrides, **with_warm_start(root, overrides), "iterations": iterations}})
        for algo in screening_algos(plan) for key, overrides in candidates(plan)]


def reference_pieces(plan: Plan, root: Path, chosen: dict | None = None) -> list[Piece]:
    """Per baseline and seed, one piece playing the untrained model on test once per reference
    folder (``baseline_folders``), with the shared choice's settings (``chosen``) under each
    reference's own: the references then play the episodes the compared runs are evaluated on
    (the same step cap, the same demonstrations unless the reference is about them). The
    warm-start reference plays the chosen warm start (none chosen: no such piece)."""
    variations, settings = warm_start_of(chosen or {})
    return [Piece(run_name(baseline, seed), {
        "kind": "reference", "baseline": baseline, "name": run_name(baseline, seed), "preset": plan.preset,
        "task": plan.task, "seed": seed, "trials": plan.trials,
        **({"from_run": str(warm_start_folder(root, variations))} if baseline == WARM_START_BASELINE else {}),
        **({"critic": plan.critic} if baseline == RETROSPEX_BASELINE else {}),
        "evaluations": [{"root": str(root / folder), "overrides": {**plan.overrides, **settings, **overrides}}
                        for folder, overrides in plan.references.items() if folder in baseline_folders(plan, baseline)]})
        for seed in plan.seeds for baseline in plan.baselines if baseline != WARM_START_BASELINE or variations]


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
        "overrides": {**plan.overrides, **with_warm_start(root, chosen.get(algo, {})), **fixed}})
        for algo in plan.algos for seed in plan.seeds]


def ood_pieces(plan: Plan, root: Path) -> list[Piece]:
    """The plan's OOD runs (``ood.algos`` x ``ood.seeds``, compared runs) adapting to the chosen
    task's sibling; none when the plan names no sibling for it."""
    sibling = plan.ood["siblings"].get(plan.task) if plan.ood else None
    if sibling is None:
        return []
    return [Piece(f"ood-{run_name(algo, seed)}", {
        "kind": "ood", "root": str(root / plan.main), "name": run_name(algo, seed), "sibling": sibling,
        "iterations": plan.ood["iterations"]}) for algo in plan.ood["algos"] for seed in plan.ood["seeds"]]


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
    """Per algorithm: each candidate's dev success rate and dev return (None where its run has no
    dev row) and the candidate chosen (``value``, with its ``overrides``): the best success rate,
    then the best return (ties: the first listed; a row without a success rate counts below any).
    With ``screen.shared``, one choice for all: the best means over the screening algorithms. No
    run evaluated: the preset as it is (``screened: false``); no screening: the preset, for all."""
    from empo2_lite.runs import RunDir

    if plan.screen is None:
        return dict.fromkeys(plan.algos, {"value": "preset", "overrides": {}, "dev_returns": {}, "dev_success": {},
                                          "screened": False})

    def dev_row(algo: str, key: object) -> dict | None:
        rows = [row for row in RunDir(screen_root / screen_name(algo, key)).read_evals() if row.get("split") == "dev"]
        return rows[-1] if rows else None

    screened = {algo: {key: dev_row(algo, key) for key, _ in candidates(plan)} for algo in screening_algos(plan)}
    if not plan.screen.get("shared"):
        return {algo: best_candidate(plan, {key: _score(row) for key, row in rows.items()})
                for algo, rows in screened.items()}
    means = {}
    for key, _ in candidates(plan):
        scores = [_score(rows[key]) for rows in screened.values() if rows[key] is not None]
        means[key] = None if not scores else (
            None if any(success is None for success, _ in scores) else statistics.mean(s for s, _ in scores),
            statistics.mean(value for _, value in scores))
    return dict.fromkeys(plan.algos, best_candidate(plan, means))


def _score(row: dict | None) -> tuple[float | None, float] | None:
    """A dev row's (success rate, return); None: no row."""
    return None if row is None else (row.get("success_rate"), row["return_mean"])


def best_candidate(plan: Plan, scores: dict[object, tuple[float | None, float] | None]) -> dict:
    """The choice among the candidates' (dev success rate, dev return): success first, then return;
    ties to the first listed; none scored: the preset's own values (``screened: false``)."""
    returns = {key: None if score is None else score[1] for key, score in scores.items()}
    success = {key: None if score is None else score[0] for key, score in scores.items()}
    scored = [key for key, _ in candidates(plan) if scores[key] is not None]
    if not scored:
        return {"value": "preset", "overrides": preset_values(plan), "dev_returns": returns, "dev_success": success,
                "screened": False}
    key = max(scored, key=lambda key: (-1.0 if success[key] is None else success[key], returns[key]))
    return {"value": key, "overrides": dict(candidates(plan))[key], "dev_returns": returns, "dev_success": success,
            "screened": True}


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
              command: Callable[[Piece], list[str]] = piece_command, part: int | None = None) -> None:
    """The probe, phases 1 and 2 and OOD, and the choices between them (module docstring), written
    into ``record`` as they happen (what ran, when, what was chosen: ``study.json``), so that it
    holds as much as the study got through when something fails; a record of an earlier call on
    ``work`` is continued. ``part``: only that part's stages, under a clock of ``part_limit_s``."""
    check_same_study(plan, record, work)
    wanted = part_stages(plan, part)
    budget_s = plan.budget_s if part is None else min(plan.budget_s, plan.part_limit_s)
    end, logs = started_at + budget_s, work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    record.update(plan=asdict(plan))
    record.setdefault("started_at", started_at)
    record.setdefault("calls", []).append({"started_at": started_at, "budget_s": budget_s, "part": part,
                                           "stages": wanted, "load": list(os.getloadavg())})
    shared = bool(plan.screen and plan.screen.get("shared"))
    probing = plan.probe is not None and not record.get("probe", {}).get("done")
    screening = plan.screen is not None and not record.get("phase1", {}).get("done")
    for stage, pending in ((PROBE_STAGE, probing), (SCREEN, screening)):
        if pending:  # refused before the model is prepared: a part out of order costs nothing
            _needs(stage, wanted, part)
    prepare(plan)
    if probing:
        _probe(plan, work, started_at, end, record, command)
    if plan.probe is not None:
        plan = probed(plan, record["probe"]["choice"])
    if screening:
        _phase1(plan, work, started_at, end, record, command, shared)
    elif plan.screen is None:
        record["choices"] = choose(plan, work / SCREEN)
    else:
        print(f"{clock(started_at)} phase 1: done before; the choice and phase 2's iterations are read back", flush=True)
    seeds = [seed for seed in plan.seeds if seed_stage(seed) in wanted]
    if seeds:
        _phase2(plan, work, started_at, end, record, command, shared, seeds)
    if plan.ood is not None and OOD_STAGE in wanted:
        _ood(plan, work, started_at, end, record, command)


def _needs(stage: str, wanted: list[str], part: int | None) -> None:
    """Refuse a part that would run before ``stage``, which it needs and which is not done."""
    if stage not in wanted:
        raise ConfigError(f"--part: part {part} needs the {stage} stage done first; run the part that holds it on "
                          "this --work folder first (docs/cpu-solve-plan.md)")


def _probe(plan: Plan, work: Path, started_at: float, end: float, record: dict,
           command: Callable[[Piece], list[str]]) -> None:
    """The probe's pieces, then the rule's choice; refused (record kept) while a probe is unplayed."""
    probes = probe_pieces(plan, work)
    print(f"{clock(started_at)} probe: {len(probes)} untrained evaluations on dev, {plan.k} at once", flush=True)
    outcomes = run_pieces(probes, plan.k, end - plan.pack_reserve_s, work / "logs", command=command,
                          began=started_at, phase="probe")
    record["probe"] = {"pieces": _merged(record.get("probe", {}), outcomes)}
    missing = [piece.name for piece in probes if not done_before(piece)]
    if missing:
        raise ConfigError(f"probe: {', '.join(missing)} not evaluated before the clock; run the study again on its "
                          "folder to play them (the task is chosen on all of them)")
    choice = choose_probe(plan, work)
    record["probe"].update(choice=choice, done=True)
    met = "meets the rule" if choice["rule_met"] else "the most episodes at the rule's points (no probe met the rule)"
    print(f"{clock(started_at)} probe: {choice['value']} ({choice['task']}, {choice['overrides']}): {met}", flush=True)


def _ood(plan: Plan, work: Path, started_at: float, end: float, record: dict,
         command: Callable[[Piece], list[str]]) -> None:
    """The OOD adaptations of the compared runs that were tested; the others are listed as skipped."""
    from empo2_lite.runs import RunDir

    adapted = ood_pieces(plan, work)
    ready = [piece for piece in adapted if any(row.get("split", "test") == "test"
                                               for row in RunDir(work / plan.main / piece.spec["name"]).read_evals())]
    skipped = sorted(piece.spec["name"] for piece in adapted if piece not in ready)
    if not adapted:
        print(f"{clock(started_at)} ood: the plan names no sibling of {plan.task}", flush=True)
    outcomes = run_pieces(ready, plan.k, end - plan.pack_reserve_s, work / "logs", command=command, began=started_at,
                          phase="ood")
    record["ood"] = {"sibling": adapted[0].spec["sibling"] if adapted else None,
                     "pieces": _merged(record.get("ood", {}), outcomes), "skipped": skipped}
    if skipped:
        print(f"{clock(started_at)} ood: not adapted, their runs are not tested yet: {', '.join(skipped)}", flush=True)


def _phase1(plan: Plan, work: Path, started_at: float, end: float, record: dict,
            command: Callable[[Piece], list[str]], shared: bool) -> None:
    """The warm starts, the screening (with the references when the choice is not shared), the
    choice, the costs."""
    _warm_starts(plan, work, started_at, end, record, command, [warm_start_of(o)[0] for _, o in candidates(plan)])
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


def _warm_starts(plan: Plan, work: Path, started_at: float, end: float, record: dict,
                 command: Callable[[Piece], list[str]], counts: list[int]) -> None:
    """The warm starts of ``counts`` train variations (skipped where saved before); refused while one
    is missing, since the runs that start from it cannot."""
    warm = warm_start_pieces(plan, work, counts)
    if not warm:
        return
    outcomes = run_pieces(warm, plan.k, end - plan.pack_reserve_s, work / "logs", command=command, began=started_at,
                          phase="warm starts")
    record["warm_starts"] = {"pieces": _merged(record.get("warm_starts", {}), outcomes)}
    missing = [piece.name for piece in warm if not done_before(piece)]
    if missing:
        raise ConfigError(f"warm starts: {', '.join(missing)} not saved (see logs/); run the study again on its folder")


def _phase2(plan: Plan, work: Path, started_at: float, end: float, record: dict,
            command: Callable[[Piece], list[str]], shared: bool, seeds: list[int] | None = None) -> None:
    """The compared runs of ``seeds`` (default all; and the references of those seeds: after a
    shared choice, or without a screening), each from its chosen warm start if any."""
    seeds = plan.seeds if seeds is None else seeds
    chosen = {algo: choice["overrides"] for algo, choice in record["choices"].items()}
    _warm_starts(plan, work, started_at, end, record, command, [warm_start_of(o)[0] for o in chosen.values()])
    now = time.time()
    if shared or plan.screen is None:
        references = reference_pieces(plan, work, chosen[plan.algos[0]])
    else:  # played in phase 1; here only what its end (or an interrupt) stopped
        references = [piece for piece in reference_pieces(plan, work) if not done_before(piece)]
    references = [piece for piece in references if piece.spec["seed"] in seeds]
    pieces = len(plan.algos) * len(seeds)
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
    compared = [piece for piece in compared_pieces(plan, work, chosen, iterations, train_s,
                                                   train_until if not plan.sized else None)
                if piece.spec["seed"] in seeds]
    outcomes = run_pieces(compared + references, plan.k, end - plan.pack_reserve_s, work / "logs", command=command,
                          began=started_at, phase="phase 2")
    record["phase2"]["pieces"] = _merged(record["phase2"], outcomes)
    untested = sorted(piece.name for piece in compared if outcomes[piece.name].get("cut")
                      or outcomes[piece.name]["exit"] is None)
    names = {piece.name for piece in compared}
    untested = sorted({*untested, *(name for name in record["phase2"].get("untested", []) if name not in names)})
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

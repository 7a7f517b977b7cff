"""A study's plan: what it screens, trains, plays as references and how long it may take, read
from YAML into a typed ``Plan`` and checked in one line per fault before anything runs.

A plan is data (``plans/*.yaml`` ship with the kit: ``gpu``, the GPU study of issue #27, and
``cpu``, its CPU version); every key is a field of ``Plan``, so a misspelt key is refused, as is a
missing one, a value of the wrong type, an algorithm or preset the kit lacks, a screening without a
candidate, and any piece's config that would not validate. Nothing here imports torch: a bad plan
costs well under a second.

``compare`` is a plan without a screening (``compare.run_comparison`` builds one): its pieces,
their kinds and its tables are the study's.

A plan may also declare (issue #36, the plan ``cpu-solve``): a ``probe`` that picks the task, its
step cap and demonstrations by a numeric rule before anything trains (``probe.py``); screening
candidates with a warm start (the key ``warm_start``: train variations cloned first, 0 for none);
the ``warm-start`` reference beside ``naive`` and ``memory-only``, each in the reference folders
``baseline_folders`` names; an ``ood`` adaptation of trained runs to a sibling task; and ``parts``,
the stages (``stages``) that each call of ``study --part N`` runs, so that a study of hours runs in
parts of at most ``part_limit_s`` on whichever machine is free.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from empo2_lite.config import (ALGOS, BASELINES, REFLEXION_BASELINE, RETROSPEX_BASELINE, WARM_START_BASELINE,
                               ConfigError, apply_overrides, check_choice, check_integer, preset)
from empo2_lite.config.overrides import flatten
from empo2_lite.study.probe_rules import check_probe, known_task, probe_candidates

PLANS = Path(__file__).resolve().parent / "plans"
"""The plans that ship with the kit (package data): ``--plan gpu`` reads ``plans/gpu.yaml``."""
SCREEN, MAIN = "screen", "main"
"""Folders of a study: the screening runs; the compared runs beside their untrained reference."""
PROBE_STAGE, OOD_STAGE = "probe", "ood"
"""Stages without a seed (``stages``); the probe's runs go in the folder ``probe``."""
SCREEN_KEYS = ("setting", "values", "candidates", "algos", "shared", "iterations", "seed")
"""The keys of a plan's ``screen`` block."""
WARM_START_KEY = "warm_start"
"""A screening candidate's own key (not a config setting): how many train variations the warm start
it trains from clones (0: none). The study builds each warm start once (``phases.warm_start_pieces``)
and points the candidate's runs at it with ``policy.init_adapter``."""
OOD_KEYS = ("siblings", "algos", "seeds", "iterations")
"""The keys of a plan's ``ood`` block."""
STUDY_BASELINES = (*BASELINES, REFLEXION_BASELINE, RETROSPEX_BASELINE, WARM_START_BASELINE)
"""The references a plan may play: the untrained model, with EMPO²'s memory alone, Reflexion, Retrospex
(with the plan's ``critic``), the warm start alone."""


@dataclass
class Plan:
    """A study's declared settings; the keys of a plan file are these fields."""

    preset: str
    """The preset every piece starts from."""
    algos: list[str]
    """The compared algorithms, each trained once per seed."""
    seeds: list[int]
    """The seeds of the compared runs and of the untrained references."""
    references: dict[str, dict]
    """Folder -> overrides of the untrained references played there on the test split (one per
    baseline and seed); ``main`` holds the compared runs too (their table's reference)."""
    budget_s: float
    """Seconds for the whole study (``--budget`` changes it); ``.inf``: no clock."""
    task: str | None = None
    """The task (None: the preset's)."""
    screen: dict | None = None
    """The screening on dev (None: none, as ``compare``): ``setting`` with ``values`` or
    ``candidates`` (name -> overrides), in order of preference on ties; ``seed``; optionally
    ``algos`` (default all) with ``shared`` (one choice for all) and fixed ``iterations``."""
    screen_share: float = 0.35
    """Phase 1's share of the time left after the packing reserve."""
    k: int = 1
    """Pieces (processes) at once."""
    pack_reserve_s: float = 15.0
    """Seconds kept at the end for tables, figures, ``study.json`` and the archive."""
    eval_reserve_s: float = 45.0
    """Phase 1's guess of one evaluation with its JVMs' start."""
    overrides: dict = field(default_factory=dict)
    """Settings of every piece (``--set`` adds to them)."""
    iterations: int | None = None
    """Iterations of every compared run, fixed in advance; None: sized from phase 1's seconds per
    iteration when the plan screens, else the preset's."""
    baselines: list[str] = field(default_factory=lambda: ["naive"])
    """The untrained references played per seed and reference folder (``compare``: both)."""
    trials: int = 3
    """Trials of the memory-only baseline (and Reflexion's attempts per variation)."""
    critic: str | None = None
    """The critic folder (a name under the runs root, ``python -m empo2_lite critic``) the Retrospex
    baseline re-ranks with; required when ``baselines`` has retrospex."""
    main: str = MAIN
    """The folder of the compared runs ('.': the study's folder itself, ``compare``'s layout)."""
    name: str = "gpu-study"
    """The study's archive (``<name>.tgz``) and the top folder in it."""
    probe: dict | None = None
    """The probe before the screening (``probe.py``): ``candidates`` (name -> ``task`` and overrides,
    in order of preference), the ``rule`` that picks one, its ``seed`` and ``temperature``; the
    choice's task and overrides then hold for every later piece. None: the plan's task as it is."""
    ood: dict | None = None
    """OOD adaptation after the compared runs: ``siblings`` (task -> the sibling adapted to), the
    ``algos`` and ``seeds`` whose runs adapt, its ``iterations`` (memory-only, frozen weights)."""
    baseline_folders: dict = field(default_factory=dict)
    """Baseline -> the reference folders it plays in (default: every folder of ``references``)."""
    parts: list | None = None
    """The study in parts: a list of parts, each a list of stages (``stages``) that one call of
    ``study --part N`` runs; None: one call runs everything."""
    part_limit_s: float = math.inf
    """Seconds of one part (its clock when run with ``--part``; ``--estimate`` refuses a longer part)."""

    @property
    def sized(self) -> bool:
        """Whether phase 2's iterations are sized from phase 1's measured costs."""
        return self.screen is not None and self.iterations is None


REQUIRED = tuple(item.name for item in fields(Plan) if item.default is MISSING and item.default_factory is MISSING)
KINDS: dict[str, tuple[type, ...]] = {
    "preset": (str,), "algos": (list,), "seeds": (list,), "references": (dict,), "budget_s": (int, float),
    "task": (str, type(None)), "screen": (dict, type(None)), "screen_share": (int, float), "k": (int,),
    "pack_reserve_s": (int, float), "eval_reserve_s": (int, float), "overrides": (dict,),
    "iterations": (int, type(None)), "baselines": (list,), "trials": (int,), "main": (str,), "name": (str,),
    "probe": (dict, type(None)), "ood": (dict, type(None)), "baseline_folders": (dict,), "parts": (list, type(None)),
    "part_limit_s": (int, float), "critic": (str, type(None))}
"""The YAML types each key accepts."""


def plan_path(plan: str | Path) -> Path:
    """A plan file: a path, or the name of a shipped plan (``gpu``, ``cpu``)."""
    path = Path(plan)
    if path.is_file():
        return path
    shipped = PLANS / f"{plan}.yaml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(path.stem for path in PLANS.glob("*.yaml")))
    raise ConfigError(f"--plan: {str(plan)!r} is neither a file nor a shipped plan; give a YAML file or one of: {names}")


def read_plan(plan: str | Path = "gpu", rehearse: bool = False, settings: dict | None = None,
              **changes: Any) -> Plan:
    """The plan in ``plan`` (a file or a shipped plan's name), its ``rehearse`` block applied when
    asked, then ``changes`` that are not None (``--budget``, ``--k``) and ``settings`` added to
    every piece's overrides (``--set``), checked (``check_plan``); no task: the preset's."""
    path = plan_path(plan)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"--plan: {path} is not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"--plan: {path} holds no mapping of plan keys ({', '.join(KINDS)})")
    rehearsal = values.pop("rehearse", None) or {}
    if rehearse and not rehearsal:
        raise ConfigError(f"--rehearse: {path} has no rehearse block")
    values.update(rehearsal if rehearse else {})
    values.update({key: value for key, value in changes.items() if value is not None})
    built = plan_from_dict(values)
    built.overrides = {**built.overrides, **(settings or {})}
    check_plan(built)
    built.task = built.task or preset(built.preset).task
    return built


def plan_from_dict(values: dict) -> Plan:
    """A ``Plan`` from a mapping (a plan file, or ``study.json``'s record of one), each key known,
    present when required and of its type; ConfigError in one line naming the key otherwise."""
    unknown = sorted(set(values) - set(KINDS))
    if unknown:
        raise ConfigError(f"{unknown[0]}: not a key of a study plan; the keys are: {', '.join(KINDS)}")
    missing = [key for key in REQUIRED if key not in values]
    if missing:
        raise ConfigError(f"{missing[0]}: missing from the plan; a plan needs {', '.join(REQUIRED)}")
    for key, value in values.items():
        allowed = KINDS[key]
        if isinstance(value, bool) or not isinstance(value, allowed):
            names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in allowed)
            raise ConfigError(f"{key}: {value!r} is not allowed; it must be {names}")
    return Plan(**{key: (float(value) if KINDS[key] == (int, float) else value) for key, value in values.items()})


def check_plan(plan: Plan) -> None:
    """Every piece's config validates, the folders and numbers make sense, the screening has a
    candidate; ConfigError in one line naming the field otherwise."""
    base = preset(plan.preset)
    _check_list("algos", plan.algos, "algorithm", ALGOS)
    _check_list("baselines", plan.baselines, "baseline", STUDY_BASELINES)
    if (RETROSPEX_BASELINE in plan.baselines) != (plan.critic is not None):
        raise ConfigError(f"critic: the {RETROSPEX_BASELINE} baseline, and only it, needs a critic folder "
                          "(python -m empo2_lite critic)")
    if not plan.seeds or not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in plan.seeds):
        raise ConfigError(f"seeds: {plan.seeds!r} is not allowed; give one or more integer seeds")
    _check_list("seeds", plan.seeds, "seed", None)
    if plan.main not in plan.references:
        raise ConfigError(f"references: needs {plan.main!r}, the folder of the compared runs and their reference")
    if plan.screen is not None:
        _check_screen(plan)
    if WARM_START_BASELINE in plan.baselines and not any(warm_start_of(overrides)[0] for _, overrides in candidates(plan)):
        raise ConfigError("baselines: warm-start plays the chosen warm start; no screening candidate has one "
                          f"(give a candidate {WARM_START_KEY}: N)")
    if WARM_START_BASELINE in plan.baselines and not plan.screen.get("shared"):
        raise ConfigError("baselines: warm-start plays the one chosen warm start; it needs screen.shared: true")
    _check_baseline_folders(plan)
    if plan.probe is not None:
        if plan.task is not None:
            raise ConfigError(f"task: {plan.task!r} is not allowed with a probe, which chooses the task; give null")
        check_probe(plan.probe, plan.preset, plan.overrides)
    if plan.ood is not None:
        _check_ood(plan)
    if plan.parts is not None:
        _check_parts(plan)
    for algo in plan.algos:
        apply_overrides(base, {**plan.overrides, "algo": algo, **planned_task(plan)}).validate()
    for overrides in plan.references.values():
        if not isinstance(overrides, dict):
            raise ConfigError(f"references: {overrides!r} is not allowed; each folder maps to overrides (or {{}})")
        apply_overrides(base, {**plan.overrides, **planned_task(plan), **overrides, "baseline": "naive"}).validate()
    check_integer("k", plan.k, minimum=1)
    check_integer("trials", plan.trials, minimum=1)
    if plan.iterations is not None:
        check_integer("iterations", plan.iterations, minimum=1)
    if not 0 < plan.screen_share < 1:
        raise ConfigError(f"screen_share: {plan.screen_share} is not allowed; it must be in (0, 1)")
    if not plan.budget_s > 0 or math.isnan(plan.budget_s):
        raise ConfigError(f"budget_s: {plan.budget_s} is not allowed; it must be a number of seconds > 0")
    for key in ("pack_reserve_s", "eval_reserve_s"):
        if getattr(plan, key) < 0:
            raise ConfigError(f"{key}: {getattr(plan, key)} is not allowed; it must be >= 0")
    if not plan.part_limit_s > 0 or math.isnan(plan.part_limit_s):
        raise ConfigError(f"part_limit_s: {plan.part_limit_s} is not allowed; it must be a number of seconds > 0")


def warm_start_of(overrides: dict) -> tuple[int, dict]:
    """A candidate's warm start (train variations; 0: none) and its config overrides without it."""
    rest = {key: value for key, value in overrides.items() if key != WARM_START_KEY}
    return overrides.get(WARM_START_KEY) or 0, rest


def baseline_folders(plan: Plan, baseline: str) -> list[str]:
    """The reference folders ``baseline`` plays in (``baseline_folders``; default all)."""
    return list(plan.baseline_folders.get(baseline) or plan.references)


def stages(plan: Plan) -> list[str]:
    """The study's stages in the order they run: ``probe``, ``screen`` (with its warm starts), one
    ``seed N`` per seed (that seed's compared runs and references), ``ood``; the plan's parts are
    lists of these."""
    return ([PROBE_STAGE] if plan.probe is not None else []) + ([SCREEN] if plan.screen is not None else []) + \
        [seed_stage(seed) for seed in plan.seeds] + ([OOD_STAGE] if plan.ood is not None else [])


def seed_stage(seed: int) -> str:
    """The stage of one seed's compared runs and references."""
    return f"seed {seed}"


def part_stages(plan: Plan, part: int | None) -> list[str]:
    """The stages that ``study --part part`` runs (1-based; None: all of them)."""
    if part is None:
        return stages(plan)
    if plan.parts is None:
        raise ConfigError(f"--part: {part} is not allowed; the plan {plan.name} declares no parts, so run it whole")
    check_integer("--part", part, minimum=1)
    if part > len(plan.parts):
        raise ConfigError(f"--part: {part} is not allowed; the plan {plan.name} has parts 1..{len(plan.parts)}")
    return list(plan.parts[part - 1])


def _check_baseline_folders(plan: Plan) -> None:
    """Each baseline named is played, each folder named is a reference folder."""
    for baseline, folders in plan.baseline_folders.items():
        if baseline not in plan.baselines:
            raise ConfigError(f"baseline_folders: {baseline!r} is not in baselines ({', '.join(plan.baselines)})")
        if not isinstance(folders, list) or not folders or any(folder not in plan.references for folder in folders):
            raise ConfigError(f"baseline_folders.{baseline}: {folders!r} is not allowed; give a list of reference "
                              f"folders of: {', '.join(plan.references)}")


def _check_ood(plan: Plan) -> None:
    """The OOD block's keys, its runs among the compared ones, its sibling tasks known."""
    ood = plan.ood
    unknown = sorted(set(ood) - set(OOD_KEYS))
    if unknown:
        raise ConfigError(f"ood.{unknown[0]}: not a key of an ood block; the keys are: {', '.join(OOD_KEYS)}")
    missing = [key for key in OOD_KEYS if key not in ood]
    if missing:
        raise ConfigError(f"ood.{missing[0]}: missing; an ood block needs {', '.join(OOD_KEYS)}")
    check_integer("ood.iterations", ood["iterations"], minimum=1)
    for key, among in (("algos", plan.algos), ("seeds", plan.seeds)):
        if not isinstance(ood[key], list) or not ood[key] or any(value not in among for value in ood[key]):
            raise ConfigError(f"ood.{key}: {ood[key]!r} is not allowed; give a list of the plan's {key}: "
                              f"{', '.join(map(str, among))}")
    if not isinstance(ood["siblings"], dict) or not ood["siblings"]:
        raise ConfigError("ood.siblings: give a mapping of task -> the sibling task its runs adapt to")
    tasks = [task for _, task, _ in probe_candidates(plan.probe)] or [plan.task or preset(plan.preset).task]
    unmatched = sorted(set(tasks) - set(ood["siblings"] if isinstance(ood["siblings"], dict) else ()))
    if unmatched:
        raise ConfigError(f"ood.siblings: {unmatched[0]} has no sibling; give one for every task the study may choose")
    for task, sibling in ood["siblings"].items():
        for name in (task, sibling):
            known_task("ood.siblings", name)
        if task == sibling:
            raise ConfigError(f"ood.siblings: {task} -> {sibling} is not allowed; a sibling is another task")


def _check_parts(plan: Plan) -> None:
    """Every stage in exactly one part, none before what it needs, the compared runs' iterations
    fixed (a part's runs must not be sized by a clock other parts do not share)."""
    if plan.iterations is None or (plan.screen is not None and not plan.screen.get("iterations")):
        raise ConfigError("parts: a study in parts fixes its iterations (iterations and screen.iterations); "
                          "give both, or no parts")
    wanted = stages(plan)
    given = [stage for part in plan.parts for stage in (part if isinstance(part, list) else [part])]
    if not all(isinstance(part, list) and part for part in plan.parts):
        raise ConfigError(f"parts: {plan.parts!r} is not allowed; give a list of parts, each a list of stages of: "
                          f"{', '.join(wanted)}")
    for stage in given:
        if stage not in wanted or given.count(stage) > 1:
            raise ConfigError(f"parts: {stage!r} is not allowed; each stage once, of: {', '.join(wanted)}")
    if len(given) != len(wanted):
        raise ConfigError(f"parts: {', '.join(stage for stage in wanted if stage not in given)} in no part; "
                          "every stage needs a part")
    where = {stage: index for index, part in enumerate(plan.parts) for stage in part}
    seeds = [seed_stage(seed) for seed in plan.seeds]
    needs = {SCREEN: [PROBE_STAGE], **{stage: [PROBE_STAGE, SCREEN] for stage in seeds},
             OOD_STAGE: [seed_stage(seed) for seed in (plan.ood or {}).get("seeds", [])]}
    for stage, before in needs.items():
        for need in before:
            if stage in where and need in where and where[need] > where[stage]:
                raise ConfigError(f"parts: {stage!r} is in part {where[stage] + 1}, before {need!r} (part "
                                  f"{where[need] + 1}), which it needs")


def _check_list(key: str, values: list, noun: str, allowed: tuple | None) -> None:
    """A non-empty list, each value once and (``allowed``) one of the allowed."""
    if not values:
        raise ConfigError(f"{key}: give at least one {noun}" + (f" of: {', '.join(allowed)}" if allowed else ""))
    repeated = sorted({str(value) for value in values if values.count(value) > 1})
    if repeated:
        raise ConfigError(f"{key}: {', '.join(repeated)} given twice; give each {noun} once")
    for value in values if allowed else ():
        check_choice(key, value, allowed)


def _check_screen(plan: Plan) -> None:
    """The screening's keys, algorithms, seed and candidates, each candidate's config validated."""
    screen = plan.screen
    unknown = sorted(set(screen) - set(SCREEN_KEYS))
    if unknown:
        raise ConfigError(f"screen.{unknown[0]}: not a key of a screening; the keys are: {', '.join(SCREEN_KEYS)}")
    if "seed" not in screen:
        raise ConfigError("screen.seed: missing; give the screening's seed (none of the compared seeds)")
    check_integer("screen.seed", screen["seed"], minimum=0)
    if screen.get("iterations") is not None:
        check_integer("screen.iterations", screen["iterations"], minimum=1)
    screened = screening_algos(plan)
    unknown = sorted(set(screened) - set(plan.algos))
    if unknown:
        raise ConfigError(f"screen.algos: {', '.join(unknown)} is not in algos ({', '.join(plan.algos)})")
    if not screen.get("shared") and set(screened) != set(plan.algos):
        raise ConfigError("screen.algos: without screen.shared every algorithm needs its own screening; "
                          "screen them all or set shared: true")
    if "candidates" in screen and not isinstance(screen["candidates"], dict):
        raise ConfigError("screen.candidates: give a mapping of name -> overrides")
    if "candidates" not in screen and "setting" not in screen:
        raise ConfigError("screen: give candidates (name -> overrides), or setting with values")
    if not candidates(plan):
        raise ConfigError("screen: give at least one value (values) or candidate (candidates)")
    base = preset(plan.preset)
    for name, overrides in candidates(plan):
        variations, _ = warm_start_of(overrides)
        if isinstance(variations, bool) or not isinstance(variations, int) or variations < 0:
            raise ConfigError(f"screen.candidates.{name}.{WARM_START_KEY}: {variations!r} is not allowed; give the "
                              "train variations its warm start clones (an integer >= 0; 0: none)")
    for algo in screened:
        for _, overrides in candidates(plan):
            apply_overrides(base, {**plan.overrides, **planned_task(plan), **warm_start_of(overrides)[1],
                                   "algo": algo}).validate()


def planned_task(plan: Plan) -> dict:
    """The overrides of the task the plan's pieces are checked with: its ``task``, else the probe's
    first candidate (its task and settings), else none (the preset's). Checking with the preset's own
    task would refuse a plan that moves the preset to another environment's task (``env.name``)."""
    if plan.task:
        return {"task": plan.task}
    probed = probe_candidates(plan.probe)
    return {"task": probed[0][1], **probed[0][2]} if probed else {}


def candidates(plan: Plan) -> list[tuple[object, dict]]:
    """The screened settings as (key, overrides), in order of preference on ties: ``setting`` with
    ``values`` (one setting: the key is the value) or ``candidates`` (name -> overrides: settings
    that differ in several keys, e.g. the CPU plan's learning rate, demonstrations and group); none
    without a screening."""
    if plan.screen is None:
        return []
    if "candidates" in plan.screen:
        return [(str(name), dict(overrides or {})) for name, overrides in plan.screen["candidates"].items()]
    return [(value, {plan.screen["setting"]: value}) for value in plan.screen.get("values") or []]


def screening_algos(plan: Plan) -> list[str]:
    """The algorithms that screen (``screen.algos``; default all). Fewer than all only with
    ``screen.shared``: then one choice, the best mean dev success rate (then return) over them, serves every
    algorithm."""
    if plan.screen is None:
        return []
    return list(plan.screen.get("algos") or plan.algos)


def preset_values(plan: Plan) -> dict:
    """The preset's own values of the settings the first candidate changes (the fallback choice
    when no screening run was evaluated)."""
    flat = flatten(preset(plan.preset).to_dict())
    return {setting: flat[setting] for _, overrides in candidates(plan)[:1] for setting in warm_start_of(overrides)[1]}

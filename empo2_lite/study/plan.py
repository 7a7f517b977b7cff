"""A study's plan: what it screens, trains, plays as references and how long it may take, read
from YAML into a typed ``Plan`` and checked in one line per fault before anything runs.

A plan is data (``plans/*.yaml`` ship with the kit: ``gpu``, the GPU study of issue #27, and
``cpu``, its CPU version); every key is a field of ``Plan``, so a misspelt key is refused, as is a
missing one, a value of the wrong type, an algorithm or preset the kit lacks, a screening without a
candidate, and any piece's config that would not validate. Nothing here imports torch: a bad plan
costs well under a second.

``compare`` is a plan without a screening (``compare.run_comparison`` builds one): its pieces,
their kinds and its tables are the study's.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from empo2_lite.config import (ALGOS, BASELINES, ConfigError, apply_overrides, check_choice, check_integer,
                               preset)
from empo2_lite.config.overrides import flatten

PLANS = Path(__file__).resolve().parent / "plans"
"""The plans that ship with the kit (package data): ``--plan gpu`` reads ``plans/gpu.yaml``."""
SCREEN, MAIN = "screen", "main"
"""Folders of a study: the screening runs; the compared runs beside their untrained reference."""
SCREEN_KEYS = ("setting", "values", "candidates", "algos", "shared", "iterations", "seed")
"""The keys of a plan's ``screen`` block."""


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
    """Trials of the memory-only baseline."""
    main: str = MAIN
    """The folder of the compared runs ('.': the study's folder itself, ``compare``'s layout)."""
    name: str = "gpu-study"
    """The study's archive (``<name>.tgz``) and the top folder in it."""

    @property
    def sized(self) -> bool:
        """Whether phase 2's iterations are sized from phase 1's measured costs."""
        return self.screen is not None and self.iterations is None


REQUIRED = tuple(item.name for item in fields(Plan) if item.default is MISSING and item.default_factory is MISSING)
KINDS: dict[str, tuple[type, ...]] = {
    "preset": (str,), "algos": (list,), "seeds": (list,), "references": (dict,), "budget_s": (int, float),
    "task": (str, type(None)), "screen": (dict, type(None)), "screen_share": (int, float), "k": (int,),
    "pack_reserve_s": (int, float), "eval_reserve_s": (int, float), "overrides": (dict,),
    "iterations": (int, type(None)), "baselines": (list,), "trials": (int,), "main": (str,), "name": (str,)}
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
    _check_list("baselines", plan.baselines, "baseline", BASELINES)
    if not plan.seeds or not all(isinstance(seed, int) and not isinstance(seed, bool) for seed in plan.seeds):
        raise ConfigError(f"seeds: {plan.seeds!r} is not allowed; give one or more integer seeds")
    _check_list("seeds", plan.seeds, "seed", None)
    if plan.main not in plan.references:
        raise ConfigError(f"references: needs {plan.main!r}, the folder of the compared runs and their reference")
    if plan.screen is not None:
        _check_screen(plan)
    for algo in plan.algos:
        apply_overrides(base, {**plan.overrides, "algo": algo, **({"task": plan.task} if plan.task else {})}).validate()
    for overrides in plan.references.values():
        if not isinstance(overrides, dict):
            raise ConfigError(f"references: {overrides!r} is not allowed; each folder maps to overrides (or {{}})")
        apply_overrides(base, {**plan.overrides, **overrides, "baseline": "naive"}).validate()
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
    for algo in screened:
        for _, overrides in candidates(plan):
            apply_overrides(base, {**plan.overrides, **overrides, "algo": algo}).validate()


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
    ``screen.shared``: then one choice, the best mean dev return over them, serves every algorithm."""
    if plan.screen is None:
        return []
    return list(plan.screen.get("algos") or plan.algos)


def preset_values(plan: Plan) -> dict:
    """The preset's own values of the settings the first candidate changes (the fallback choice
    when no screening run was evaluated)."""
    flat = flatten(preset(plan.preset).to_dict())
    return {setting: flat[setting] for _, overrides in candidates(plan)[:1] for setting in overrides}

"""``study --estimate``: each phase's minutes from the plan and the preset's measured (or, where
the preset never ran, estimated) costs (``config.PRESET_COSTS`` scaled by
``lab.cost_estimates.scaled_seconds``), printed before anything runs. A plan over its budget, or
one whose budget leaves the compared runs no iteration, is refused here in one line.

The pieces of a phase run k at a time, in waves; a wave takes its slowest piece. A phase that the
clock sizes (a screening without fixed iterations trains for its share of the budget; phase 2's
iterations are then sized from what phase 1 measured) is estimated the way ``phases.py`` sizes it,
with the preset's cost in place of the measured one. The pieces' own start (interpreter, model,
JVMs) is taken as ``START_S``; k processes sharing a machine run slower than one alone, which this
does not model: the estimate is a floor.

A plan with a probe is estimated at its costliest probe candidate (the longest step cap), since
the choice is not known before it runs; memory-only, Reflexion and Retrospex references cost
``baselines.evaluation_episodes`` naive evaluations each, the warm-start
reference is counted when any candidate has a warm start, EMPO²'s iterations at their expected cost
with its memory iterations where the preset measured one (``lab.cost_estimates.training_seconds``),
and each warm start ``WARM_START_S``
plus ``WARM_START_VARIATION_S`` per variation (timed on the 2-core machine). A
plan in parts also gets one line per part (each its own call: model preparation and packing
included) and is refused when a part outlasts ``part_limit_s`` or the parts together the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from empo2_lite.baselines import evaluation_episodes
from empo2_lite.config import WARM_START_BASELINE, ConfigError, PRESET_COSTS, apply_overrides, preset
from empo2_lite.study.phases import MARGIN, SCREEN_ITERATIONS, iterations_for, training_seconds
from empo2_lite.study.plan import (OOD_STAGE, PROBE_STAGE, SCREEN, Plan, baseline_folders, candidates, screening_algos,
                                   seed_stage, warm_start_of)
from empo2_lite.study.probe import probe_candidates, probed
from empo2_lite.tasks import get_task, step_cap

START_S = 20.0
"""A piece's start (interpreter, kit, model, JVMs): 15-20 s measured on the CPU VM (docs/gpu-study.md)."""
PREPARE_S = 20.0
"""The embedded model built once from its GGUF before the pieces start (~20 s; other models: none)."""
WARM_START_S = 20.0
"""A warm start's fixed cost beside its piece's start: ScienceWorld's gold paths read through one JVM."""
WARM_START_VARIATION_S = 20.0
"""Per cloned variation: its gold path played through the rollout, then 3 epochs of one optimiser
step each on ~700-1,000 tokens of the embedded model. Measured alone on the 2-core VM
(find-non-living-thing, 2026-12-07): 3 variations 84 s and 30 variations 700 s
(benchmarks/warm_start.py), 10 variations 206 s as a study piece, its start included."""


@dataclass
class Estimate:
    """Each phase's seconds (a floor) and the compared runs' iterations."""

    phases: dict[str, float]
    iterations: int
    iteration_s: float
    source: str
    parts: list[float] | None = None
    """Each part's seconds (its stages, the model's preparation and the packing), for a plan in parts."""
    slowest_iteration_s: float = 0.0
    """The costliest algorithm's expected iteration (EMPO²'s memory iterations priced in); a sized
    phase 2 is sized by it, and each compared run is summed at its own algorithm's cost."""

    @property
    def seconds(self) -> float:
        return sum(self.parts) if self.parts is not None else sum(self.phases.values())

    def lines(self, plan: Plan) -> list[str]:
        """What ``--estimate`` prints: one line per phase, then the total against the budget."""
        rows = [f"  {phase:<9} ~{seconds / 60:5.1f} min" for phase, seconds in self.phases.items()]
        limit = "" if math.isinf(plan.part_limit_s) else f" (limit {plan.part_limit_s / 60:.0f} min)"
        rows += [f"  part {index}    ~{seconds / 60:5.1f} min: {', '.join(plan.parts[index - 1])}{limit}"
                 for index, seconds in enumerate(self.parts or [], start=1)]
        budget = "no budget" if math.isinf(plan.budget_s) else f"budget {plan.budget_s / 60:.1f} min"
        slowest = (f"; EMPO² ~{self.slowest_iteration_s:.0f} s with its memory iterations"
                   if self.slowest_iteration_s > self.iteration_s + 0.5 else "")
        return [f"{plan.name}: {len(plan.algos)} algorithm(s) x {len(plan.seeds)} seed(s), {self.iterations} "
                f"iteration(s) each at ~{self.iteration_s:.0f} s ({plan.preset}: {self.source}{slowest}), "
                f"{plan.k} at once",
                *rows, f"  total     ~{self.seconds / 60:5.1f} min ({budget})"]


def _config(plan: Plan, overrides: dict, algo: str):
    return apply_overrides(preset(plan.preset), {**plan.overrides, **overrides, "algo": algo, "task": plan.task})


def _seconds(config, iterations: int, split: str | None, trials: int = 1) -> float:
    """One piece: its start, its iterations, and ``trials`` evaluations of ``split``."""
    from empo2_lite.lab.cost_estimates import scaled_seconds

    episodes = len(get_task(config.task).eval_variations(split)) * config.eval_episodes_per_variation if split else 0
    return START_S + scaled_seconds(config, iterations, episodes * trials)


def _waves(pieces: list[float], k: int) -> float:
    """Pieces in waves of k, in order: each wave takes its slowest."""
    return sum(max(pieces[start:start + k]) for start in range(0, len(pieces), k)) if pieces else 0.0


def _costliest_probe(plan: Plan) -> Plan:
    """The plan as the probe's costliest candidate (the longest step cap) would leave it."""
    if plan.probe is None:
        return plan
    def steps(entry: tuple[str, str, dict]) -> int:
        _, task, overrides = entry
        config = apply_overrides(preset(plan.preset), {**plan.overrides, **overrides, "task": task})
        return config.rollout.max_steps or step_cap(task, config.env.default_max_steps)

    _, task, overrides = max(probe_candidates(plan), key=steps)
    return probed(plan, {"task": task, "overrides": overrides})


def _reference_seconds(plan: Plan) -> list[float]:
    """Per seed and baseline (one reference piece), its evaluations in its folders, each costing
    ``evaluation_episodes`` naive evaluations (memory-only its trials, Reflexion and Retrospex more);
    warm-start only when some candidate has a warm start."""
    warm = any(warm_start_of(overrides)[0] for _, overrides in candidates(plan))
    return [sum(_seconds(_config(plan, plan.references[folder], plan.algos[0]), 0, "test",
                         trials=evaluation_episodes(baseline, plan.trials)) for folder in baseline_folders(plan, baseline))
            for _ in plan.seeds for baseline in plan.baselines if baseline != WARM_START_BASELINE or warm]


def _warm_start_seconds(plan: Plan) -> list[float]:
    """Each distinct warm start of the screening's candidates."""
    counts = sorted({warm_start_of(overrides)[0] for _, overrides in candidates(plan)} - {0})
    return [START_S + WARM_START_S + WARM_START_VARIATION_S * count for count in counts]


def _ood_seconds(plan: Plan) -> float:
    """The OOD adaptations: per run, its memory iterations each one evaluation of the sibling's test split."""
    if plan.ood is None:
        return 0.0
    config = _config(plan, {}, plan.ood["algos"][0])
    sibling = plan.ood["siblings"].get(plan.task)
    episodes = len(get_task(sibling).eval_variations("test")) * config.eval_episodes_per_variation if sibling else 0
    from empo2_lite.lab.cost_estimates import scaled_seconds

    one = START_S + scaled_seconds(config, 0, episodes * plan.ood["iterations"])
    return _waves([one] * len(plan.ood["algos"]) * len(plan.ood["seeds"]), plan.k)


def estimate(plan: Plan) -> Estimate | None:
    """Each phase's seconds by the preset's cost (None: the preset has none)."""
    cost = PRESET_COSTS.get(plan.preset)
    if cost is None:
        return None
    phases = {"prepare": PREPARE_S if preset(plan.preset).policy.model.startswith("embedded:") else 0.0}
    if plan.probe is not None:
        probes = [START_S + _probe_seconds(plan, task, overrides) for _, task, overrides in probe_candidates(plan)]
        phases["probe"] = _waves(probes, plan.k)
    plan = _costliest_probe(plan)
    shared = bool(plan.screen and plan.screen.get("shared"))
    per_reference = _reference_seconds(plan)
    # an iteration past the first: EMPO²'s then include its expected memory iterations
    iteration_costs = [_seconds(_config(plan, {}, algo), 2, None) - _seconds(_config(plan, {}, algo), 1, None)
                       for algo in plan.algos]
    per_iteration, slowest = min(iteration_costs), max(iteration_costs)
    if plan.screen is not None:
        fixed = plan.screen.get("iterations")
        screening = [_seconds(_config(plan, warm_start_of(overrides)[1], algo), fixed or SCREEN_ITERATIONS, "dev")
                     for algo in screening_algos(plan) for _, overrides in candidates(plan)]
        window = plan.screen_share * (plan.budget_s - plan.pack_reserve_s - PREPARE_S)
        first = screening + ([] if shared else per_reference)
        warm = _waves(_warm_start_seconds(plan), plan.k)
        phases["phase 1"] = warm + (min(_waves(first, plan.k), window) if fixed else window)
    left = plan.budget_s - plan.pack_reserve_s - sum(phases.values())
    second = per_reference if shared or plan.screen is None else []
    evaluation = max(_seconds(_config(plan, {}, algo), 0, "test") - START_S for algo in plan.algos)
    if plan.sized:
        train_s = training_seconds(left, len(plan.algos) * len(plan.seeds) + len(second), plan.k, evaluation * MARGIN)
        iterations = iterations_for(train_s, START_S, slowest) if math.isfinite(train_s) else 0
    else:
        iterations = plan.iterations or preset(plan.preset).iterations
    compared = [_seconds(_config(plan, {}, algo), iterations, "test") for algo in plan.algos for _ in plan.seeds]
    phases["phase 2"] = _waves(compared + second, plan.k)
    if plan.ood is not None:
        phases["ood"] = _ood_seconds(plan)
    phases["pack"] = plan.pack_reserve_s
    parts = None
    if plan.parts is not None:
        per_seed = len(second) // len(plan.seeds)
        stage_s = {PROBE_STAGE: phases.get("probe", 0.0), SCREEN: phases.get("phase 1", 0.0),
                   OOD_STAGE: phases.get("ood", 0.0),
                   **{seed_stage(seed): _waves([compared[index + len(plan.seeds) * order] for order in range(len(plan.algos))]
                                               + second[index * per_seed:(index + 1) * per_seed], plan.k)
                      for index, seed in enumerate(plan.seeds)}}
        parts = [phases["prepare"] + sum(stage_s[stage] for stage in part) + plan.pack_reserve_s for part in plan.parts]
    return Estimate(phases, iterations, per_iteration, cost.source, parts, slowest)


def _probe_seconds(plan: Plan, task: str, overrides: dict) -> float:
    """One probe: the dev split, one episode per variation, at its step cap."""
    from empo2_lite.lab.cost_estimates import scaled_seconds

    config = apply_overrides(preset(plan.preset), {**plan.overrides, **overrides, "task": task})
    return scaled_seconds(config, 0, len(get_task(task).eval_variations("dev")))


def check_budget(plan: Plan, found: Estimate | None) -> None:
    """Refuse, in one line, a plan whose budget leaves the compared runs no iteration, or whose
    estimate (a floor) is over its budget."""
    if found is None:
        return
    if found.iterations < 1:
        raise ConfigError(f"budget_s: {plan.budget_s:.0f} s leave the compared runs no iteration at ~"
                          f"{found.iteration_s:.0f} s each ({plan.preset}: {found.source}); raise it (--budget)")
    for index, seconds in enumerate(found.parts or [], start=1):
        if seconds > plan.part_limit_s:
            raise ConfigError(f"parts: part {index} needs ~{seconds / 60:.0f} min by {plan.preset}'s costs, more than "
                              f"part_limit_s ({plan.part_limit_s / 60:.0f} min); move a stage to another part or plan "
                              "fewer iterations")
    if found.seconds > plan.budget_s:
        raise ConfigError(f"budget_s: the plan needs ~{found.seconds / 60:.0f} min by {plan.preset}'s costs, more than "
                          f"its {plan.budget_s / 60:.0f} min; raise it (--budget) or plan fewer iterations, seeds or "
                          "algorithms")

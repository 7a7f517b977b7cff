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
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from empo2_lite.config import ConfigError, PRESET_COSTS, apply_overrides, preset
from empo2_lite.study.phases import MARGIN, SCREEN_ITERATIONS, iterations_for, training_seconds
from empo2_lite.study.plan import Plan, candidates, screening_algos
from empo2_lite.tasks import get_task

START_S = 20.0
"""A piece's start (interpreter, kit, model, JVMs): 15-20 s measured on the CPU VM (docs/gpu-study.md)."""
PREPARE_S = 20.0
"""The embedded model built once from its GGUF before the pieces start (~20 s; other models: none)."""


@dataclass
class Estimate:
    """Each phase's seconds (a floor) and the compared runs' iterations."""

    phases: dict[str, float]
    iterations: int
    iteration_s: float
    source: str

    @property
    def seconds(self) -> float:
        return sum(self.phases.values())

    def lines(self, plan: Plan) -> list[str]:
        """What ``--estimate`` prints: one line per phase, then the total against the budget."""
        rows = [f"  {phase:<9} ~{seconds / 60:5.1f} min" for phase, seconds in self.phases.items()]
        budget = "no budget" if math.isinf(plan.budget_s) else f"budget {plan.budget_s / 60:.1f} min"
        return [f"{plan.name}: {len(plan.algos)} algorithm(s) x {len(plan.seeds)} seed(s), {self.iterations} "
                f"iteration(s) each at ~{self.iteration_s:.0f} s ({plan.preset}: {self.source}), {plan.k} at once",
                *rows, f"  total     ~{self.seconds / 60:5.1f} min ({budget})"]


def _config(plan: Plan, overrides: dict, algo: str):
    return apply_overrides(preset(plan.preset), {**plan.overrides, **overrides, "algo": algo, "task": plan.task})


def _seconds(config, iterations: int, split: str | None) -> float:
    """One piece: its start, its iterations, and one evaluation of ``split``."""
    from empo2_lite.lab.cost_estimates import scaled_seconds

    episodes = len(get_task(config.task).eval_variations(split)) * config.eval_episodes_per_variation if split else 0
    return START_S + scaled_seconds(config, iterations, episodes)


def _waves(pieces: list[float], k: int) -> float:
    """Pieces in waves of k, in order: each wave takes its slowest."""
    return sum(max(pieces[start:start + k]) for start in range(0, len(pieces), k)) if pieces else 0.0


def estimate(plan: Plan) -> Estimate | None:
    """Each phase's seconds by the preset's cost (None: the preset has none)."""
    cost = PRESET_COSTS.get(plan.preset)
    if cost is None:
        return None
    shared = bool(plan.screen and plan.screen.get("shared"))
    references = [_seconds(_config(plan, overrides, plan.algos[0]), 0, "test")
                  for _ in plan.seeds for _ in plan.baselines for overrides in plan.references.values()]
    per_reference = [sum(references[index:index + len(plan.references)])
                     for index in range(0, len(references), len(plan.references))]
    phases = {"prepare": PREPARE_S if preset(plan.preset).policy.model.startswith("embedded:") else 0.0}
    per_iteration = max(_seconds(_config(plan, {}, algo), 1, None) - START_S for algo in plan.algos)
    if plan.screen is not None:
        fixed = plan.screen.get("iterations")
        screening = [_seconds(_config(plan, overrides, algo), fixed or SCREEN_ITERATIONS, "dev")
                     for algo in screening_algos(plan) for _, overrides in candidates(plan)]
        window = plan.screen_share * (plan.budget_s - plan.pack_reserve_s - PREPARE_S)
        first = screening + ([] if shared else per_reference)
        phases["phase 1"] = min(_waves(first, plan.k), window) if fixed else window
    left = plan.budget_s - plan.pack_reserve_s - sum(phases.values())
    second = per_reference if shared or plan.screen is None else []
    evaluation = max(_seconds(_config(plan, {}, algo), 0, "test") - START_S for algo in plan.algos)
    if plan.sized:
        train_s = training_seconds(left, len(plan.algos) * len(plan.seeds) + len(second), plan.k, evaluation * MARGIN)
        iterations = iterations_for(train_s, START_S, per_iteration) if math.isfinite(train_s) else 0
    else:
        iterations = plan.iterations or preset(plan.preset).iterations
    compared = [_seconds(_config(plan, {}, algo), iterations, "test") for algo in plan.algos for _ in plan.seeds]
    phases["phase 2"] = _waves(compared + second, plan.k)
    phases["pack"] = plan.pack_reserve_s
    return Estimate(phases, iterations, per_iteration, cost.source)


def check_budget(plan: Plan, found: Estimate | None) -> None:
    """Refuse, in one line, a plan whose budget leaves the compared runs no iteration, or whose
    estimate (a floor) is over its budget."""
    if found is None:
        return
    if found.iterations < 1:
        raise ConfigError(f"budget_s: {plan.budget_s:.0f} s leave the compared runs no iteration at ~"
                          f"{found.iteration_s:.0f} s each ({plan.preset}: {found.source}); raise it (--budget)")
    if found.seconds > plan.budget_s:
        raise ConfigError(f"budget_s: the plan needs ~{found.seconds / 60:.0f} min by {plan.preset}'s costs, more than "
                          f"its {plan.budget_s / 60:.0f} min; raise it (--budget) or plan fewer iterations, seeds or "
                          "algorithms")

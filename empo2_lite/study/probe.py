"""The probe: the untrained model on the dev split under each declared task, step cap and number of
demonstrations, and the plan's numeric rule that picks one of them before anything trains.

Why (issue #36): a task is worth a study on a small model only when the untrained model gets near
success often enough for the groups' returns to differ (RL has something to reinforce) and is not
already solving it. The plan states that as numbers before any result, e.g. "at least 5 of 20 dev
episodes at 50 points or more, success below 50%"::

    probe:
      candidates:                          # in order of preference
        fnlt-10-d1: {task: find-non-living-thing, rollout.max_steps: 10, rollout.demonstrations: 1}
      rule: {points: 50, at_least: 5, success_below: 0.5}
      temperature: 1.0                     # the training rollouts' temperature
      seed: 100

Each candidate is one ``probe`` piece: ``eval --baseline naive --split dev`` with its overrides, one
episode per dev variation. The choice (``pick``) is the first candidate, in the plan's order, that
meets the rule; when none does, the candidate with the most episodes at ``points`` or more (ties:
the first listed), recorded with ``rule_met: false``, so that the study goes on and says so. The
chosen task and overrides then hold for every later piece (``probed``).

Counted per variation (``per_variation`` of the evaluation row): with one episode per variation,
that is per episode. Torch-free; what the plan may say of the probe is checked in ``probe_rules.py``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from empo2_lite.config import ConfigError
from empo2_lite.study.plan import PROBE_STAGE, Plan
from empo2_lite.study.probe_rules import probe_candidates as candidates_of
from empo2_lite.study.schedule import Piece

def probe_candidates(plan: Plan) -> list[tuple[str, str, dict]]:
    """The probed settings as (name, task, overrides without the task), in the plan's order."""
    return candidates_of(plan.probe)


def probe_pieces(plan: Plan, root: Path) -> list[Piece]:
    """One ``probe`` piece per candidate: the untrained model on dev, one episode per variation."""
    return [Piece(f"probe-{name}", {
        "kind": "probe", "root": str(root / PROBE_STAGE), "name": f"probe-{name}", "preset": plan.preset,
        "task": task, "seed": plan.probe["seed"], "temperature": plan.probe.get("temperature"),
        "overrides": {**plan.overrides, **overrides}})
        for name, task, overrides in probe_candidates(plan)]


def outcome(row: dict, rule: dict) -> dict:
    """What the rule reads in one probe's evaluation row, and whether it passes."""
    returns = list(row["per_variation"].values())
    at_points = sum(value >= rule["points"] for value in returns)
    return {"episodes": len(returns), "at_points": at_points, "success_rate": row["success_rate"],
            "return_mean": row["return_mean"],
            "passes": at_points >= rule["at_least"] and row["success_rate"] < rule["success_below"]}


def pick(plan: Plan, rows: dict[str, dict | None]) -> dict:
    """The probe's choice from each candidate's dev row (None: not played): the first passing
    candidate in the plan's order, else the most episodes at ``points`` (ties: the first listed)."""
    outcomes = {name: outcome(rows[name], plan.probe["rule"]) for name, _, _ in probe_candidates(plan)
                if rows.get(name) is not None}
    if not outcomes:
        raise ConfigError("probe: no probe was evaluated; run the study again on its folder to play them")
    passing = [name for name, result in outcomes.items() if result["passes"]]
    chosen = passing[0] if passing else max(outcomes, key=lambda name: outcomes[name]["at_points"])
    task, overrides = next((task, overrides) for name, task, overrides in probe_candidates(plan) if name == chosen)
    return {"value": chosen, "task": task, "overrides": overrides, "rule_met": bool(passing), "rule": plan.probe["rule"],
            "outcomes": outcomes}


def choose_probe(plan: Plan, work: Path) -> dict:
    """``pick`` on the dev rows the probe pieces recorded under ``work/probe``."""
    from empo2_lite.runs import RunDir

    def row(name: str) -> dict | None:
        rows = [row for row in RunDir(work / PROBE_STAGE / f"probe-{name}").read_evals() if row.get("split") == "dev"]
        return rows[-1] if rows else None

    return pick(plan, {name: row(name) for name, _, _ in probe_candidates(plan)})


def probed(plan: Plan, choice: dict | None) -> Plan:
    """The plan every later piece follows: the probe's task, its overrides over the plan's."""
    if choice is None:
        return plan
    return replace(plan, task=choice["task"], overrides={**plan.overrides, **choice["overrides"]})

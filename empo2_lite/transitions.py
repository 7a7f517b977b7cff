"""Played episodes as transitions, one JSON line per step: what an offline-RL critic learns from.

Why a file of its own: the Retrospex baseline (``baselines/retrospex.py``) re-ranks the actor's
candidate actions with a critic trained offline (``baselines/critic.py``), and the original trained
it on thousands of played trajectories. The trainer appends every iteration's episodes to the run's
``steps.jsonl`` (``RunDir.append_steps``; cut back on resume like the run's other append-only
files), so a critic can be trained from any run's rollouts; the critic job also turns gold paths
and untrained episodes into the same rows.

A row is self-contained (one step of one episode)::

    iteration, episode (rollout id), task, variation, step (0-based),
    task_description, state (the observation the action was chosen in), action (as executed),
    reward (change of score, in points), score, next_state (the observation it led to),
    terminal (the episode ended there by completion or failure), end_reason (last step only)

An episode cut by the step cap or the context is not terminal: the critic bootstraps from its last
state, since the task was not over. Episodes lost to an environment failure are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from empo2_lite.trajectory import Trajectory, played

TERMINAL_END_REASONS = ("completed", "failed")
"""End reasons after which nothing more can be earned (the critic does not bootstrap)."""


def state_text(task_description: str, observation: str) -> str:
    """What the critic reads as a state: the task and the current observation (the original reads
    the task, the observation and the look/inventory; the kit's steps record no inventory)."""
    return f"{task_description.strip()}\n{observation.strip()}"


def step_rows(trajectories: Sequence[Trajectory], iteration: int) -> list[dict[str, Any]]:
    """One row per step of every played episode, in rollout-id order."""
    rows = []
    for trajectory in sorted(played(trajectories), key=lambda trajectory: trajectory.rollout_id):
        turns = trajectory.turns
        for step, turn in enumerate(turns):
            last = step == len(turns) - 1
            rows.append({
                "iteration": iteration, "episode": trajectory.rollout_id, "task": trajectory.task,
                "variation": trajectory.variation, "step": step, "task_description": trajectory.task_description,
                "state": turns[step - 1].observation if step else turn.history, "action": turn.action,
                "reward": turn.reward, "score": turn.score, "next_state": turn.observation,
                "terminal": last and trajectory.end_reason in TERMINAL_END_REASONS,
                "end_reason": trajectory.end_reason if last else None})
    return rows


@dataclass(frozen=True)
class Transition:
    """One (state, action, reward, next state) the critic learns from, its texts ready to encode."""

    state: str
    action: str
    reward: float
    """Change of score in points (the critic scales it)."""
    next_state: str
    terminal: bool


def transitions(rows: Iterable[dict[str, Any]]) -> list[Transition]:
    """The transitions of step rows (``step_rows`` or a run's ``steps.jsonl``)."""
    return [Transition(state_text(row["task_description"], row["state"]), row["action"], float(row["reward"]),
                       state_text(row["task_description"], row["next_state"]), bool(row["terminal"]))
            for row in rows]

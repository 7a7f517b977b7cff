"""What every text environment hands the loop: an episode's start, each step's result, a lost episode.

Why neutral: rollouts, memory, novelty, the engines, evaluation and the summaries only need what
any multi-turn text game has (an observation, a score and its change, done, success, the action
as executed). What one environment adds beside that (ScienceWorld's inventory and its official
"score > 70" criterion, say) goes in ``info``, and only that environment's own spec
(``env.spec.Environment``: its first message, its summary extras) reads it.

Scores are on the kit's scale, whatever the environment's own: 100 is solved, a lost game is
negative (ScienceWorld's wrong ``focus on`` scores -100), so returns, success and the figures mean
the same thing in every environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUCCESS_SCORE = 100
"""A solved episode's score on the kit's scale."""


@dataclass(frozen=True)
class EpisodeStart:
    """What the agent knows when an episode begins."""

    task: str
    variation: int
    observation: str
    """What the agent sees first (ScienceWorld: ``look around`` in the starting room)."""
    task_description: str
    max_steps: int
    score: int
    """Score of the starting state (some tasks award a few points before any action)."""
    info: dict[str, Any] = field(default_factory=dict)
    """What only this environment has (ScienceWorld: ``inventory``), for its own first message."""


@dataclass(frozen=True)
class StepResult:
    """The outcome of one agent action."""

    observation: str
    reward: int
    """Change of score caused by this step."""
    score: int
    """Score after this step, on the kit's scale (100: solved)."""
    done: bool
    success: bool
    """Solved: the environment's own success, with score 100."""
    raw_action: str
    """The text the policy produced."""
    action: str
    """The action the environment executed (after its projection of the text to a valid action)."""
    info: dict[str, Any] = field(default_factory=dict)
    """``steps``, ``corrected`` (the projection replaced the text), ``end_reason`` (completed,
    failed, max_steps or None while running), and what only this environment reports
    (ScienceWorld: ``success_official``, ``ambiguity_options``)."""


@dataclass(frozen=True)
class EpisodeFailure:
    """An episode lost to a crashed, hung or misbehaving environment process (the pool restarts it).

    It sits with ``EpisodeStart`` and ``StepResult`` because it is the third thing a pool can
    return for a slot: every ``EpisodePool`` (``protocol.py``) returns it."""

    slot: int
    error: str


class EpisodeOverError(RuntimeError):
    """``step`` was called on an episode that has ended (or never started)."""

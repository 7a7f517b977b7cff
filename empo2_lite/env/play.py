"""Play a fixed list of actions (or the environment's gold sequence) through its adapter.

Used by the ``play`` and ``demo`` commands and by notebooks to show an episode by hand; the same
adapter the trainer uses executes every step, so what you see here is what the agent gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from empo2_lite.env.scienceworld.adapter import ScienceWorldAdapter
from empo2_lite.env.episode import EpisodeStart, StepResult


@dataclass
class PlayedEpisode:
    """A finished (or exhausted) scripted episode."""

    start: EpisodeStart
    steps: list[StepResult] = field(default_factory=list)

    @property
    def score(self) -> int:
        """Final score (0 if no step was taken)."""
        return self.steps[-1].score if self.steps else 0

    @property
    def done(self) -> bool:
        """Whether the episode ended (completion, failure or step cap)."""
        return bool(self.steps) and self.steps[-1].done

    def summary(self) -> dict:
        """The JSON-ready outcome printed by ``play --json``."""
        last = self.steps[-1] if self.steps else None
        return {
            "task": self.start.task,
            "variation": self.start.variation,
            "score": self.score,
            "success": bool(last and last.success),
            "success_official": bool(last and last.info.get("success_official")),
            "steps": len(self.steps),
            "done": self.done,
            "end_reason": last.info["end_reason"] if last else None,
            "actions": [step.action for step in self.steps],
        }


def play_actions(
    adapter: ScienceWorldAdapter | Any,
    task: str,
    variation: int,
    actions: Sequence[str] | None,
    *,
    max_steps: int | None = None,
    on_start: Callable[[EpisodeStart], None] | None = None,
    on_step: Callable[[StepResult], None] | None = None,
) -> PlayedEpisode:
    """Play ``actions`` (None: the gold sequence) until they run out or the episode ends.

    With the gold sequence the step cap is raised to its length when it is longer, so a
    demonstration is never cut short.
    """
    gold = actions is None
    start = adapter.reset(task, variation, max_steps=max_steps, gold=gold)
    if gold:
        actions = adapter.gold_actions()
        if len(actions) > start.max_steps:
            start = adapter.reset(task, variation, max_steps=len(actions), gold=False)
    if on_start:
        on_start(start)
    episode = PlayedEpisode(start=start)
    for text in actions:
        result = adapter.step(text)
        episode.steps.append(result)
        if on_step:
            on_step(result)
        if result.done:
            break
    return episode

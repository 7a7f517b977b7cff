"""The intrinsic novelty reward: 1/n, where n counts visits to states like this one.

The paper keeps a list of distinct states; for a new state it counts the n similar past states and
pays 1/n; a state unlike all others joins the list. Our measure of "similar": the Jaccard index of
the word sets of the two observations reaches ``MemoryConfig.novelty_threshold`` (0.8 by default).
Each distinct state keeps a visit count (a visit counts towards the most similar state), and n is
the total count of the states similar to this one, this visit included, so repeating a state pays
1, 1/2, 1/3, ... and a new state pays 1. Step t of every episode of an iteration is scored against
the counts from before step t (``score_step``, called by ``rollout.pay_novelty`` once all waves are
played), so neither the order of the episodes nor the number of environments (how many waves play
them) can change anyone's reward. Counts carry over from one iteration to the next: "new" means new
to this variation over the whole run, not new to the group.

How the per-step rewards enter the return is a setting (``MemoryConfig.novelty_aggregation``):
their sum (the paper: a return is the sum of its rewards) or their mean. The sum grows with the
episode's length and can outweigh partial scores of 5-25; the mean is bounded by 1.
States are kept per (task, variation), like the tips.

The official code instead pays 1/(k+1) for k retrieved tips, only in memory rollouts; the kit
implements the paper's state-novelty version in every mode (docs/deviations.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from empo2_lite.env.actions import words


@dataclass
class _State:
    words: frozenset[str]
    visits: int = 1


@dataclass
class Novelty:
    """Visit counts of distinct states per (task, variation)."""

    threshold: float = 0.8
    _states: dict[tuple[str, int], list[_State]] = field(default_factory=dict)

    def reward(self, task: str, variation: int, observation: str) -> float:
        """Record a visit to ``observation``'s state and return 1/n."""
        return self.score_step([(task, variation, observation)])[0]

    def score_step(self, visits: Sequence[tuple[str, int, str]]) -> list[float]:
        """1/n for every (task, variation, observation) reached at one step index.

        All of them are scored against the counts as they were before the step, and only then
        are the visits added. Scoring them one after another would pay 1, 1/2, ..., 1/8 to eight
        members of a GRPO group that reach the same new state at the same step, and GRPO's
        normalisation would turn that slot-order artefact into advantages of about +-1.
        """
        parsed = [((task, variation), words(observation)) for task, variation, observation in visits]
        rewards = []
        for slot, current in parsed:
            similar = [state for state in self._states.get(slot, []) if _jaccard(state.words, current) >= self.threshold]
            rewards.append(1.0 / (1 + sum(state.visits for state in similar)))
        for slot, current in parsed:
            self._add_visit(slot, current)
        return rewards

    def _add_visit(self, slot: tuple[str, int], current: frozenset[str]) -> None:
        """Count a visit towards the most similar state, or start a new state."""
        states = self._states.setdefault(slot, [])
        similar = [state for state in states if _jaccard(state.words, current) >= self.threshold]
        if similar:
            max(similar, key=lambda state: _jaccard(state.words, current)).visits += 1
        else:
            states.append(_State(current))

    def distinct_states(self, task: str, variation: int) -> int:
        """How many distinct states the slot holds."""
        return len(self._states.get((task, variation), []))

    def __call__(self, visits: Sequence[tuple[str, int, str]]) -> list[float]:
        return self.score_step(visits)

    def to_json(self) -> dict:
        """The visit counts as JSON-ready data (for checkpoints)."""
        return {"threshold": self.threshold,
                "slots": [[task, variation, [[sorted(state.words), state.visits] for state in states]]
                          for (task, variation), states in self._states.items()]}

    @classmethod
    def from_json(cls, data: dict) -> "Novelty":
        """The inverse of ``to_json``."""
        novelty = cls(threshold=data["threshold"])
        for task, variation, states in data["slots"]:
            novelty._states[(task, variation)] = [_State(frozenset(words), visits) for words, visits in states]
        return novelty


def _jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return len(a & b) / len(union) if union else 1.0

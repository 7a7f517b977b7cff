"""What rollouts, evaluation and the trainer need from a pool of environments.

Why a protocol: the lock-step loop (``rollout.collect_rollouts``) only resets slots, steps the
running ones and drops an episode it gives up on. Typing it against this protocol instead of
``EnvPool`` lets tests drive the same loop with a pool that replays recorded ScienceWorld
transitions (``tests/replay_pool.py``), with no JVM, in milliseconds. ``EnvPool`` satisfies it as
is; on-demand views such as ``EnvPool.adapter(slot).valid_actions()`` are not part of it, because
no rollout needs them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from empo2_lite.env.episode import EpisodeFailure, EpisodeStart, StepResult


@runtime_checkable
class EpisodePool(Protocol):
    """Slots that each play one episode at a time, reset and stepped together (lock-step)."""

    @property
    def size(self) -> int:
        """Number of slots: the most episodes one wave can play."""
        ...

    @property
    def active(self) -> list[int]:
        """Slots whose episode is still running, in order."""
        ...

    def reset(self, episodes: Sequence[tuple[str, int]], *,
              max_steps: int | None = None) -> list[EpisodeStart | EpisodeFailure]:
        """Start one episode per (task, variation), slot i playing ``episodes[i]``; ``max_steps``
        overrides the tasks' step caps. A slot that fails to start returns an EpisodeFailure."""
        ...

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult | EpisodeFailure]:
        """Execute each slot's action text; finished or failed episodes leave ``active``."""
        ...

    def abandon(self, slot: int) -> None:
        """End ``slot``'s episode early (its prompt outgrew the context, say)."""
        ...

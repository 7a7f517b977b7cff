"""A pool of TextWorldExpress games for lock-step play (``env/protocol.py``'s ``EpisodePool``).

One JVM holds every slot's game (``adapter.py`` says why); the slots are stepped in turn. A slot
whose call raises (a py4j error, a JVM gone) ends its episode with an ``EpisodeFailure``; when the
JVM itself has died, it is started again with fresh game objects before the next reset.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from empo2_lite.config import EnvConfig
from empo2_lite.env.episode import EpisodeFailure, EpisodeStart, StepResult
from empo2_lite.env.textworldexpress.adapter import TextWorldExpressGame, TextWorldExpressJVM
from empo2_lite.env.textworldexpress.games import fold_of, game

logger = logging.getLogger(__name__)


class TextWorldExpressPool:
    """``size`` TextWorldExpress games in one JVM."""

    def __init__(self, size: int, config: EnvConfig | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size: {size!r} is not allowed; it must be an integer >= 1")
        self.config = config or EnvConfig(name="textworldexpress")
        self._size = size
        self._jvm: TextWorldExpressJVM | None = None
        self._games: list[TextWorldExpressGame] = []
        self._active: set[int] = set()
        self.failures = 0
        """Episodes lost to failures since the pool started."""
        self._start()

    @property
    def size(self) -> int:
        return self._size

    @property
    def active(self) -> list[int]:
        return sorted(self._active)

    def game(self, slot: int) -> TextWorldExpressGame:
        """The game of ``slot`` (for views such as ``valid_actions`` or ``gold_actions``)."""
        return self._games[slot]

    def reset(self, episodes: Sequence[tuple[str, int]], *, gold: bool = False,
              max_steps: int | None = None) -> list[EpisodeStart | EpisodeFailure]:
        """Start one episode per (task, seed), slot i playing ``episodes[i]``; bad names or seeds raise
        before any episode starts."""
        if len(episodes) > self.size:
            raise ValueError(f"episodes: {len(episodes)} episodes do not fit a pool of {self.size}")
        for task, seed in episodes:
            game(task)  # KeyError for a name the spec did not route here
            if fold_of(seed) is None:
                raise ValueError(f"variation: {seed} is no TextWorldExpress seed (folds: 0..999, 10000..10999, 20000..20999)")
        if self._jvm is None:
            self._start()
        results = {slot: self._call(slot, lambda g, t=task, s=seed: g.reset(t, s, max_steps=max_steps, gold=gold))
                   for slot, (task, seed) in enumerate(episodes)}
        self._active = {slot for slot, result in results.items() if isinstance(result, EpisodeStart)}
        return [results[slot] for slot in range(len(episodes))]

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult | EpisodeFailure]:
        """Step the given active slots; finished or failed episodes drop out."""
        inactive = sorted(set(actions) - self._active)
        if inactive:
            raise ValueError(f"actions: slots {inactive} have no running episode; active slots: {self.active}")
        results = {slot: self._call(slot, lambda g, text=text: g.step(text)) for slot, text in actions.items()}
        for slot, result in results.items():
            if isinstance(result, EpisodeFailure) or result.done:
                self._active.discard(slot)
        return results

    def abandon(self, slot: int) -> None:
        """End ``slot``'s episode early."""
        self._active.discard(slot)

    def close(self) -> None:
        """Stop the JVM."""
        if self._jvm is not None:
            self._jvm.close()
        self._jvm, self._games = None, []
        self._active.clear()

    def __enter__(self) -> "TextWorldExpressPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        self._jvm = TextWorldExpressJVM()
        self._games = [TextWorldExpressGame(self._jvm.new_game()) for _ in range(self._size)]

    def _call(self, slot: int, call):
        """``call`` on the slot's game; any error ends that slot's episode only (and a dead JVM is
        replaced before the next reset)."""
        try:
            return call(self._games[slot])
        except (ValueError, KeyError):
            raise
        except Exception as error:  # noqa: BLE001 - any py4j/JVM failure ends this episode only
            self.failures += 1
            logger.warning("TextWorldExpress slot %d failed: %s", slot, error)
            if not self._alive():
                self.close()
            return EpisodeFailure(slot=slot, error=f"{type(error).__name__}: {error}")

    def _alive(self) -> bool:
        try:
            return self._jvm is not None and self._jvm.new_game() is not None
        except Exception:  # noqa: BLE001 - a dead gateway raises on any call
            return False

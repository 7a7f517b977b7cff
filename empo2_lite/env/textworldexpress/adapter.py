"""TextWorldExpress games as the kit plays them: one JVM, one game object per slot, free text in.

Why one JVM for all slots: a game object of the package's Java side (``PythonInterface``) holds
one game, and any number of them live in one JVM behind one py4j gateway. A step takes well under
a millisecond of Java time (hundreds to thousands of steps a second on one core), so the slots are
stepped one after another in the caller's thread: threads or one JVM per slot would buy nothing
here, unlike ScienceWorld's ~30 ms steps (``env/scienceworld/pool.py``). Measured with 8 slots
(``benchmarks/twx_pool_layout.py``, docs/twx-pool-layout-2026-12-07.json): one JVM started in 0.37 s
with 48 MB and stepped 1,870 steps/s; one JVM per slot took 2.7 s and 381 MB, and stepped 997
steps/s with a thread per slot (472 without).

What the adapter adds on top of the package:

* **Seeds checked against their fold.** The package generates a game for any seed and fold it is
  given; the kit's splits are the folds (``games.py``), so a seed outside its split is refused.
* **Action projection.** The package matches actions exactly, case included, and an unknown action
  still costs a move. The kit lower-cases and collapses spaces, plays the text when it is one of
  the state's valid actions, and otherwise the valid action closest by word overlap
  (``env.actions.closest_action``, as for ScienceWorld); ``info["corrected"]`` says which.
* **The kit's scale.** The package scores 0-1; the kit multiplies by 100. A game lost by a wrong
  move (arithmetic, sorting, simon says, pecking order, cooking world) scores -100, as a wrong
  ``focus on`` does in ScienceWorld; coin, twc and map reader cannot be lost and end at the step cap.
* **Termination.** Success (the package's ``tasksuccess``), failure (``taskfailure``) or the step
  cap; stepping an ended episode raises, where the package would keep answering.
"""

from __future__ import annotations

import json
from typing import Any

from empo2_lite.env.actions import closest_action, find_exact, normalize_action
from empo2_lite.env.episode import SUCCESS_SCORE, EpisodeOverError, EpisodeStart, StepResult
from empo2_lite.env.textworldexpress.games import fold_of, game
from empo2_lite.tasks import UnknownTaskError, get_task

FAILED_SCORE = -100
"""A lost game's score on the kit's scale."""


class TextWorldExpressJVM:
    """The package's JVM and gateway, from which game objects are made."""

    def __init__(self) -> None:
        try:
            from textworld_express import TextWorldExpressEnv
        except ImportError as error:  # pragma: no cover - requirements.txt installs it
            raise ImportError("TextWorldExpress needs the textworld-express package: pip install textworld-express") from error
        self._env = TextWorldExpressEnv(envStepLimit=10**6)  # the kit caps steps itself

    def new_game(self):
        """A fresh game object (the package's ``PythonInterface``) in this JVM."""
        return self._env._gateway.jvm.textworldexpress.runtime.PythonInterface()

    def close(self) -> None:
        self._env.close()


class TextWorldExpressGame:
    """One game object, playing one episode at a time with the kit's projection and scale."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._loaded: str | None = None
        self._task: str | None = None
        self._valid: list[str] = []
        self._steps = 0
        self._max_steps = 0
        self._score = 0
        self._done = True

    def reset(self, task: str, seed: int, *, max_steps: int | None = None, gold: bool = False) -> EpisodeStart:
        """Start ``task`` at ``seed``, which must lie in one of the task's splits (its fold)."""
        entry = game(task)
        split = fold_of(seed)
        if split is None:
            raise UnknownTaskError(f"variation: {seed} is no TextWorldExpress seed of {task}; train seeds are 0..999, "
                                   "dev 10000..10999, test 20000..20999")
        get_task(task).check_variation(seed, split)
        if self._loaded != task:
            message = self._server.load(entry.game, entry.params)
            if message:
                raise ValueError(f"textworld-express refused {entry.game} with {entry.params!r}: {message}")
            self._loaded = task
        state = json.loads(self._server.generateNewGameJSON(seed, split, gold))
        self._task, self._steps, self._done = task, 0, False
        self._max_steps = max_steps or entry.max_steps
        self._valid = list(state["validActions"])
        self._score = self._kit_score(state)
        return EpisodeStart(task=task, variation=seed, observation=state["observation"],
                            task_description=self._server.getTaskDescription(), max_steps=self._max_steps,
                            score=self._score, info={"inventory": state["inventory"]})

    def step(self, text: str) -> StepResult:
        """Play the projection of ``text`` and report the outcome on the kit's scale."""
        if self._done:
            raise EpisodeOverError("the episode has ended (or was never started): call reset() first")
        action, corrected = self.project(text)
        state = json.loads(self._server.stepJSON(action))
        self._steps += 1
        previous, self._score = self._score, self._kit_score(state)
        self._valid = list(state["validActions"])
        end_reason = ("completed" if state["tasksuccess"] else "failed" if state["taskfailure"]
                      else "max_steps" if self._steps >= self._max_steps else None)
        self._done = end_reason is not None
        return StepResult(observation=state["observation"], reward=self._score - previous, score=self._score,
                          done=self._done, success=bool(state["tasksuccess"]) and self._score >= SUCCESS_SCORE,
                          raw_action=text, action=action,
                          info={"steps": self._steps, "corrected": corrected, "end_reason": end_reason})

    def project(self, text: str) -> tuple[str, bool]:
        """The valid action ``text`` becomes, and whether it had to be replaced."""
        wanted = normalize_action(text)
        exact = find_exact(wanted, self._valid)
        return (exact, False) if exact else (closest_action(wanted, self._valid), True)

    def valid_actions(self) -> list[str]:
        """The current state's valid actions, as the package listed them."""
        return list(self._valid)

    def gold_actions(self) -> list[str]:
        """The package's gold path for the current game (needs ``reset(gold=True)``)."""
        return list(self._server.getGoldActionSequence())

    @property
    def done(self) -> bool:
        return self._done

    @staticmethod
    def _kit_score(state: dict) -> int:
        """The package's 0-1 score as 0-100, or ``FAILED_SCORE`` for a lost game."""
        return FAILED_SCORE if state.get("taskfailure") else int(round(100 * float(state["score"])))

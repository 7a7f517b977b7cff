"""A ScienceWorld episode as the agent sees it: reset, then step with free text.

What the adapter adds on top of the raw simulator:

* **Action correction.** Text the simulator accepts is executed as is. Text it rejects is
  replaced by the closest valid action by word overlap (``actions.closest_action``); the raw text
  and the executed action are both returned. With ``EnvConfig.action_check = "valid_list"`` the
  valid-action list is fetched at every step and any text not on it is corrected, as the official
  wrapper does. The default ("parser") fetches the list only on rejection, because listing valid
  actions costs ~25 of the ~31 ms of a raw ``ScienceWorldEnv.step`` (docs/deviations.md).
* **Ambiguity.** When the simulator answers "Ambiguous request" with numbered options, the adapter
  answers with ``EnvConfig.ambiguity_choice`` (default 0) in the same step, and reports the option
  executed.
* **Termination.** An episode ends on completion, on a negative score (a wrong ``focus on`` sets
  the score to -100) or at the task's step cap. ``success`` is completion with score 100; the
  official wrapper's criterion (score > 70) is reported as ``info["success_official"]``.
* **What only ScienceWorld has** travels in ``info`` (``env/episode.py``): the inventory at the
  start (``EpisodeStart.info["inventory"]``, which the first message shows), the official
  criterion and the ambiguity options at each step.
* **Rewards.** ``reward`` is the change of score. Some tasks score a few points for the starting
  state (``EpisodeStart.score``), so the rewards of an episode sum to its final score minus that
  starting score; the return the method uses is the final score.
"""

from __future__ import annotations

from empo2_lite.config import EnvConfig
from empo2_lite.env.actions import (
    closest_action,
    find_exact,
    is_parser_rejection,
    normalize_action,
    parse_ambiguity,
)
from empo2_lite.env.episode import SUCCESS_SCORE, EpisodeFailure, EpisodeOverError, EpisodeStart, StepResult
from empo2_lite.env.scienceworld.jvm import ScienceWorldJVM
from empo2_lite.tasks import UnknownTaskError, step_cap

OFFICIAL_SUCCESS_THRESHOLD = 70

__all__ = ["EpisodeFailure", "EpisodeOverError", "EpisodeStart", "OFFICIAL_SUCCESS_THRESHOLD", "SUCCESS_SCORE",
           "ScienceWorldAdapter", "StepResult"]
"""The episode types are re-exported here, where they lived before ``env/episode.py``."""


class ScienceWorldAdapter:
    """One simulator in its own JVM, playing one episode at a time.

    Use as a context manager (or call ``close``) so the JVM stops with the work.
    """

    def __init__(self, config: EnvConfig | None = None) -> None:
        self.config = config or EnvConfig()
        self.config.validate()
        self._jvm = ScienceWorldJVM(self.config.heap_mb, self.config.jvm_options)
        server = self._jvm.server
        self._n_variations: dict[str, int] = {
            name: server.getTaskMaxVariations(name) for name in server.getTaskNames()
        }
        self._task: str | None = None
        self._variation = -1
        self._steps = 0
        self._score = 0
        self._max_steps = 0
        self._done = True

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def jvm(self) -> ScienceWorldJVM:
        """The JVM behind this adapter (its ``pid`` is what tests and the pool watch)."""
        return self._jvm

    def close(self) -> None:
        """Stop the JVM."""
        self._jvm.close()

    def restart(self) -> None:
        """Replace the JVM with a fresh one (after a crash or hang); the episode is lost."""
        self._jvm.close()
        self._jvm = ScienceWorldJVM(self.config.heap_mb, self.config.jvm_options)
        self._done = True

    def __enter__(self) -> "ScienceWorldAdapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- episode -----------------------------------------------------------------------------
    def reset(self, task: str, variation: int, *, max_steps: int | None = None, gold: bool = False) -> EpisodeStart:
        """Start ``task`` at ``variation`` (ScienceWorld's global variation id).

        ``max_steps`` defaults to the registry's cap for the paper's tasks. ``gold=True`` also
        asks the simulator for its gold action sequence (``gold_actions()``), which makes loading
        slower.
        """
        self.check_episode(task, variation)
        server = self._jvm.server
        server.load(task, variation, self.config.simplification, gold)
        self._task, self._variation = task, variation
        self._max_steps = max_steps or step_cap(task, self.config.default_max_steps)
        self._steps, self._done = 0, False
        observation = server.step("look around")
        self._score = self._read_score()
        return EpisodeStart(
            task=task,
            variation=variation,
            observation=observation,
            task_description=server.getTaskDescription(),
            max_steps=self._max_steps,
            score=self._score,
            info={"inventory": server.freeActionInventory()},
        )

    def check_episode(self, task: str, variation: int) -> None:
        """Raise UnknownTaskError (listing the valid choices) for an unknown task or variation."""
        if task not in self._n_variations:
            names = ", ".join(self._n_variations)
            raise UnknownTaskError(f"task: {task!r} is not a ScienceWorld task; choose one of: {names}")
        n_variations = self._n_variations[task]
        if isinstance(variation, bool) or not isinstance(variation, int) or not 0 <= variation < n_variations:
            raise UnknownTaskError(
                f"variation: {variation!r} is out of range for {task}; choose one of 0..{n_variations - 1}"
            )

    def step(self, text: str) -> StepResult:
        """Execute the policy's ``text`` (corrected if needed) and report the outcome."""
        if self._done:
            raise EpisodeOverError("the episode has ended (or was never started): call reset() first")
        server = self._jvm.server
        raw_action = text
        action = normalize_action(text)
        corrected = False
        if self.config.action_check == "valid_list":
            valid = self.valid_actions()
            exact = find_exact(action, valid)
            action, corrected = (exact, False) if exact else (closest_action(action, valid), True)
        observation = server.step(action) if action else ""
        if not action or is_parser_rejection(observation):
            action, corrected = closest_action(action, self.valid_actions()), True
            observation = server.step(action)
        options = parse_ambiguity(observation)
        if options:
            choice = min(self.config.ambiguity_choice, len(options) - 1)
            observation = server.step(str(choice))
            action = options[choice]

        self._steps += 1
        previous, self._score = self._score, self._read_score()
        completed = bool(server.getCompleted())
        end_reason = None
        if completed:
            end_reason = "completed"
        elif self._score < 0:
            end_reason = "failed"
        elif self._steps >= self._max_steps:
            end_reason = "max_steps"
        self._done = end_reason is not None
        return StepResult(
            observation=observation,
            reward=self._score - previous,
            score=self._score,
            done=self._done,
            success=completed and self._score >= SUCCESS_SCORE,
            raw_action=raw_action,
            action=action,
            info={"steps": self._steps, "corrected": corrected, "ambiguity_options": options or [],
                  "end_reason": end_reason, "success_official": self._score > OFFICIAL_SUCCESS_THRESHOLD},
        )

    # -- on-demand views (each costs a JVM call; none is fetched unless asked for) --------------
    def valid_actions(self) -> list[str]:
        """Every valid action in the current state (~25 ms, up to ~1,300 strings)."""
        return list(self._jvm.server.getValidActionObjectCombinations())

    def inventory(self) -> str:
        """The agent's inventory (free: takes no simulator time)."""
        return self._jvm.server.freeActionInventory()

    def look(self) -> str:
        """The current room (free: takes no simulator time)."""
        return self._jvm.server.freeActionLook()

    def gold_actions(self) -> list[str]:
        """ScienceWorld's gold action sequence for the loaded variation (needs ``reset(gold=True)``)."""
        return list(self._jvm.server.getGoldActionSequence())

    @property
    def done(self) -> bool:
        """Whether the current episode has ended."""
        return self._done

    @property
    def steps(self) -> int:
        """Actions executed in the current episode."""
        return self._steps

    def _read_score(self) -> int:
        """The simulator's score (0..1, or -1 on failure) as an integer in [-100, 100]."""
        return int(round(100 * self._jvm.server.getScore()))

"""A pool that replays recorded ScienceWorld transitions, so rollout logic is tested without Java.

Why: rollouts, evaluation, token roles and the memory loop only need what a pool returns
(``empo2_lite.env.protocol.EpisodePool``); starting JVMs to get it made those tests take minutes.
``ReplayPool`` serves the same ``EpisodeStart`` and ``StepResult`` records the real adapter
produced, looked up by (task, variation, actions so far), so a replayed episode is deterministic
(ScienceWorld's own object order is not) and takes microseconds.

Recordings live in ``tests/data/transitions/<task>-<variation>.json``, written by
``tests/record_transitions.py`` from real ScienceWorld with no step cap. The cap is applied at
replay, by the adapter's rule: an episode that neither completed nor failed ends with
``max_steps`` once it has taken ``max_steps`` steps. An action sequence that was never recorded
raises ``UnrecordedTransition`` naming it and the command that records it, so a scripted test never
gets an invented observation; a pool made with ``unrecorded="fixed"`` instead answers such an action
with ``UNRECORDED_OBSERVATION`` (score unchanged, the episode running on to its cap), so that a
policy can sample freely (training and evaluation from a tiny model's own tokens).

``fail_at(slot, step)`` arms a one-shot failure: that slot's ``step``-th step (of its episode)
returns an ``EpisodeFailure`` instead of its recording, as a crashed JVM would, and the slot
leaves ``active``. ``abandoned`` lists the slots the caller gave up on, in order.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from empo2_lite.config import EnvConfig
from empo2_lite.env.episode import EpisodeFailure, EpisodeStart, StepResult
from empo2_lite.tasks import step_cap

TRANSITIONS = Path(__file__).parent / "data" / "transitions"
RECORD_COMMAND = "OMP_NUM_THREADS=1 .venv/bin/python tests/record_transitions.py"


UNRECORDED_OBSERVATION = "Nothing happens."
"""What a ``ReplayPool(unrecorded="fixed")`` answers to an action it has no recording for."""
UNRECORDED_CHOICES = ("raise", "fixed")


class UnrecordedTransition(LookupError):
    """A test asked for a (task, variation) or an action sequence that has no recording."""


def recording_path(task: str, variation: int) -> Path:
    """Where the transitions of one (task, variation) are stored."""
    return TRANSITIONS / f"{task}-{variation}.json"


@dataclass(frozen=True)
class Recording:
    """The recorded start of one (task, variation) and its steps keyed by the actions so far."""

    task: str
    variation: int
    start: dict
    """``EpisodeStart`` fields except ``task``, ``variation`` and ``max_steps``."""
    steps: dict[tuple[str, ...], dict]
    """Action texts from the start (the last one included) -> ``StepResult`` fields except
    ``raw_action`` and ``done``; ``info`` holds ``corrected``, ``ambiguity_options`` and
    ``end_reason`` (completed, failed or None: recordings have no step cap)."""

    def step(self, history: tuple[str, ...]) -> dict:
        """The recorded outcome of ``history``'s last action; fails loudly when there is none."""
        if history not in self.steps:
            raise UnrecordedTransition(
                f"no recorded ScienceWorld transition for {self.task} variation {self.variation} after the actions "
                f"{list(history)}: add them to EPISODES in tests/record_transitions.py and run `{RECORD_COMMAND}`")
        return self.steps[history]


@functools.cache
def load_recording(task: str, variation: int) -> Recording:
    """The recording of one (task, variation), read once per test session."""
    path = recording_path(task, variation)
    if not path.exists():
        raise UnrecordedTransition(
            f"no recording of {task} variation {variation} ({path} is missing): add it to EPISODES in "
            f"tests/record_transitions.py and run `{RECORD_COMMAND}`")
    data = json.loads(path.read_text())
    steps = {tuple(step.pop("actions")): step for step in data["steps"]}
    return Recording(task, variation, data["start"], steps)


@dataclass
class _Slot:
    """One slot's running episode: what it plays, its cap and the actions taken so far."""

    recording: Recording
    max_steps: int
    history: tuple[str, ...] = ()
    score: int = 0
    """The score after the last step (a fixed answer leaves it unchanged)."""
    off_record: bool = False
    """Set once an action had no recording: every later step is answered with the fixed observation."""


def start_of(recording: "Recording", max_steps: int) -> EpisodeStart:
    """A recorded start as the ScienceWorld adapter returns it (its inventory in ``info``)."""
    fields = dict(recording.start)
    inventory = fields.pop("inventory")
    return EpisodeStart(task=recording.task, variation=recording.variation, max_steps=max_steps, **fields,
                        info={"inventory": inventory})


def result_of(recorded: dict) -> StepResult:
    """A recorded step as its adapter returns it: ScienceWorld's recordings keep its official
    success beside the neutral fields; the adapter reports it in ``info``."""
    fields = dict(recorded)
    official = {"success_official": fields.pop("success_official")} if "success_official" in fields else {}
    return StepResult(**{**fields, "info": {**fields["info"], **official}})


class ReplayPool:
    """``size`` slots replaying recorded episodes in lock-step; an ``EpisodePool`` like ``EnvPool``."""

    def __init__(self, size: int, unrecorded: str = "raise") -> None:
        if size < 1:
            raise ValueError(f"size: {size!r} is not allowed; it must be an integer >= 1")
        if unrecorded not in UNRECORDED_CHOICES:
            raise ValueError(f"unrecorded: {unrecorded!r} is not allowed; choose one of {UNRECORDED_CHOICES}")
        self._size, self._unrecorded = size, unrecorded
        self._slots: dict[int, _Slot] = {}
        self._active: set[int] = set()
        self._failures: dict[int, int] = {}
        self.abandoned: list[int] = []
        """Slots passed to ``abandon``, in the order they were given up on."""

    @property
    def size(self) -> int:
        """Number of slots."""
        return self._size

    @property
    def active(self) -> list[int]:
        """Slots whose episode is still running, in order."""
        return sorted(self._active)

    def reset(self, episodes: Sequence[tuple[str, int]], *,
              max_steps: int | None = None) -> list[EpisodeStart | EpisodeFailure]:
        """Start the recorded episodes, slot i playing ``episodes[i]``, capped as ``EnvPool`` caps them."""
        if len(episodes) > self.size:
            raise ValueError(f"episodes: {len(episodes)} episodes do not fit a pool of {self.size}")
        recordings = [load_recording(task, variation) for task, variation in episodes]
        default_cap = EnvConfig().default_max_steps
        self._slots = {slot: _Slot(recording, max_steps or step_cap(recording.task, default_cap),
                                   score=recording.start["score"])
                       for slot, recording in enumerate(recordings)}
        self._active = set(self._slots)
        return [start_of(slot.recording, slot.max_steps) for slot in self._slots.values()]

    def fail_at(self, slot: int, step: int) -> None:
        """Make the ``step``-th step (1-based, counted from the episode's start) of the episode
        running on ``slot`` return an ``EpisodeFailure``, once (the cue is then spent)."""
        if step < 1:
            raise ValueError(f"step: {step!r} is not allowed; it must be an integer >= 1")
        self._failures[slot] = step

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult | EpisodeFailure]:
        """Replay each slot's action; finished or failed episodes leave ``active``."""
        inactive = sorted(set(actions) - self._active)
        if inactive:
            raise ValueError(f"actions: slots {inactive} have no running episode; active slots: {self.active}")
        results = {slot: self._failure(slot) or self._step(self._slots[slot], text) for slot, text in actions.items()}
        self._active -= {slot for slot, result in results.items()
                         if isinstance(result, EpisodeFailure) or result.done}
        return results

    def _failure(self, slot: int) -> EpisodeFailure | None:
        """The cued failure of ``slot``'s coming step, if this is the step it was cued for."""
        if self._failures.get(slot) != len(self._slots[slot].history) + 1:
            return None
        del self._failures[slot]
        self._slots[slot].history += ("<failed>",)
        return EpisodeFailure(slot=slot, error=f"replayed failure of slot {slot} (cued by the test)")

    def abandon(self, slot: int) -> None:
        """End ``slot``'s episode early."""
        self.abandoned.append(slot)
        self._active.discard(slot)

    @staticmethod
    def _fixed_answer(slot: _Slot, text: str) -> dict:
        """The answer to an unrecorded action: nothing happens, the score stays."""
        return {"observation": UNRECORDED_OBSERVATION, "reward": 0, "score": slot.score, "success": False,
                "success_official": False, "action": text.strip(),
                "info": {"corrected": False, "ambiguity_options": [], "end_reason": None}}

    def __enter__(self) -> "ReplayPool":
        """A context manager like ``EnvPool``, so it can stand in where the library opens one."""
        return self

    def __exit__(self, *exc: object) -> None:
        self._active.clear()

    def _step(self, slot: _Slot, text: str) -> StepResult:
        """The recorded outcome of ``text`` after the slot's history (or the fixed answer), with the cap applied."""
        slot.history += (text,)
        slot.off_record = slot.off_record or (self._unrecorded == "fixed" and slot.history not in slot.recording.steps)
        recorded = self._fixed_answer(slot, text) if slot.off_record else slot.recording.step(slot.history)
        slot.score = recorded["score"]
        steps = len(slot.history)
        end_reason = recorded["info"]["end_reason"] or ("max_steps" if steps >= slot.max_steps else None)
        return result_of({**recorded, "raw_action": text, "done": end_reason is not None,
                          "info": {**recorded["info"], "steps": steps, "end_reason": end_reason}})

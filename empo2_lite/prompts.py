"""The prompt text every environment shares, in the kit's own words.

An episode is a chat: one system message (the role and the command grammar), then one user
message per step (the observation and the request for one action), and one assistant message per
step (the action). The system message and the first user message (the task, the environment's own
rules and state, solved examples: ``demonstrations.py``) are each environment's own
(``env/scienceworld/prompts.py``, ``env/textworldexpress/prompts.py``); what is here is the same
for all of them: the request for a command, every later user message, the example format.

Tips from memory are placed in a delimited block at the top of the user message of the step at
which they were retrieved; each shows the note, the action the earlier attempt took at that point
and that attempt's final score (``format_tip``), as the paper's App. E.2 and the official code do. The Reflexion
baseline (``baselines/reflexion.py``) asks for a reflection after a failed trial
(``reflection_message``) and shows a chain's newest reflections in its next trial's first message
(``reflection_block``). The rollout engine renders every chat twice, with and without those
blocks; nothing here is ever stripped out of a string afterwards.

ScienceWorld's ``SYSTEM_PROMPT``, ``FOCUS_RULE`` and ``first_user_message`` lived here before issue
#39; they still answer here for one version (``__getattr__``), with a DeprecationWarning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from importlib import import_module

from empo2_lite.demonstrations import Demonstration

STEP_REQUEST = "Reply with your next command only, on a single line."

TIP_BLOCK_START = "[memory: notes you wrote after earlier attempts at this task]"
TIP_BLOCK_END = "[end of memory]"

TIP_WRITING_REQUEST = (
    "The episode is over. In one sentence of under 100 words, write a note to your future self: "
    "what happened, what you learned about this task, and how close you came to finishing it. "
    "Reply with the note only."
)


REFLECTIONS_HEADING = "[your own notes from earlier failed attempts at this very task; use them to do better]"
"""Heads the block of reflections in a Reflexion trial's first message (``reflection_block``)."""

REFLECTION_REQUEST = (
    "You did not finish this task, and you will try it again from the start. Do not retell what you saw. "
    "On one line, say which of your commands went wrong or were missing, then write 'Plan:' and the "
    "commands you will type next time, separated by ';'."
)


def format_demonstration(index: int, demo: Demonstration) -> str:
    """One solved example as text."""
    steps = "\n".join(f"  > {action}" for action in demo.actions)
    return f"Example {index}: {demo.task_description}\n{steps}"


def format_tip(tip: str, action: str, score: int) -> str:
    """One remembered entry as the agent sees it: the note, the action taken at that step of the
    earlier attempt, and that attempt's final score, so notes from good attempts stand out."""
    return f"{tip} (that attempt did '{action}' here and ended with score {score}/100)"


def tip_block(tips: Sequence[str]) -> str:
    """The delimited block of retrieved tips ("" when there are none)."""
    if not tips:
        return ""
    lines = "\n".join(f"- {tip}" for tip in tips)
    return f"{TIP_BLOCK_START}\n{lines}\n{TIP_BLOCK_END}\n\n"


def opening_message(head: Sequence[str], demonstrations: Sequence[Demonstration], examples_heading: str,
                    reflections: Sequence[tuple[int, str]], observation: str) -> str:
    """An episode's first user message in the order every environment keeps: its own ``head`` (the
    task, its rules, the inventory), the solved examples under the environment's
    ``examples_heading``, the reflections of Reflexion's earlier trials, the first observation and
    the step request. Blank parts are left out, so an environment without an inventory adds no
    empty paragraph. One function, so that the environments' prompts differ only where they must."""
    parts = [part.strip() for part in head]
    if demonstrations:
        examples = "\n\n".join(format_demonstration(i + 1, demo) for i, demo in enumerate(demonstrations))
        parts.append(f"{examples_heading}\n\n{examples}")
    if reflections:
        parts.append(reflection_block(reflections))
    parts += [f"You are here now:\n{observation.strip()}", STEP_REQUEST]
    return "\n\n".join(part for part in parts if part)


def step_user_message(observation: str) -> str:
    """The user message after an action, before any tips."""
    return f"{observation.strip()}\n\n{STEP_REQUEST}"


def with_tips(message: str, tips: Sequence[str]) -> str:
    """``message`` with the tip block in front (unchanged when there are no tips)."""
    return tip_block(tips) + message


def reflection_block(reflections: Sequence[tuple[int, str]]) -> str:
    """The reflections a Reflexion trial is shown, as (trial number, text), oldest first, under
    ``REFLECTIONS_HEADING``: one "Trial #i:" line each."""
    lines = "\n".join(f"Trial #{trial}: {text}" for trial, text in reflections)
    return f"{REFLECTIONS_HEADING}\n{lines}"


def reflection_message(task_description: str, transcript: str, score: int,
                       earlier: Sequence[tuple[int, str]]) -> str:
    """The one user message asking for a reflection: the task, the failed trial's transcript (plain
    text, already cut to fit), its final score, the chain's earlier reflections and the request."""
    parts = [f"Your task was: {task_description.strip()}",
             f"What happened in your attempt (your commands start with '>'):\n{transcript.strip()}",
             f"The attempt ended with a score of {score} out of 100."]
    if earlier:
        parts.append("Your notes from the attempts before it:\n"
                     + "\n".join(f"Trial #{trial}: {text}" for trial, text in earlier))
    parts.append(REFLECTION_REQUEST)
    return "\n\n".join(parts)


MOVED_TO_SCIENCEWORLD = ("SYSTEM_PROMPT", "FOCUS_RULE", "first_user_message")
"""ScienceWorld's prompt names, now in ``env/scienceworld/prompts.py``."""


def __getattr__(name: str):
    """The old paths of ScienceWorld's prompt text (``prompts.SYSTEM_PROMPT``, ...), kept for one
    version: looked up when asked for, so that this shared module never imports an environment."""
    if name not in MOVED_TO_SCIENCEWORLD:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"empo2_lite.prompts.{name} moved to empo2_lite.env.scienceworld.prompts.{name} (issue #39); "
                  "the old path goes in the next version", DeprecationWarning, stacklevel=2)
    return getattr(import_module("empo2_lite.env.scienceworld.prompts"), name)

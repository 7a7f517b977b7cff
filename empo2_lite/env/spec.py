"""Environments as plug-ins: what one text environment gives the kit, and the registry of them.

Why a spec: the loop (rollouts, memory, novelty, engines, algorithms, evaluation, the study and the
figures) is the same for every multi-turn text game; what differs is a short list, and each
environment writes that list once, in its own folder (``env/scienceworld/``):

* which tasks it owns, with their train/dev/test splits (``tasks``);
* the system prompt (its command grammar) and the first message of an episode (the task, the
  environment's own rules and state, the demonstrations, the first observation); every later
  message is the observation and the request for a command, the same everywhere;
* its demonstrations (solved examples from the train split);
* a pool of its environments for lock-step play (``open_pool``);
* extra statistics of a batch of its episodes, with the metric names they are logged under
  (ScienceWorld: its official success criterion, the share ended by a wrong ``focus on``);
* how GiGPO reads its text into anchor states (``StateKeyRules``: commands that only look or move,
  where an observation names the place).

Scores reach the loop already on the kit's scale (``env/episode.py``). A run names its environment
in ``env.name``; an episode finds its environment by its task (``environment_of``), so that the
prompts of the tip writer and of Reflexion, which see only a task, are the environment's too.
Adding an environment: a folder under ``env/``, one entry in ``config.sections.ENVIRONMENTS``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

from empo2_lite.config.checks import check_choice
from empo2_lite.config.sections import ENVIRONMENT_NAMES, ENVIRONMENTS

if TYPE_CHECKING:  # the others (EnvConfig, Demonstration, Task, Trajectory) are named, not imported:
    # tasks.py asks this module for other environments' tasks, and they all import tasks.py
    from empo2_lite.env.episode import EpisodeStart
    from empo2_lite.env.protocol import EpisodePool


@dataclass(frozen=True)
class StateKeyRules:
    """How GiGPO reads an environment's text into anchor states (``algo/gigpo.py``): which commands
    only describe or only move (their transitions stay out of the key), and where the text names
    the agent's place."""

    looking_commands: tuple[str, ...] = ()
    """First words of commands that change nothing (look around, inventory, ...)."""
    moving_commands: tuple[str, ...] = ()
    """First words of commands that only move the agent (the place is read from the text instead)."""
    place_pattern: str = "(?!x)x"
    """A regular expression whose first group is the place an observation names (default: never)."""


@dataclass(frozen=True)
class Environment:
    """What one text environment gives the kit (module docstring)."""

    name: str
    title: str
    """How people write its name ("ScienceWorld"), for sentences and figures."""
    tasks: Callable[[], Sequence[Task]]
    """The tasks this environment registers, with their splits (ScienceWorld: the paper's 18)."""
    owns_task: Callable[[str], bool]
    """Whether a task name is this environment's (ScienceWorld also plays tasks outside its table)."""
    system_prompt: str
    """The role and the command grammar: the system message of every chat about this environment."""
    first_message: Callable[[EpisodeStart, Sequence[Demonstration], Sequence[tuple[int, str]]], str]
    """The opening user message from the episode's start, its demonstrations and (Reflexion only) the
    reflections of earlier trials, before any tips."""
    start_fields: tuple[str, ...]
    """The ``EpisodeStart.info`` fields the first message shows (ScienceWorld: the inventory):
    ``rollout.worst_case_prompt_tokens`` sizes each like an observation."""
    demonstrations: Callable[[str, int, int], list[Demonstration]]
    """``(task, variation, count)``: solved examples of the task, none of them ``variation``."""
    open_pool: Callable[[int, EnvConfig], EpisodePool]
    """``(slots, settings)``: a pool of this environment's episodes, used as a context manager."""
    open_game: Callable[[EnvConfig], AbstractContextManager]
    """``(settings)``: one game to play by hand (``play``, gold paths): a context manager whose value
    has ``reset(task, variation, max_steps=, gold=)``, ``step(text)`` and ``gold_actions()``."""
    summary_extras: Callable[[Sequence[Trajectory]], dict[str, float]] = lambda trajectories: {}
    """Statistics of a batch of played episodes that only this environment has, by name."""
    metric_names: Mapping[str, str] = field(default_factory=dict)
    """Where each extra is logged in ``metrics.jsonl`` (e.g. ``diagnostics/wrong_focus_share``)."""
    evaluation_fields: tuple[str, ...] = ()
    """The extras an evaluation row of ``eval.jsonl`` carries too."""
    state_key_rules: StateKeyRules = StateKeyRules()
    """GiGPO's reading of this environment's text (none by default: every transition is kept and
    the place is never named, so only identical histories share a state)."""


@cache
def environment(name: str) -> Environment:
    """The spec of the environment called ``name`` (``env.name``); ConfigError lists the others."""
    check_choice("env.name", name, ENVIRONMENT_NAMES)
    return import_module(ENVIRONMENTS[name]).ENVIRONMENT


def environment_of(task: str) -> Environment:
    """The environment that owns ``task`` (ScienceWorld when none claims it: its adapter names the
    task in its own error when it has no such task either)."""
    for name in ENVIRONMENT_NAMES:
        if environment(name).owns_task(task):
            return environment(name)
    return environment("scienceworld")

"""Solved examples for the prompt: what a demonstration is, and how an environment's file of them is read.

Why cached in a file: reading gold sequences needs the environment (a JVM) and about a second per
variation; the prompt needs them at every episode start. Each environment writes its own file in
``data/`` once from gold paths of its **train** split (ScienceWorld: ``env/scienceworld/
demonstrations.py``; TextWorldExpress: ``env/textworldexpress/demonstrations.py``), and
``demonstrations_from`` picks examples that are not the variation being played, so an episode never
sees its own solution and test variations never leak into prompts.

ScienceWorld's ``demonstrations_for``, ``generate_demonstrations``, ``FILE_NAME`` and
``DEMOS_PER_TASK`` lived here before issue #39; they still answer here for one version
(``__getattr__``), with a DeprecationWarning.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from functools import cache
from importlib import import_module
from pathlib import Path

from empo2_lite.tasks import data_dir


@dataclass(frozen=True)
class Demonstration:
    """One solved episode: what the task said and the actions that solved it."""

    variation: int
    task_description: str
    actions: tuple[str, ...]


@cache
def _load(path: str) -> dict[str, tuple[Demonstration, ...]]:
    rows = json.loads(Path(path).read_text())
    return {task: tuple(Demonstration(d["variation"], d["task_description"], tuple(d["actions"])) for d in demos)
            for task, demos in rows.items()}


def demonstrations_from(file_name: str, task: str, variation: int, count: int) -> list[Demonstration]:
    """``count`` demonstrations of ``task`` stored in ``data/<file_name>`` (read once), from
    variations other than ``variation``; each environment keeps its own file."""
    table = _load(str(data_dir() / file_name))
    return [demo for demo in table.get(task, ()) if demo.variation != variation][:count]


MOVED_TO_SCIENCEWORLD = ("demonstrations_for", "generate_demonstrations", "FILE_NAME", "DEMOS_PER_TASK")
"""ScienceWorld's names, now in ``env/scienceworld/demonstrations.py``."""


def __getattr__(name: str):
    """The old paths of ScienceWorld's demonstrations (``demonstrations.demonstrations_for``, ...),
    kept for one version: looked up when asked for, so that this shared module never imports an
    environment."""
    if name not in MOVED_TO_SCIENCEWORLD:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"empo2_lite.demonstrations.{name} moved to empo2_lite.env.scienceworld.demonstrations.{name} "
                  "(issue #39); the old path goes in the next version", DeprecationWarning, stacklevel=2)
    return getattr(import_module("empo2_lite.env.scienceworld.demonstrations"), name)

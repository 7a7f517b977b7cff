"""Two worked examples per task for the prompt, from ScienceWorld's own gold action sequences.

Why cached: reading gold sequences needs a JVM and ~1 s per variation; the prompt needs them at
every episode start. ``generate_demonstrations`` plays the gold sequences of three train
variations near the end of each task's train split through the kit's adapter (keeping only
sequences that reach score 100) and writes ``data/demonstrations.json`` once;
``demonstrations_for`` reads it and picks two that are not the variation being played, so an
episode never sees its own solution. Train variations only: test variations never leak into
prompts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from empo2_lite.tasks import all_tasks, data_dir

DEMOS_PER_TASK = 3
FILE_NAME = "demonstrations.json"


@dataclass(frozen=True)
class Demonstration:
    """One solved episode: what the task said and the actions that solved it."""

    variation: int
    task_description: str
    actions: tuple[str, ...]


def generate_demonstrations(path: Path | None = None) -> Path:
    """Play gold sequences through the adapter and write the demonstrations file (needs Java)."""
    from empo2_lite.env import ScienceWorldAdapter
    from empo2_lite.env.play import play_actions

    path = path or data_dir() / FILE_NAME
    table: dict[str, list[dict]] = {}
    with ScienceWorldAdapter() as adapter:
        for task in all_tasks():
            train = task.split_ids("train")
            demos = []
            for variation in reversed(train):
                episode = play_actions(adapter, task.name, variation, None)
                if episode.steps and episode.steps[-1].success:
                    demos.append({"variation": variation,
                                  "task_description": episode.start.task_description.strip(),
                                  "actions": [step.action for step in episode.steps]})
                if len(demos) == DEMOS_PER_TASK:
                    break
            table[task.name] = demos
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(table, indent=1) + "\n")
    os.replace(partial, path)
    return path


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


def demonstrations_for(task: str, variation: int, count: int = 2) -> list[Demonstration]:
    """``count`` cached ScienceWorld demonstrations of ``task`` from variations other than ``variation``."""
    return demonstrations_from(FILE_NAME, task, variation, count)

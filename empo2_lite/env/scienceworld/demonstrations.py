"""ScienceWorld's demonstrations: two worked examples per task for the prompt, from ScienceWorld's own
gold action sequences.

``generate_demonstrations`` plays the gold sequences of three train variations near the end of each
task's train split through the kit's adapter (keeping only sequences that reach score 100) and
writes ``data/demonstrations.json`` once; ``demonstrations_for`` reads it (``demonstrations.py``)
and picks two that are not the variation being played. Train variations only: test variations
never leak into prompts.
"""

from __future__ import annotations

import json
from pathlib import Path

from empo2_lite.demonstrations import Demonstration, demonstrations_from
from empo2_lite.env.scienceworld.tasks import all_tasks
from empo2_lite.runs import write_atomic
from empo2_lite.tasks import data_dir

DEMOS_PER_TASK = 3
FILE_NAME = "demonstrations.json"


def generate_demonstrations(path: Path | None = None) -> Path:
    """Play gold sequences through the adapter and write the demonstrations file (needs Java)."""
    from empo2_lite.env.scienceworld.adapter import ScienceWorldAdapter
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
    write_atomic(path, json.dumps(table, indent=1) + "\n")
    return path


def demonstrations_for(task: str, variation: int, count: int = 2) -> list[Demonstration]:
    """``count`` cached ScienceWorld demonstrations of ``task`` from variations other than ``variation``."""
    return demonstrations_from(FILE_NAME, task, variation, count)

"""ScienceWorld's task registry: the 18 tasks of the paper's Table 1 and the variation ids the protocol uses.

Why a registry: the paper's protocol (Table 1; the official code's test set) trains on the first 5
train variations and evaluates on the first min(20, n_test) test variations of each task, with a
per-task step cap (30; 60 for chemistry-mix; 120 for measure-melting-point-known-substance). Those
ids and caps are written once in ``data/tasks.json`` (read off scienceworld 1.2.3; a JVM test checks
them) so every other module and notebook asks this registry instead of re-deriving them.

ScienceWorld numbers the variations of a task contiguously: train ids first, then dev, then test
(``Task.split_starts`` is None). The kit's neutral ``tasks.py`` finds these tasks through the
environment's spec, like any other environment's.
"""

from __future__ import annotations

import json
from functools import lru_cache

from empo2_lite.tasks import Task, data_dir

OOD_PAIRS = {
    "life-stages-2-to-shortest-lived": ("identify-life-stages-2", "lifespan-shortest-lived"),
    "longest-lived-to-conductivity": ("lifespan-longest-lived", "test-conductivity"),
    "power-component-to-secondary-color": ("power-component", "chemistry-mix-paint-secondary-color"),
}
"""The paper's three OOD pairs (trained on A, adapting to B), by name; here, in the torch-free
registry, so that the command line checks ``ood --pair`` before loading anything."""


@lru_cache(maxsize=1)
def all_tasks() -> tuple[Task, ...]:
    """The 18 tasks in the order of the paper's table."""
    path = data_dir() / "tasks.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run from a clone of empo2-lite or set EMPO2_DATA")
    rows = json.loads(path.read_text())
    return tuple(
        Task(**{**{key: value for key, value in row.items() if key != "scienceworld_id"},
                "environment_id": row["scienceworld_id"], "train_variations": tuple(row["train_variations"]),
                "test_variations": tuple(row["test_variations"])})
        for row in rows
    )


def task_names() -> list[str]:
    """Names of the 18 tasks."""
    return [task.name for task in all_tasks()]

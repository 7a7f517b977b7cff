"""The 18 ScienceWorld tasks of the paper's Table 1, and the variation ids the protocol uses.

Why a registry: the paper's protocol (Table 1; the official code's test set) trains on the first 5 train variations and evaluates on
the first min(20, n_test) test variations of each task, with a per-task step cap (30; 60 for
chemistry-mix; 120 for measure-melting-point-known-substance). Those ids and caps are written once
in ``data/tasks.json`` (read off scienceworld 1.2.3; a JVM test checks them) so every other module
and notebook asks this registry instead of re-deriving them.

ScienceWorld numbers the variations of a task contiguously: train ids first, then dev, then test.
Other environments' tasks (``env/spec.py``) are ``Task`` entries too, from their own registries;
where their splits are not contiguous (TextWorldExpress's seed folds) the entry says where each
split starts (``split_starts``). ``get_task`` finds a task in any environment.
Choices (settings, screening, periodic evaluations) are scored on the dev split, the first
min(20, n_dev) dev ids, played like the test split; the test split is played once per run, by
an explicit final evaluation (``evaluation.py``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

SPLITS = ("train", "dev", "test")
EVAL_SPLITS = ("dev", "test")
"""The splits an evaluation may play: dev for every choice, test for the one final report."""
EVAL_VARIATIONS = 20
"""Evaluations play the first min(20, n) variations of their split (the paper's test protocol)."""
OOD_PAIRS = {
    "life-stages-2-to-shortest-lived": ("identify-life-stages-2", "lifespan-shortest-lived"),
    "longest-lived-to-conductivity": ("lifespan-longest-lived", "test-conductivity"),
    "power-component-to-secondary-color": ("power-component", "chemistry-mix-paint-secondary-color"),
}
"""The paper's three OOD pairs (trained on A, adapting to B), by name; here, in the torch-free
registry, so that the command line checks ``ood --pair`` before loading anything."""


def data_dir() -> Path:
    """The kit's ``data/`` folder (``EMPO2_DATA`` overrides it)."""
    override = os.environ.get("EMPO2_DATA")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "data"


class UnknownTaskError(ValueError):
    """A task name or variation id outside the registry; the message lists the valid choices."""


@dataclass(frozen=True)
class Task:
    """One ScienceWorld task as the paper's protocol uses it."""

    name: str
    """ScienceWorld task name, e.g. ``find-animal``."""
    scienceworld_id: str
    """ScienceWorld's own task number, e.g. ``4-4``."""
    topic: str
    """ScienceWorld topic (Matter, Measurement, Electricity, Classification, Biology, Chemistry)."""
    title: str
    """ScienceWorld's human-readable title."""
    max_steps: int
    """Step cap per episode."""
    n_train_total: int
    n_dev_total: int
    n_test_total: int
    train_variations: tuple[int, ...]
    """The train variation ids the protocol trains on (the first 5, fewer if the task has fewer)."""
    test_variations: tuple[int, ...]
    """The test variation ids the protocol evaluates on (the first min(20, n_test))."""
    split_starts: tuple[int, int, int] | None = None
    """The first id of the train, dev and test splits, where they are not contiguous (None:
    ScienceWorld's numbering, train ids from 0, then dev, then test)."""

    @property
    def dev_variations(self) -> tuple[int, ...]:
        """The dev variation ids evaluations on dev play: the first min(20, n_dev)."""
        return tuple(self.split_ids("dev")[:EVAL_VARIATIONS])

    def eval_variations(self, split: str) -> tuple[int, ...]:
        """The variation ids an evaluation on ``split`` ("dev" or "test") plays."""
        if split not in EVAL_SPLITS:
            raise UnknownTaskError(f"split: {split!r} is not allowed for an evaluation; choose one of: "
                                   f"{', '.join(EVAL_SPLITS)}")
        return self.dev_variations if split == "dev" else self.test_variations

    def split_ids(self, split: str) -> range:
        """All variation ids of a split (train, dev or test)."""
        if split not in SPLITS:
            raise UnknownTaskError(f"split: {split!r} is not allowed; choose one of: {', '.join(SPLITS)}")
        starts = self.split_starts or (0, self.n_train_total, self.n_train_total + self.n_dev_total)
        start = starts[SPLITS.index(split)]
        size = {"train": self.n_train_total, "dev": self.n_dev_total, "test": self.n_test_total}[split]
        return range(start, start + size)

    def check_variation(self, variation: int, split: str) -> None:
        """Raise UnknownTaskError (listing the valid ids) unless ``variation`` is in ``split``."""
        ids = self.split_ids(split)
        if variation not in ids:
            raise UnknownTaskError(
                f"variation: {variation} is not a {split} variation of {self.name}; "
                f"choose one of {ids.start}..{ids.stop - 1}"
            )


@lru_cache(maxsize=1)
def all_tasks() -> tuple[Task, ...]:
    """The 18 tasks in the order of the paper's table."""
    path = data_dir() / "tasks.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run from a clone of empo2-lite or set EMPO2_DATA")
    rows = json.loads(path.read_text())
    return tuple(
        Task(**{**row, "train_variations": tuple(row["train_variations"]),
                "test_variations": tuple(row["test_variations"])})
        for row in rows
    )


def task_names() -> list[str]:
    """Names of the 18 tasks."""
    return [task.name for task in all_tasks()]


def get_task(name: str) -> Task:
    """The registry entry for ``name`` (the paper's ScienceWorld tasks, then every other
    environment's); UnknownTaskError lists the valid names otherwise."""
    for task in all_tasks():
        if task.name == name:
            return task
    others = other_environment_tasks()
    for task in others:
        if task.name == name:
            return task
    raise UnknownTaskError(f"task: {name!r} is not one of the paper's tasks or another environment's; choose one of: "
                           f"{', '.join(task_names() + [task.name for task in others])}")


def other_environment_tasks() -> list[Task]:
    """The tasks of the environments beside ScienceWorld (``env/spec.py``), in registry order."""
    from empo2_lite.config.sections import ENVIRONMENT_NAMES
    from empo2_lite.env.spec import environment

    return [task for name in ENVIRONMENT_NAMES if name != "scienceworld" for task in environment(name).tasks()]


def step_cap(name: str, default: int) -> int:
    """The step cap of a registered task (any environment's), or ``default`` for any other
    ScienceWorld task."""
    return next((task.max_steps for task in (*all_tasks(), *other_environment_tasks()) if task.name == name), default)


def format_table(tasks: tuple[Task, ...] | list[Task]) -> str:
    """A fixed-width table of the tasks, for the terminal."""
    header = ("task", "topic", "steps", "train", "dev", "test", "train ids used", "test ids used")
    rows = [header] + [
        (t.name, t.topic, str(t.max_steps), str(t.n_train_total), str(t.n_dev_total), str(t.n_test_total),
         _id_span(t.train_variations), _id_span(t.test_variations))
        for t in tasks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _id_span(ids: tuple[int, ...]) -> str:
    """``0..4 (5)`` for a contiguous run of ids."""
    return f"{ids[0]}..{ids[-1]} ({len(ids)})" if ids else "-"


def as_json_rows(tasks: tuple[Task, ...] | list[Task]) -> list[dict]:
    """The tasks as plain dicts (the ``tasks --json`` output)."""
    return [{**asdict(t), "train_variations": list(t.train_variations),
             "test_variations": list(t.test_variations)} for t in tasks]

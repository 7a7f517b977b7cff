"""Tasks as every environment registers them, and the variation ids the protocol plays.

Each environment (``env/spec.py``) registers its tasks as ``Task`` entries: ScienceWorld the 18 of
the paper's Table 1 (``env/scienceworld/tasks.py``), TextWorldExpress a few games at small sizes.
A task names its train, dev and test splits: contiguous ids from 0 (ScienceWorld's numbering), or
where they are not contiguous (TextWorldExpress's seed folds) the first id of each
(``split_starts``). ``get_task`` finds a task in any environment.
Choices (settings, screening, periodic evaluations) are scored on the dev split, the first
min(20, n_dev) dev ids, played like the test split; the test split is played once per run, by
an explicit final evaluation (``evaluation.py``).

ScienceWorld's registry (``all_tasks``, ``task_names``, ``OOD_PAIRS``) lived here before issue #39;
those names still answer here for one version (``__getattr__``), with a DeprecationWarning.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import asdict, dataclass
from importlib import import_module
from pathlib import Path

SPLITS = ("train", "dev", "test")
EVAL_SPLITS = ("dev", "test")
"""The splits an evaluation may play: dev for every choice, test for the one final report."""
EVAL_VARIATIONS = 20
"""Evaluations play the first min(20, n) variations of their split (the paper's test protocol)."""


def data_dir() -> Path:
    """The kit's ``data/`` folder (``EMPO2_DATA`` overrides it)."""
    override = os.environ.get("EMPO2_DATA")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "data"


class UnknownTaskError(ValueError):
    """A task name or variation id outside the registry; the message lists the valid choices."""


@dataclass(frozen=True)
class Task:
    """One task of an environment as the protocol uses it."""

    name: str
    """The task's name, e.g. ``find-animal`` (ScienceWorld) or ``twx-coin-3``."""
    environment_id: str
    """What the environment itself calls the task: ScienceWorld's task number (``4-4``),
    TextWorldExpress's game and generation parameters (``coin numLocations=3,...``)."""
    topic: str
    """The topic (ScienceWorld's: Matter, Measurement, Electricity, Classification, Biology, Chemistry)."""
    title: str
    """A human-readable title."""
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


def environment_tasks() -> list[Task]:
    """Every environment's tasks (``env/spec.py``), in registry order: ScienceWorld's first."""
    from empo2_lite.config.sections import ENVIRONMENT_NAMES
    from empo2_lite.env.spec import environment

    return [task for name in ENVIRONMENT_NAMES for task in environment(name).tasks()]


def get_task(name: str) -> Task:
    """The registry entry for ``name`` in any environment; UnknownTaskError lists the valid names otherwise."""
    every = environment_tasks()
    for task in every:
        if task.name == name:
            return task
    raise UnknownTaskError(f"task: {name!r} is not one of the paper's tasks or another environment's; choose one of: "
                           f"{', '.join(task.name for task in every)}")


def step_cap(name: str, default: int) -> int:
    """The step cap of a registered task (any environment's), or ``default`` for any other
    ScienceWorld task."""
    return next((task.max_steps for task in environment_tasks() if task.name == name), default)


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


MOVED_TO_SCIENCEWORLD = ("all_tasks", "task_names", "OOD_PAIRS")
"""ScienceWorld's registry names, now in ``env/scienceworld/tasks.py``."""


def __getattr__(name: str):
    """The old paths of ScienceWorld's registry (``tasks.all_tasks``, ...), kept for one version:
    looked up when asked for, so that this neutral module never imports an environment."""
    if name not in MOVED_TO_SCIENCEWORLD:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(f"empo2_lite.tasks.{name} moved to empo2_lite.env.scienceworld.tasks.{name} (issue #39); "
                  "the old path goes in the next version", DeprecationWarning, stacklevel=2)
    return getattr(import_module("empo2_lite.env.scienceworld.tasks"), name)

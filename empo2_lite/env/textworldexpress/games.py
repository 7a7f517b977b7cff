"""The TextWorldExpress games the kit plays, as tasks with splits.

TextWorldExpress (Jansen and Cote, 2022; the ``textworld-express`` package) generates each game
from a seed, with seeds in three folds: train 0-999, dev 10000-10999, test 20000-20999. A kit task
is one game at one size (its generation parameters), and its "variations" are the seeds: the
train, dev and test splits are the folds, so ``Task.split_starts`` says where each begins. The
package accepts a seed of another fold without complaint and generates a different game, so the
adapter checks the fold itself.

The sizes are small on purpose: a 135M model on a CPU should solve some episodes within a
10-15-step cap. For scale, a uniformly random valid action wins these dev games at a 10-step cap
(50 games each): coin with 3 locations 46%, twc with 1 location and 1 item 26%, mapreader with 3
locations 10% (measured when issue #39 was filed).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from empo2_lite.tasks import EVAL_VARIATIONS, Task

FOLDS = {"train": (0, 1000), "dev": (10000, 1000), "test": (20000, 1000)}
"""Each fold's first seed and size, as the package defines them."""
TRAIN_VARIATIONS = 5
"""Train seeds a run trains on, as the paper's protocol takes 5 train variations of a task."""
PREFIX = "twx-"
"""Every TextWorldExpress task name starts with it, so no name clashes with a ScienceWorld task."""


@dataclass(frozen=True)
class Game:
    """One TextWorldExpress game at one size."""

    name: str
    """The kit's task name."""
    game: str
    """The package's game name (coin, twc, mapreader, arithmetic, ...)."""
    params: str
    """The package's generation parameters, "key=value,key=value"."""
    max_steps: int
    title: str
    can_fail: bool
    """Whether the game ends a wrong move as a loss (scored -100 on the kit's scale)."""


GAMES = (
    Game("twx-coin-3", "coin", "numLocations=3,includeDoors=0,numDistractorItems=0", 10,
         "Coin collector: find the coin in 3 rooms and take it", False),
    Game("twx-twc-1", "twc", "numLocations=1,numItemsToPutAway=1,includeDoors=0,limitInventorySize=0", 10,
         "TextWorld Commonsense: put 1 item away where it belongs, in 1 room", False),
    Game("twx-mapreader-3", "mapreader",
         "numLocations=3,maxDistanceApart=2,includeDoors=0,maxDistractorItemsPerLocation=0", 15,
         "Map reader: fetch the coin from a room on the map and put it in the box", False),
    Game("twx-arithmetic", "arithmetic", "", 10,
         "Arithmetic: solve the math problem, then put the matching quantity in the box", True),
)


def game(name: str) -> Game:
    """The game behind a kit task name (KeyError for another name: ``owns_task`` asks first)."""
    return {entry.name: entry for entry in GAMES}[name]


def fold_of(seed: int) -> str | None:
    """The fold a seed belongs to (None: none)."""
    return next((fold for fold, (first, size) in FOLDS.items() if first <= seed < first + size), None)


@cache
def tasks() -> tuple[Task, ...]:
    """The games as the kit's tasks: the folds as splits, the first 5 train seeds trained on and the
    first 20 test seeds evaluated, as for ScienceWorld's tasks."""
    (train, n_train), (dev, n_dev), (test, n_test) = FOLDS["train"], FOLDS["dev"], FOLDS["test"]
    return tuple(Task(name=entry.name, environment_id=f"{entry.game} {entry.params}".strip(), topic="TextWorldExpress",
                      title=entry.title, max_steps=entry.max_steps, n_train_total=n_train, n_dev_total=n_dev,
                      n_test_total=n_test,
                      train_variations=tuple(range(train, train + TRAIN_VARIATIONS)),
                      test_variations=tuple(range(test, test + EVAL_VARIATIONS)), split_starts=(train, dev, test))
                 for entry in GAMES)

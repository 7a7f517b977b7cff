"""Worked examples of each TextWorldExpress game, from the package's own gold paths.

As for ScienceWorld (``empo2_lite/demonstrations.py``): generated once from train seeds at the end
of the train fold (999 down), far from the 5 seeds a run trains on, played through the kit's own
adapter and kept only when they reach 100, into ``data/textworldexpress_demonstrations.json``
(``python -m empo2_lite.env.textworldexpress.demonstrations``); an episode is never shown its own
seed's path. Test seeds never reach a prompt.
"""

from __future__ import annotations

import json
from pathlib import Path

from empo2_lite.demonstrations import Demonstration, demonstrations_from
from empo2_lite.runs import write_atomic
from empo2_lite.tasks import data_dir

FILE_NAME = "textworldexpress_demonstrations.json"
PER_GAME = 3


def generate(path: Path | None = None) -> Path:
    """Play the gold paths through the kit's adapter and write the demonstrations file (needs Java)."""
    from empo2_lite.env.textworldexpress.games import FOLDS, GAMES
    from empo2_lite.env.textworldexpress.pool import TextWorldExpressPool

    path = path or data_dir() / FILE_NAME
    first, size = FOLDS["train"]
    table: dict[str, list[dict]] = {}
    with TextWorldExpressPool(1) as pool:
        game = pool.game(0)
        for entry in GAMES:
            demos = []
            for seed in range(first + size - 1, first + size - 1 - 20, -1):
                start = game.reset(entry.name, seed, gold=True)
                actions = game.gold_actions()
                start = game.reset(entry.name, seed, max_steps=max(len(actions), 1))
                played = [game.step(action) for action in actions]
                if played and played[-1].success and not any(step.info["corrected"] for step in played):
                    demos.append({"variation": seed, "task_description": start.task_description.strip(),
                                  "actions": [step.action for step in played]})
                if len(demos) == PER_GAME:
                    break
            table[entry.name] = demos
    write_atomic(path, json.dumps(table, indent=1) + "\n")
    return path


def demonstrations_for(task: str, seed: int, count: int = 2) -> list[Demonstration]:
    """``count`` stored demonstrations of ``task`` from seeds other than ``seed``."""
    return demonstrations_from(FILE_NAME, task, seed, count)


if __name__ == "__main__":
    print(f"wrote {generate()}")

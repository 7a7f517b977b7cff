"""Record the ScienceWorld and TextWorldExpress transitions that ``tests/replay_pool.py`` replays.

Why a script and not a fixture: the recordings are small, reviewed files, so the tests that replay
them need no Java. Run it again (it rewrites every file) after adding an action sequence a test
plays, or after changing anything that alters what the adapter returns (ScienceWorld version,
action correction, ``EnvConfig`` defaults)::

    OMP_NUM_THREADS=1 .venv/bin/python tests/record_transitions.py [--env textworldexpress]

(``--env`` records that environment's episodes only; without it, every environment's.)

Every sequence is played from a fresh reset with no step cap; a step already recorded by an
earlier sequence with the same prefix keeps its first recording. A sequence must stop at the
step that ends its episode (the adapter refuses steps after that).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import scienceworld

sys.path.insert(0, str(Path(__file__).parent))
from replay_pool import recording_path  # noqa: E402

from empo2_lite.config import EnvConfig  # noqa: E402
from empo2_lite.env.adapter import ScienceWorldAdapter  # noqa: E402

NO_CAP = 10_000
LOOK, INVENTORY = "look around", "inventory"

EPISODES: dict[tuple[str, int], list[list[str]]] = {
    ("find-animal", 0): [
        [LOOK, "go to kitchen", LOOK],
        [LOOK] * 5,
        [LOOK, "focus on air"],
        [LOOK, "open door to kitchen", "go to kitchen"],
        [LOOK, INVENTORY, LOOK, INVENTORY, LOOK],
        [LOOK, LOOK, INVENTORY],
        ["dance with the unicorn", LOOK],
    ],
    # The trainer tests' cpu-smoke episodes: 4 steps on any of find-animal's training variations.
    **{("find-animal", variation): [[LOOK] * 4] for variation in (1, 2, 3, 4)},
    ("power-component", 0): [
        [LOOK, INVENTORY, LOOK, INVENTORY],
        [INVENTORY] * 4,
        [LOOK] * 3,
    ],
    # Evaluations of identify-life-stages-2 (dev variations 4-5, test variations 6-9), and its
    # training episodes in the comparison test (train variations 0-3), cpu-smoke's 4 steps each.
    **{("identify-life-stages-2", variation): [[LOOK] * 4] for variation in range(10)},
    # The warm-start tests' gold paths (the actions ScienceWorld's gold sequences executed).
    ("find-non-living-thing", 5): [["open door to hallway", "go to hallway", "open door to kitchen", "go to kitchen",
                                    "look around", "focus on bowl", "move bowl to purple box"]],
    ("find-non-living-thing", 8): [["look around", "focus on picture", "move picture to blue box"]],
}
"""(task, variation) -> the action sequences the replaying tests play (scripted samplers' texts)."""


TWX_EPISODES: dict[tuple[str, int], list[list[str]]] = {
    # The Java-free TextWorldExpress tests: train seeds 0-4 of coin collector (a run's training
    # variations) and two dev seeds, looking around, then taking the coin (corrected where it is
    # not in the first room).
    **{("twx-coin-3", seed): [[LOOK] * 4, ["take coin"], [LOOK, "move south", LOOK, LOOK]]
       for seed in (0, 1, 2, 3, 4, 10000, 10001)},
}
"""The same for TextWorldExpress: (task, seed) -> action sequences."""


def record_step(actions: list[str], result) -> dict:
    """One step as stored: the actions so far and the ``StepResult`` fields the cap does not decide
    (ScienceWorld's official success beside them, as the recordings always kept it)."""
    fields = dataclasses.asdict(result)
    del fields["raw_action"], fields["done"]
    if "success_official" in fields["info"]:
        fields["success_official"] = fields["info"]["success_official"]
    fields["info"] = {key: fields["info"][key] for key in ("corrected", "ambiguity_options", "end_reason")
                      if key in fields["info"]}
    return {"actions": actions, **fields}


def record_episode(adapter, task: str, variation: int, sequences: list[list[str]]) -> dict:
    """The start of (task, variation) and every step along ``sequences``, each played from a reset."""
    start, steps = None, {}
    for sequence in sequences:
        begun = adapter.reset(task, variation, max_steps=NO_CAP)
        start = start or {**{key: getattr(begun, key) for key in ("observation", "task_description", "score")},
                          "inventory": begun.info["inventory"]}
        for count, text in enumerate(sequence, 1):
            if adapter.done:
                raise ValueError(f"{task} variation {variation}: {sequence[:count - 1]} already ended the episode")
            result = adapter.step(text)
            steps.setdefault(tuple(sequence[:count]), record_step(sequence[:count], result))
    if task.startswith("twx-"):
        import textworld_express

        return {"task": task, "variation": variation, "textworld_express": textworld_express.__version__,
                "start": start, "steps": list(steps.values())}
    config = EnvConfig()
    return {"task": task, "variation": variation, "scienceworld": scienceworld.__version__,
            "env": {"simplification": config.simplification, "action_check": config.action_check,
                    "ambiguity_choice": config.ambiguity_choice},
            "start": start, "steps": list(steps.values())}


def write(adapter, episodes: dict[tuple[str, int], list[list[str]]]) -> None:
    for (task, variation), sequences in episodes.items():
        path = recording_path(task, variation)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record_episode(adapter, task, variation, sequences), indent=1) + "\n")
        print(f"{path}: {sum(map(len, sequences))} steps played")


def main() -> None:
    only = sys.argv[sys.argv.index("--env") + 1] if "--env" in sys.argv else None
    if only in (None, "scienceworld"):
        with ScienceWorldAdapter() as adapter:
            write(adapter, EPISODES)
    if only in (None, "textworldexpress"):
        from empo2_lite.env.spec import environment

        with environment("textworldexpress").open_game(EnvConfig(name="textworldexpress")) as game:
            write(game, TWX_EPISODES)


if __name__ == "__main__":
    main()

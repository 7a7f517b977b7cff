"""ScienceWorld as the kit's environment spec (``env/spec.py``): its tasks, prompts, demonstrations,
pool and summary extras.

Everything ScienceWorld's lives in this folder: its task registry (``tasks.py``, the paper's 18
tasks from ``data/tasks.json``), its prompt text (``prompts.py``), its demonstrations
(``demonstrations.py``), its adapter with the action correction and ambiguity answers
(``adapter.py``), its JVMs (``jvm.py``) and pool (``pool.py``); this module says which of them
make up the spec.
"""

from __future__ import annotations

from collections.abc import Sequence

from empo2_lite.env.episode import EpisodeStart
from empo2_lite.env.scienceworld import prompts
from empo2_lite.env.spec import Environment, StateKeyRules
from empo2_lite.trajectory import Trajectory


def _tasks() -> tuple:
    from empo2_lite.env.scienceworld.tasks import all_tasks

    return all_tasks()


def _owns_task(task: str) -> bool:
    from empo2_lite.env.scienceworld.tasks import task_names

    return task in task_names()


def _first_message(start: EpisodeStart, demonstrations: Sequence, reflections: Sequence[tuple[int, str]]) -> str:
    return prompts.first_user_message(start.task_description, start.info.get("inventory", ""), start.observation,
                                      demonstrations, reflections)


def _demonstrations(task: str, variation: int, count: int) -> list:
    from empo2_lite.env.scienceworld.demonstrations import demonstrations_for

    return demonstrations_for(task, variation, count)


def _open_pool(size: int, config):
    from empo2_lite.env.scienceworld import pool

    return pool.EnvPool(size, config)  # looked up when called: a test may replace it


def _open_game(config):
    from empo2_lite.env.scienceworld.adapter import ScienceWorldAdapter

    return ScienceWorldAdapter(config)


def ended_by_wrong_focus(trajectory: Trajectory) -> bool:
    """Whether the episode's last action was a ``focus on`` and it ended as a failure."""
    return (trajectory.end_reason == "failed" and bool(trajectory.turns)
            and trajectory.turns[-1].action.strip().lower().startswith("focus on"))


def summary_extras(played: Sequence[Trajectory]) -> dict[str, float]:
    """ScienceWorld's own statistics of played episodes: the official wrapper's success criterion
    (score > 70) and the share of episodes ended by a ``focus on`` it scored as a failure (-100),
    the commonest way an untrained small model loses and the first thing training must remove."""
    count = max(len(played), 1)
    return {"success_official_rate": sum(bool(t.final_info.get("success_official")) for t in played) / count,
            "wrong_focus_share": sum(ended_by_wrong_focus(t) for t in played) / count}


ENVIRONMENT = Environment(
    name="scienceworld", title="ScienceWorld", tasks=_tasks, owns_task=_owns_task, system_prompt=prompts.SYSTEM_PROMPT, first_message=_first_message,
    start_fields=("inventory",), demonstrations=_demonstrations, open_pool=_open_pool, open_game=_open_game,
    summary_extras=summary_extras,
    metric_names={"success_official_rate": "charts/success_official_rate",
                  "wrong_focus_share": "diagnostics/wrong_focus_share"},
    evaluation_fields=("success_official_rate",),
    state_key_rules=StateKeyRules(
        looking_commands=("look", "examine", "read", "inventory", "task"), moving_commands=("go", "teleport"),
        place_pattern=r"(?:You move to|You teleport to|This room is called|This outside location is called) "
                      r"the ([^.\n]+)\."))

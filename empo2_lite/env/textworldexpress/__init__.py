"""TextWorldExpress as the kit's second environment (``env/spec.py``): a few of its procedurally
generated games at small sizes (``games.py``), one JVM for all slots (``adapter.py``, ``pool.py``),
its own command grammar and first message (``prompts.py``) and gold-path demonstrations
(``demonstrations.py``). Choose it with ``env.name=textworldexpress`` and a ``twx-`` task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from empo2_lite.env.spec import Environment, StateKeyRules
from empo2_lite.env.textworldexpress import prompts


def _tasks() -> tuple:
    from empo2_lite.env.textworldexpress.games import tasks

    return tasks()


def _owns_task(task: str) -> bool:
    from empo2_lite.env.textworldexpress.games import GAMES

    return any(entry.name == task for entry in GAMES)


def _demonstrations(task: str, seed: int, count: int) -> list:
    from empo2_lite.env.textworldexpress.demonstrations import demonstrations_for

    return demonstrations_for(task, seed, count)


def _open_pool(size: int, config):
    from empo2_lite.env.textworldexpress.pool import TextWorldExpressPool

    return TextWorldExpressPool(size, config)


@contextlib.contextmanager
def _open_game(config) -> Iterator:
    """One game in a pool of one (its JVM stops when the block ends)."""
    from empo2_lite.env.textworldexpress.pool import TextWorldExpressPool

    with TextWorldExpressPool(1, config) as pool:
        yield pool.game(0)


ENVIRONMENT = Environment(
    name="textworldexpress", title="TextWorldExpress", tasks=_tasks, owns_task=_owns_task, system_prompt=prompts.SYSTEM_PROMPT,
    first_message=prompts.first_user_message, start_fields=("inventory",), demonstrations=_demonstrations,
    open_pool=_open_pool, open_game=_open_game,
    state_key_rules=StateKeyRules(looking_commands=("look", "inventory", "task", "read"), moving_commands=("move",),
                                  place_pattern=r"You are in the ([^.\n]+)\."))

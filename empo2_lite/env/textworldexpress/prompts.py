"""The prompt text of TextWorldExpress episodes, in the kit's own words: the system prompt with the
games' command grammar, and the first message (the task, the inventory, the examples, the first
room). Every later message, the tip block and the tip request are the kit's shared ones
(``empo2_lite/prompts.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from empo2_lite import prompts
from empo2_lite.env.episode import EpisodeStart

SYSTEM_PROMPT = """\
You are an agent inside a small text game: a house or a few rooms with objects in them. You act by \
typing commands. Each turn you will see what your last command did; reply with the next command.

Commands you can type (OBJ and CONTAINER are names of things you can see; DIR is north, south, east \
or west):
  look around | inventory | task | read OBJ
  move DIR | open OBJ | close OBJ
  take OBJ | put OBJ in CONTAINER | put OBJ on CONTAINER
Write object names the way the observations write them."""


def first_user_message(start: EpisodeStart, demonstrations: Sequence, reflections: Sequence[tuple[int, str]]) -> str:
    """The opening user message: the task, the inventory, solved examples of the same game, the
    reflections of earlier trials (Reflexion only), the first room and the request."""
    head = [f"Your task: {start.task_description.strip()}", start.info.get("inventory", "")]
    return prompts.opening_message(head, demonstrations,
                                   "Solved examples of the same game (other rooms and objects may differ):",
                                   reflections, start.observation)

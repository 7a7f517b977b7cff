"""ScienceWorld's prompt text, in the kit's own words: the system prompt with its command grammar,
the rule about ``focus on`` (a wrong focus fails a ScienceWorld task at once) and the first message
of an episode (the task, the rule, the inventory, solved examples, the reflections of Reflexion's
earlier trials, the first observation). Every later message, the tip block and the tip request are
the kit's shared ones (``empo2_lite/prompts.py``)."""

from __future__ import annotations

from collections.abc import Sequence

from empo2_lite import prompts
from empo2_lite.demonstrations import Demonstration

SYSTEM_PROMPT = """\
You are an agent inside ScienceWorld, a text simulation of a small house with rooms, objects, \
substances, plants, animals and electrical parts. You act by typing commands. Each turn you will \
see what your last command did; reply with the next command.

Commands you can type (OBJ and LOC are names of things and places you can see):
  look around | look at OBJ | look in OBJ | read OBJ | inventory | task
  go to LOC | teleport to LOC | open OBJ | close OBJ
  pick up OBJ | put down OBJ | move OBJ to OBJ | pour OBJ into OBJ | dunk OBJ into OBJ | mix OBJ
  activate OBJ | deactivate OBJ | connect OBJ to OBJ | disconnect OBJ
  use OBJ | use OBJ on OBJ | eat OBJ | flush OBJ
  focus on OBJ | wait | wait1
Write object names the way the observations write them."""

FOCUS_RULE = (
    "Use 'focus on' only on the object the task asks you to focus on, and only when you are sure: "
    "focusing on anything else fails the task at once."
)


def first_user_message(
    task_description: str,
    inventory: str,
    observation: str,
    demonstrations: Sequence[Demonstration],
    reflections: Sequence[tuple[int, str]] = (),
) -> str:
    """The opening user message, before any tips: task, rules, examples, the reflections of earlier
    trials (Reflexion only: ``reflection_block``), first observation."""
    return prompts.opening_message([f"Your task: {task_description.strip()}", FOCUS_RULE, inventory], demonstrations,
                                   "Solved examples of similar tasks (other rooms and objects may differ):",
                                   reflections, observation)

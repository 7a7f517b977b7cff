"""Turning free text from the policy into an action ScienceWorld can execute.

The paper maps any action to the closest valid action by word overlap before execution. Here:

* ``normalize_action`` cleans the policy's text (first non-empty line, no surrounding
  punctuation or quotes, single spaces; case is kept, ScienceWorld object names such as
  "unknown substance B" carry it);
* ``closest_action`` picks the valid action with the highest word overlap, measured as the
  Jaccard index of the two word sets; ties go to the shorter action, then the alphabetically
  first, so the choice is deterministic;
* ``parse_ambiguity`` reads ScienceWorld's "Ambiguous request" follow-up, which lists numbered
  options and waits for a number.
"""

from __future__ import annotations

import re

PARSER_REJECTIONS = ("No known action matches that input.", "Unknown action.")
"""Observation prefixes with which ScienceWorld's parser rejects a text without acting."""

AMBIGUITY_PREFIX = "Ambiguous request"

_WORD = re.compile(r"[a-z0-9]+")
_OPTION = re.compile(r"^\s*(\d+):\s*(.+?)\s*$")


def normalize_action(text: str) -> str:
    """The first non-empty line of ``text``, single-spaced, without surrounding punctuation."""
    for line in text.splitlines():
        cleaned = " ".join(line.split()).strip(" .!?;:,\"'`")
        if cleaned:
            return cleaned
    return ""


def words(text: str) -> frozenset[str]:
    """The set of lower-case alphanumeric words in ``text``."""
    return frozenset(_WORD.findall(text.lower()))


def word_overlap(a: str, b: str) -> float:
    """Jaccard index of the word sets of ``a`` and ``b`` (0 when both are empty)."""
    wa, wb = words(a), words(b)
    union = wa | wb
    return len(wa & wb) / len(union) if union else 0.0


def find_exact(text: str, valid_actions: list[str]) -> str | None:
    """The valid action equal to ``text`` ignoring case, or None."""
    folded = text.casefold()
    return next((action for action in valid_actions if action.casefold() == folded), None)


def closest_action(text: str, valid_actions: list[str]) -> str:
    """The valid action most similar to ``text`` (deterministic; see module docstring)."""
    if not valid_actions:
        raise ValueError("valid_actions is empty: the environment offered no action to fall back on")
    return min(valid_actions, key=lambda action: (-word_overlap(text, action), len(action), action))


def is_parser_rejection(observation: str) -> bool:
    """Whether ScienceWorld rejected the text as unparseable (no time passed in the simulator)."""
    return observation.lstrip().startswith(PARSER_REJECTIONS)


def parse_ambiguity(observation: str) -> list[str] | None:
    """The numbered options of an "Ambiguous request" observation, or None for any other text."""
    if not observation.lstrip().startswith(AMBIGUITY_PREFIX):
        return None
    options: dict[int, str] = {}
    for line in observation.splitlines()[1:]:
        match = _OPTION.match(line)
        if match:
            options[int(match.group(1))] = match.group(2)
    return [options[i] for i in sorted(options)]

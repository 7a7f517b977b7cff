"""Action correction and ScienceWorld's ambiguity follow-up, on hand-made inputs (no JVM)."""

from __future__ import annotations

import pytest

from empo2_lite.env.actions import (
    closest_action,
    find_exact,
    is_parser_rejection,
    normalize_action,
    parse_ambiguity,
    word_overlap,
)


@pytest.mark.parametrize("text, expected", [
    ("open door to kitchen", "open door to kitchen"),
    ("  Open   door to   kitchen.  \nthen go", "Open door to kitchen"),
    ("\n\n  focus on unknown substance B!", "focus on unknown substance B"),
    ("'go to hallway'", "go to hallway"),
    ("   \n  ", ""),
])
def test_normalize_action(text, expected):
    assert normalize_action(text) == expected


def test_word_overlap_is_the_jaccard_index_of_word_sets():
    assert word_overlap("open door to kitchen", "open door to kitchen") == 1.0
    assert word_overlap("open the door", "open door to kitchen") == pytest.approx(2 / 5)
    assert word_overlap("dance", "open door") == 0.0
    assert word_overlap("", "") == 0.0


def test_closest_action_prefers_most_overlap():
    valid = ["go to kitchen", "open door to kitchen", "focus on dove", "pick up dove"]
    assert closest_action("please open the kitchen door", valid) == "open door to kitchen"
    assert closest_action("grab the dove", valid) in ("focus on dove", "pick up dove")


def test_closest_action_ties_are_deterministic():
    # Both overlap 1/3 with "dove": the shorter wins; equal length goes alphabetically.
    assert closest_action("dove", ["focus on dove", "pick up dove"]) == "pick up dove"
    assert closest_action("dove", ["pick up dove", "look at dove"]) == "look at dove"
    assert closest_action("xyz", ["wait", "task", "look around"]) == "task"
    assert closest_action("xyz", ["wait", "task"]) == closest_action("xyz", ["task", "wait"])


def test_closest_action_needs_candidates():
    with pytest.raises(ValueError, match="valid_actions"):
        closest_action("look", [])


def test_find_exact_ignores_case_only():
    valid = ["focus on unknown substance B", "look around"]
    assert find_exact("Focus on unknown substance b", valid) == "focus on unknown substance B"
    assert find_exact("look around now", valid) is None


def test_parser_rejection():
    assert is_parser_rejection("No known action matches that input.")
    assert is_parser_rejection("Unknown action.  Type 'help' for a list of actions")
    assert not is_parser_rejection("You move to the kitchen.")


def test_parse_ambiguity_reads_the_numbered_options():
    observation = (
        "Ambiguous request: Please enter the number for the action you intended (or blank to cancel):\n"
        "0:\tlook at door between living room and hallway\n"
        "1:\tlook at door between greenhouse and hallway\n"
        "2:\tlook at door between bedroom and hallway\n"
    )
    assert parse_ambiguity(observation) == [
        "look at door between living room and hallway",
        "look at door between greenhouse and hallway",
        "look at door between bedroom and hallway",
    ]
    assert parse_ambiguity("You move to the kitchen.") is None

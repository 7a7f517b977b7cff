"""Prompt pieces and the cached demonstrations."""

from __future__ import annotations

import pytest

from empo2_lite import prompts
from empo2_lite.demonstrations import Demonstration
from empo2_lite.env.scienceworld import prompts as scienceworld_prompts
from empo2_lite.env.scienceworld.demonstrations import demonstrations_for
from empo2_lite.env.scienceworld.tasks import all_tasks
from empo2_lite.env.play import play_actions


def test_first_message_has_task_rules_inventory_examples_and_observation():
    demo = Demonstration(7, "Your task is to find a(n) plant.", ("go to outside", "focus on tree"))
    text = scienceworld_prompts.first_user_message("Your task is to find a(n) animal.", "In your inventory, you see:\n\tan orange",
                                      "This room is called the hallway.", [demo])
    for piece in ("find a(n) animal", scienceworld_prompts.FOCUS_RULE, "an orange", "Example 1: Your task is to find a(n) plant.",
                  "  > focus on tree", "This room is called the hallway.", prompts.STEP_REQUEST):
        assert piece in text
    assert text.index("Example 1") < text.index("You are here now")


def test_the_opening_message_keeps_one_order_for_every_environment_and_drops_blank_parts():
    demo = Demonstration(3, "Take the coin.", ("move east", "take coin"))
    text = prompts.opening_message(["Your task: take the coin.", "  ", "Rule one."], [demo], "Examples:",
                                   [(1, "Go east first.")], "  A kitchen.  ")
    assert text == ("Your task: take the coin.\n\nRule one.\n\nExamples:\n\n"
                    + prompts.format_demonstration(1, demo) + "\n\n" + prompts.REFLECTIONS_HEADING
                    + "\nTrial #1: Go east first.\n\nYou are here now:\nA kitchen.\n\n" + prompts.STEP_REQUEST)
    assert prompts.opening_message(["Task."], [], "Examples:", [], "Room.") == (
        "Task.\n\nYou are here now:\nRoom.\n\n" + prompts.STEP_REQUEST)


def test_tip_block_is_delimited_and_empty_without_tips():
    assert prompts.tip_block([]) == ""
    assert prompts.with_tips("obs", []) == "obs"
    block = prompts.tip_block(["open doors first", "the red box is in the kitchen"])
    assert block.startswith(prompts.TIP_BLOCK_START) and prompts.TIP_BLOCK_END in block
    assert "- open doors first\n- the red box is in the kitchen" in block
    assert prompts.with_tips("obs", ["a"]).endswith("\n\nobs")


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.name)
def test_every_task_has_two_train_demonstrations_that_exclude_the_played_variation(task):
    demos = demonstrations_for(task.name, task.train_variations[0])
    assert len(demos) == 2
    train_ids = task.split_ids("train")
    assert all(demo.variation in train_ids and demo.variation != task.train_variations[0] for demo in demos)
    last = train_ids[-1]
    assert all(demo.variation != last for demo in demonstrations_for(task.name, last))


@pytest.mark.jvm
@pytest.mark.parametrize("name", ["identify-life-stages-2", "power-component", "chemistry-mix-paint-secondary-color"])
def test_cached_demonstrations_still_solve_their_variation(adapter, name):
    demo = demonstrations_for(name, -1, count=1)[0]
    episode = play_actions(adapter, name, demo.variation, list(demo.actions))
    assert episode.steps[-1].success and episode.score == 100

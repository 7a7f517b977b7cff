"""The episode adapter on real ScienceWorld JVMs.

ScienceWorld's observation text lists objects in no fixed order, so these tests compare scores,
flags and executed actions, never whole observations.
"""

from __future__ import annotations

import pytest

from empo2_lite.config import EnvConfig
from empo2_lite.env import EpisodeOverError, ScienceWorldAdapter
from empo2_lite.env.play import play_actions
from empo2_lite.env.scienceworld.tasks import all_tasks
from empo2_lite.tasks import UnknownTaskError

pytestmark = pytest.mark.jvm


def test_every_paper_task_loads_with_the_registry_split_sizes(adapter):
    server = adapter.jvm.server
    for task in all_tasks():
        start = adapter.reset(task.name, task.train_variations[0])
        assert start.task_description.strip(), task.name
        assert start.max_steps == task.max_steps
        assert len(server.getVariationsTrain()) == task.n_train_total, task.name
        assert len(server.getVariationsDev()) == task.n_dev_total, task.name
        assert len(server.getVariationsTest()) == task.n_test_total, task.name
        assert list(server.getVariationsTest())[: len(task.test_variations)] == list(task.test_variations)
        assert list(server.getVariationsTrain())[: len(task.train_variations)] == list(task.train_variations)


@pytest.mark.slow
@pytest.mark.parametrize("task, variation", [
    ("find-animal", 0), ("find-animal", 225),
    ("power-component", 0), ("power-component", 15),
    ("chemistry-mix", 24),
    ("use-thermometer", 405),
    ("lifespan-longest-lived", 93),
    ("identify-life-stages-1", 9),
])
def test_gold_sequence_succeeds_through_the_adapter(adapter, task, variation):
    episode = play_actions(adapter, task, variation, None)
    last = episode.steps[-1]
    assert last.done and last.success and last.info["success_official"]
    assert last.score == 100 and last.info["end_reason"] == "completed"
    assert sum(step.reward for step in episode.steps) == 100 - episode.start.score
    assert not any(step.info["corrected"] for step in episode.steps)


def test_wrong_focus_ends_the_episode_at_minus_100(adapter):
    adapter.reset("find-animal", 0)
    result = adapter.step("focus on air")
    assert result.score == -100 and result.done
    assert not result.success and not result.info["success_official"]
    assert result.info["end_reason"] == "failed"
    with pytest.raises(EpisodeOverError):
        adapter.step("look around")


def test_unknown_text_is_corrected_to_a_valid_action(adapter):
    adapter.reset("find-animal", 0)
    valid = adapter.valid_actions()
    result = adapter.step("please open the door to the kitchen now")
    assert result.info["corrected"]
    assert result.raw_action == "please open the door to the kitchen now"
    assert result.action in valid
    assert "kitchen" in result.action
    assert not result.done


def test_valid_actions_are_listed_only_when_correction_needs_them(adapter, monkeypatch):
    adapter.reset("find-animal", 0)
    calls = []
    real = adapter.valid_actions
    monkeypatch.setattr(adapter, "valid_actions", lambda: calls.append(1) or real())
    adapter.step("look around")
    adapter.step("open door to kitchen")
    assert calls == []
    adapter.step("xyzzy plugh")
    assert calls == [1]


def test_ambiguous_request_is_answered_in_the_same_step(adapter):
    start = adapter.reset("find-animal", 0)
    assert "hallway" in start.observation  # variation 0 starts in the hallway, with six doors
    result = adapter.step("look at door")
    options = result.info["ambiguity_options"]
    assert len(options) > 1
    assert result.action == options[0]
    assert not result.observation.startswith("Ambiguous")
    assert result.info["steps"] == 1


def test_max_steps_ends_the_episode(adapter):
    start = adapter.reset("find-plant", 1, max_steps=3)
    assert start.max_steps == 3
    results = [adapter.step("look around") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True]
    assert results[-1].info["end_reason"] == "max_steps"
    assert results[-1].score >= 0 and not results[-1].success


def test_registry_step_cap_is_the_default(adapter):
    assert adapter.reset("chemistry-mix", 0).max_steps == 60
    assert adapter.reset("boil", 0).max_steps == EnvConfig().default_max_steps


def test_reset_shows_task_and_inventory(adapter):
    start = adapter.reset("use-thermometer", 0)
    assert "thermometer" in start.task_description
    assert "inventory" in start.info["inventory"].lower()


def test_bad_task_or_variation_is_a_clear_error(adapter):
    with pytest.raises(UnknownTaskError, match="not a ScienceWorld task; choose one of: .*find-animal"):
        adapter.reset("find-unicorn", 0)
    with pytest.raises(UnknownTaskError, match=r"out of range for power-component; choose one of 0\.\.19"):
        adapter.reset("power-component", 20)


def test_valid_list_mode_corrects_everything_off_the_list():
    with ScienceWorldAdapter(EnvConfig(action_check="valid_list")) as env:
        env.reset("find-animal", 0)
        exact = env.step("Look around")
        assert not exact.info["corrected"] and exact.action == "look around"
        fuzzy = env.step("go into the kitchen please")
        assert fuzzy.info["corrected"] and fuzzy.action == "go to kitchen"

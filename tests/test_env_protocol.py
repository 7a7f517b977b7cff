"""The pool protocol rollouts use, and the replay pool that stands in for ScienceWorld in tests.

The replay pool is only as good as its recordings, so one JVM test re-records every episode the
tests replay and compares it with the stored files (observations as word multisets: ScienceWorld
lists objects in no fixed order).
"""

from __future__ import annotations

import inspect
import json

import pytest

from empo2_lite.env.pool import EnvPool
from empo2_lite.env.protocol import EpisodePool
from record_transitions import EPISODES, record_episode
from replay_pool import RECORD_COMMAND, ReplayPool, UnrecordedTransition, recording_path

MEMBERS = sorted(name for name in vars(EpisodePool) if not name.startswith("_"))


@pytest.mark.parametrize("pool_class", [EnvPool, ReplayPool])
def test_both_pools_have_every_member_of_the_protocol(pool_class):
    assert MEMBERS == ["abandon", "active", "reset", "size", "step"]
    for name in MEMBERS:
        wanted, found = getattr(EpisodePool, name), getattr(pool_class, name)
        assert isinstance(found, property) == isinstance(wanted, property), name
        if not isinstance(wanted, property):
            parameters = inspect.signature(found).parameters
            for parameter in inspect.signature(wanted).parameters.values():
                assert parameters[parameter.name].kind == parameter.kind, (name, parameter.name)
    assert isinstance(ReplayPool(1), EpisodePool)


def test_a_replayed_episode_ends_as_recorded_and_its_rewards_add_up():
    pool = ReplayPool(2)
    animal, bulb = pool.reset([("find-animal", 0), ("power-component", 0)])
    assert (animal.task, animal.variation, animal.max_steps, bulb.max_steps) == ("find-animal", 0, 30, 30)
    first = pool.step({0: "look around", 1: "inventory"})
    assert not first[0].done and pool.active == [0, 1] and first[1].info["steps"] == 1
    failed = pool.step({0: "focus on air", 1: "inventory"})[0]
    assert (failed.done, failed.score, failed.info["end_reason"], pool.active) == (True, -100, "failed", [1])
    assert animal.score + first[0].reward + failed.reward == failed.score


def test_the_step_cap_is_applied_at_replay():
    pool = ReplayPool(1)
    [start] = pool.reset([("find-animal", 1)], max_steps=2)
    assert start.max_steps == 2
    results = [pool.step({0: "look around"})[0] for _ in range(2)]
    assert [r.info["end_reason"] for r in results] == [None, "max_steps"] and results[-1].done and not pool.active


def test_a_corrected_action_keeps_the_text_as_typed():
    pool = ReplayPool(1)
    pool.reset([("find-animal", 0)])
    result = pool.step({0: "dance with the unicorn"})[0]
    assert (result.raw_action, result.action, result.info["corrected"]) == ("dance with the unicorn", "task", True)


def test_an_unrecorded_transition_fails_naming_it_and_how_to_record_it():
    pool = ReplayPool(1)
    pool.reset([("find-animal", 0)])
    pool.step({0: "look around"})
    with pytest.raises(UnrecordedTransition) as error:
        pool.step({0: "eat the orange"})
    message = str(error.value)
    assert "find-animal variation 0 after the actions ['look around', 'eat the orange']" in message
    assert "tests/record_transitions.py" in message and RECORD_COMMAND in message
    with pytest.raises(UnrecordedTransition, match="no recording of find-animal variation 7"):
        pool.reset([("find-animal", 7)])


def test_lock_step_misuse_is_refused_as_by_the_real_pool():
    pool = ReplayPool(1)
    with pytest.raises(ValueError, match="do not fit a pool of 1"):
        pool.reset([("find-animal", 0)] * 2)
    pool.reset([("find-animal", 0)])
    pool.abandon(0)
    with pytest.raises(ValueError, match=r"slots \[0\] have no running episode"):
        pool.step({0: "look around"})


def comparable(recording: dict) -> dict:
    """A recording with every observation reduced to its words, in sorted order."""
    def words(record: dict) -> dict:
        return {**record, "observation": sorted(record["observation"].split())}

    return {**recording, "start": words(recording["start"]), "steps": [words(step) for step in recording["steps"]]}


@pytest.mark.jvm
def test_the_recordings_match_real_scienceworld(adapter):
    for (task, variation), sequences in EPISODES.items():
        stored = json.loads(recording_path(task, variation).read_text())
        assert comparable(record_episode(adapter, task, variation, sequences)) == comparable(stored), (
            f"{task} variation {variation} changed: run `{RECORD_COMMAND}`")

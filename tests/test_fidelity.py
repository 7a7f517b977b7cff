"""Fidelity fixes still waiting for their module's test file: novelty scored per step and the
novelty term (``test_memory.py``, ``test_trainer.py``), and how a retrieved tip is shown
(``test_memory.py``). GRPO's settings moved to ``test_config.py`` and ``test_experiments.py``,
the tip budgets and the worst-case prompt to ``test_rollout.py``."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from empo2_lite import prompts
from empo2_lite.config import ConfigError, MemoryConfig
from empo2_lite.memory import Novelty, TipEntry, TipMemory
from empo2_lite.trainer import aggregate_novelty
from empo2_lite.trajectory import Trajectory, Turn


# -- 5. novelty: one step is scored against the counts from before it -------------------------------
def test_a_group_reaching_the_same_new_state_at_one_step_gets_the_same_novelty():
    novelty = Novelty(threshold=0.8)
    seen = "You are in the kitchen. You see a fridge and a table."
    assert novelty.score_step([("find-animal", 0, seen)] * 8) == [1.0] * 8
    assert novelty.score_step([("find-animal", 0, seen)] * 2) == [pytest.approx(1 / 9)] * 2
    assert novelty.score_step([("find-animal", 1, seen), ("find-animal", 0, "A bee hive hums.")]) == [1.0, 1.0]
    assert novelty.distinct_states("find-animal", 0) == 2


def test_the_novelty_term_is_the_sum_or_the_mean_of_the_steps():
    trajectory = Trajectory("find-animal", 0, 0, 0, turns=[_turn(novelty=value) for value in (1.0, 0.5, 0.0, 0.5)])
    assert aggregate_novelty(trajectory, "sum") == 2.0
    assert aggregate_novelty(trajectory, "mean") == 0.5
    assert aggregate_novelty(Trajectory("find-animal", 0, 0, 1), "mean") == 0.0
    with pytest.raises(ConfigError, match="memory.novelty_aggregation: 'max' is not allowed; choose one of: sum, mean"):
        MemoryConfig(novelty_aggregation="max").validate()


# -- 4. a shown tip carries the action at that step and the episode's score -------------------------
def test_retrieved_tips_show_tip_action_and_score_once_per_rendered_text():
    memory = TipMemory(MemoryConfig(relevance_threshold=0.0))
    common = {"task": "find-animal", "variation": 0, "key": "kitchen fridge table"}
    memory.add([TipEntry(tip="Look in the greenhouse.", action="go to greenhouse", score=100, **common),
                TipEntry(tip="Look in the greenhouse.", action="go to greenhouse", score=100,
                         **{**common, "key": "kitchen fridge"}),
                TipEntry(tip="Look in the greenhouse.", action="focus on fridge", score=-100, **common)])
    query = SimpleNamespace(task="find-animal", variation=0, history="kitchen fridge table")
    shown = memory.tips_for(query)
    assert shown == [prompts.format_tip("Look in the greenhouse.", "go to greenhouse", 100),
                     prompts.format_tip("Look in the greenhouse.", "focus on fridge", -100)]
    assert "go to greenhouse" in shown[0] and "100/100" in shown[0] and "-100/100" in shown[1]


def _turn(novelty: float = 0.0) -> Turn:
    return Turn(user_message="", tips=(), response_ids=[1], logprobs=[0.0], response_text="look around\n",
                raw_action="look around", action="look around", reward=0, score=0, finish="newline", novelty=novelty)

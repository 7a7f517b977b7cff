"""The fidelity fixes of the trainer: GRPO as in the paper, novelty that ignores slot order, tips
shown as the paper shows them and kept inside the context, and per-mode end reasons."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from empo2_lite import prompts
from empo2_lite.config import PRESETS, ConfigError, MemoryConfig, RolloutConfig, TrainConfig, apply_overrides, preset, run_format_error
from empo2_lite.env.adapter import EpisodeStart
from empo2_lite.experiments import VARIANTS, expand_grid
from empo2_lite.memory import Novelty, TipEntry, TipMemory
from empo2_lite.rollout import EpisodeSpec, _Episode, worst_case_prompt_tokens
from empo2_lite.tasks import all_tasks, get_task
from empo2_lite.trainer import aggregate_novelty
from empo2_lite.trajectory import Trajectory, Turn


# -- 1. GRPO is the trainer without memory and without the intrinsic reward -------------------------
def test_grpo_means_no_memory_no_tips_no_novelty_and_says_so_in_its_config():
    config = apply_overrides(preset("cpu-smoke"), {"algo": "grpo"})
    assert (config.p, config.write_tips, config.memory.novelty_coef) == (0.0, False, 0.0)
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored["p"] == 0.0 and stored["write_tips"] is False and stored["memory"]["novelty_coef"] == 0.0
    with pytest.raises(ConfigError, match="p: 0.5 is not allowed with algo 'grpo'"):
        apply_overrides(config, {"p": 0.5}).validate()


def test_the_grpo_ablations_are_explicit_settings_and_named_variants():
    novelty = apply_overrides(preset("cpu-smoke"), {"algo": "grpo", "memory.novelty_coef": 1.0})
    assert (novelty.p, novelty.write_tips, novelty.memory.novelty_coef) == (0.0, False, 1.0)
    names = {c.name: c for c in expand_grid(preset("cpu-smoke"), {"variant": ["grpo", "grpo+novelty", "grpo+tips-unseen"]})}
    tips = names["smoke-variantgrpo+tips-unseen"]
    assert (tips.p, tips.write_tips, tips.memory.novelty_coef) == (0.0, True, 0.0)
    assert names["smoke-variantgrpo+novelty"].memory.novelty_coef == 1.0
    assert names["smoke-variantgrpo"].memory.novelty_coef == 0.0
    with pytest.raises(ConfigError, match=re.escape("variant 'grpo-ish' is not allowed; choose one of: " + ", ".join(VARIANTS))):
        expand_grid(preset("cpu-smoke"), {"variant": ["grpo-ish"]})


def test_an_old_grpo_config_is_read_as_what_ran():
    old = preset("cpu-smoke").to_dict()  # a version-1 config.json: no format_version, no write_tips
    old.update(algo="grpo", p=0.5)
    del old["write_tips"], old["format_version"], old["update"]["mini_batch_actions"]
    old["update"].update(mini_batch_size=4, temperature=1.0)
    config = TrainConfig.from_dict(old)
    assert (config.p, config.write_tips, config.memory.novelty_coef) == (0.0, True, 1.0)
    assert config.format_version == 1
    config.validate()
    assert "config format 1" in str(run_format_error(config, "runs/demo"))
    assert run_format_error(preset("cpu-smoke"), "runs/demo") is None
    newer = {**preset("cpu-smoke").to_dict(), "format_version": 99}
    with pytest.raises(ConfigError, match="format_version: 99 is newer than this kit understands"):
        TrainConfig.from_dict(newer)


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


# -- 3. the with-tips view stays append-only and inside the context --------------------------------
def _episode(tokenizer, **settings) -> _Episode:
    start = EpisodeStart(task="find-animal", variation=0, observation="This room is called the kitchen.",
                         task_description="Your task is to find an animal.", inventory="In your inventory: nothing",
                         max_steps=30, score=0)
    policy = SimpleNamespace(tokenizer=tokenizer)
    return _Episode(policy, EpisodeSpec("find-animal", 0, 0), 0, start, RolloutConfig(demonstrations=0, **settings))


def test_a_tip_is_shown_once_per_episode_and_blocks_keep_their_budgets(tiny_smollm2_model):
    from empo2_lite.policy.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_smollm2_model))
    tips = [prompts.format_tip(f"Note number {i} about the greenhouse door.", "open door to greenhouse", 10 * i)
            for i in range(10)]
    def size(chosen):
        return len(tokenizer(prompts.tip_block(chosen), add_special_tokens=False).input_ids)

    block_budget = max(size(tips[:2]), size(tips[2:4]))
    assert size(tips[:3]) > block_budget and size(tips[2:5]) > block_budget
    episode_budget = size(tips[:2]) + size(tips[2:4]) + size(tips[4:5]) - 1
    episode = _episode(tokenizer, tip_block_tokens=block_budget, tip_episode_tokens=episode_budget)
    assert episode._tips_to_show(tips) == tuple(tips[:2])  # best first, as many as fit the block budget
    assert episode._tips_to_show(tips) == tuple(tips[2:4])  # tips shown earlier in the episode are not repeated
    assert episode._tips_to_show(tips[4:5]) == ()  # the episode budget has one token too few left
    assert episode.tip_tokens_left == size(tips[4:5]) - 1
    assert episode._tips_to_show(tips[:4]) == ()


@pytest.mark.parametrize("name", PRESETS)
def test_the_worst_case_memory_prompt_fits_each_preset(name, tiny_smollm2_model):
    """SmolLM2's tokenizer stands in for each preset's (Qwen's is similar on English text)."""
    from empo2_lite.policy.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_smollm2_model))
    config = preset(name)
    tasks = [get_task(config.task)] + [task for task in all_tasks() if task.max_steps == 30]
    for task in tasks:
        steps = config.rollout.max_steps or task.max_steps
        need = worst_case_prompt_tokens(tokenizer, task.name, config.rollout, steps)
        assert need <= config.rollout.max_context_tokens, (name, task.name, steps, need)


def test_the_worst_case_counts_every_step_block_up_to_the_episode_budget(tiny_smollm2_model):
    from empo2_lite.policy.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_smollm2_model))
    small = RolloutConfig(tip_block_tokens=10, tip_episode_tokens=10_000)
    large = RolloutConfig(tip_block_tokens=110, tip_episode_tokens=10_000)
    capped = RolloutConfig(tip_block_tokens=110, tip_episode_tokens=500)
    base = worst_case_prompt_tokens(tokenizer, "find-animal", small, 30)
    assert worst_case_prompt_tokens(tokenizer, "find-animal", large, 30) - base == 30 * 100
    assert worst_case_prompt_tokens(tokenizer, "find-animal", capped, 30) - base == 500 - 300


def _turn(novelty: float = 0.0) -> Turn:
    return Turn(user_message="", tips=(), response_ids=[1], logprobs=[0.0], response_text="look around\n",
                raw_action="look around", action="look around", reward=0, score=0, finish="newline", novelty=novelty)

"""Multi-turn rollouts: scripted policies, exact token views, packing.

A scripted sampler answers each episode from its own list of actions (found by a phrase of the
episode's task description in the prompt) and records every prompt it was fed, so the tests can
compare what the model saw with what the trajectory stores. The episodes replay recorded
ScienceWorld transitions (``replay_pool.ReplayPool``, no Java); one test samples from the model
on real ScienceWorld JVMs, end to end.
"""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest
import torch

from empo2_lite import prompts
from empo2_lite.env.scienceworld.prompts import SYSTEM_PROMPT
from empo2_lite.env.scienceworld.tasks import all_tasks
from empo2_lite.env.episode import EpisodeStart
from empo2_lite.env.pool import EnvPool
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import (EpisodeSpec, RetrievalQuery, _Episode, action_text, collect_rollouts, pay_novelty,
                                worst_case_prompt_tokens)
from empo2_lite.config import PRESETS, RolloutConfig, preset
from empo2_lite.tasks import get_task
from empo2_lite.trajectory import ChatTokens, TemplateError
from replay_pool import ReplayPool
from scripted import ScriptedSampler

ANIMAL = EpisodeSpec("find-animal", 0, group_id=0, seed=1)  # its task description says "animal"
BULB = EpisodeSpec("power-component", 0, group_id=1, seed=2)  # its task description says "light bulb"


@pytest.fixture()
def pool():
    return ReplayPool(2)


def tips_on_even_steps(query: RetrievalQuery) -> list[str]:
    return [f"tip for step {query.step} of {query.task}", "doors can be opened"] if query.step % 2 == 0 else []


def tipped_turns(trajectory) -> list[int]:
    return [step for step, turn in enumerate(trajectory.turns) if turn.tips]


def response_end(trajectory, step: int) -> int:
    """Where step ``step``'s response ends in the packed tip-free sequence."""
    packed, seen, count = trajectory.without_tips[0], 0, sum(len(t.response_ids) for t in trajectory.turns[:step + 1])
    for index, keep in enumerate(packed.action_mask):
        seen += keep
        if seen == count:
            return index + 1
    raise AssertionError("response not found")


def test_each_step_shows_its_own_block_and_the_views_differ_exactly_in_it(byte_policy, pool):
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around", "go to kitchen", "look around"],
                                                      "light bulb": ["look around", "inventory", "look around"]})
    trajectories = collect_rollouts(byte_policy, pool, [ANIMAL, BULB], RolloutConfig(max_steps=3, demonstrations=1),
                                    retrieve=tips_on_even_steps, sampler=sampler, progress=False)
    decode = byte_policy.tokenizer.decode
    for trajectory in trajectories:
        [packed] = trajectory.without_tips
        rest, *per_step = trajectory.with_tips
        assert trajectory.end_reason == "max_steps" and len(trajectory.turns) == 3
        assert tipped_turns(trajectory) == [0, 2] and len(per_step) == 2
        assert prompts.TIP_BLOCK_START not in decode(packed.input_ids) + decode(rest.input_ids)
        assert rest.input_ids == packed.input_ids and rest.action_ids() == trajectory.turns[1].response_ids
        for step, sample in zip((0, 2), per_step):
            text = decode(sample.input_ids)
            assert text.count(prompts.TIP_BLOCK_START) == 1  # its own block, no earlier one
            assert text.replace(prompts.tip_block(trajectory.turns[step].tips), "", 1) == decode(
                packed.input_ids[:response_end(trajectory, step)])
            assert sample.action_ids() == trajectory.turns[step].response_ids
        every_action = sorted(token for sample in trajectory.with_tips for token in sample.action_ids())
        assert every_action == sorted(packed.action_ids())  # each action trained exactly once per view


def test_the_stored_samples_start_with_every_prompt_the_model_was_fed(byte_policy, pool):
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 4, "light bulb": ["inventory"] * 4})
    trajectories = collect_rollouts(byte_policy, pool, [ANIMAL, BULB], RolloutConfig(max_steps=4, demonstrations=0),
                                    retrieve=tips_on_even_steps, sampler=sampler, progress=False)
    for trajectory, key in zip(trajectories, ("animal", "light bulb")):
        [packed], (_, *per_step) = trajectory.without_tips, trajectory.with_tips
        fed = sampler.fed[key]
        assert len(fed) == 4 and tipped_turns(trajectory) == [0, 2]
        for step, prompt in enumerate(fed):
            if step in (0, 2):
                assert per_step[step // 2].input_ids[: len(prompt)] == prompt
            else:
                assert packed.input_ids[: len(prompt)] == prompt
                assert sum(packed.action_mask[: len(prompt)]) == sum(len(t.response_ids) for t in trajectory.turns[:step])
        assert all(lp == -0.25 for lp, keep in zip(packed.old_logprobs, packed.action_mask) if keep)
        assert all(lp == 0.0 for lp, keep in zip(packed.old_logprobs, packed.action_mask) if not keep)


def test_an_episode_without_tips_has_one_packed_sample_in_each_view(byte_policy, pool):
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 3})
    [trajectory] = collect_rollouts(byte_policy, pool, [ANIMAL], RolloutConfig(max_steps=3, demonstrations=0),
                                    retrieve=lambda query: [], sampler=sampler, progress=False)
    [with_tips], [without_tips] = trajectory.with_tips, trajectory.without_tips
    assert with_tips.input_ids == without_tips.input_ids and with_tips.action_mask == without_tips.action_mask


def test_episodes_of_different_lengths_leave_the_batch(byte_policy, pool):
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around", "focus on air"],
                                                      "light bulb": ["look around", "inventory", "look around", "inventory"]})
    animal, bulb = collect_rollouts(byte_policy, pool, [ANIMAL, BULB], RolloutConfig(max_steps=4, demonstrations=0),
                                    sampler=sampler, progress=False)
    assert sampler.batch_sizes == [2, 2, 1, 1]
    assert animal.end_reason == "failed" and animal.score == -100 and len(animal.turns) == 2
    assert animal.turns[-1].action == "focus on air" and animal.episode_return == -100
    assert bulb.end_reason == "max_steps" and len(bulb.turns) == 4 and not bulb.used_tips
    assert (animal.group_id, bulb.group_id) == (0, 1) and (animal.rollout_id, bulb.rollout_id) == (0, 1)


def test_a_corrected_action_is_recorded_as_typed_and_as_executed(byte_policy, pool):
    sampler = ScriptedSampler(byte_policy, {"animal": ["dance with the unicorn", "look around"]})
    [trajectory] = collect_rollouts(byte_policy, pool, [ANIMAL], RolloutConfig(max_steps=2, demonstrations=0),
                                    sampler=sampler, progress=False)
    first = trajectory.turns[0]
    assert (first.raw_action, first.action, first.reward) == ("dance with the unicorn", "task", 0)
    assert "\n> task\n" in trajectory.turns[1].history and "unicorn" not in trajectory.turns[1].history


def test_more_episodes_than_slots_run_in_waves(byte_policy, pool):
    specs = [EpisodeSpec("find-animal", v, group_id=0, seed=v) for v in (0, 1, 2)]
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 3})
    trajectories = collect_rollouts(byte_policy, pool, specs, RolloutConfig(max_steps=1, demonstrations=0),
                                    sampler=sampler, progress=False)
    assert [t.variation for t in trajectories] == [0, 1, 2] and [t.rollout_id for t in trajectories] == [0, 1, 2]
    assert sampler.batch_sizes == [2, 1]


@pytest.mark.jvm
def test_sampled_logprobs_match_a_forward_pass_over_what_the_model_saw(byte_policy):
    """End to end: the model's own (random) text goes to real ScienceWorld and is corrected there."""
    torch.manual_seed(0)
    with EnvPool(1) as pool:
        [trajectory] = collect_rollouts(byte_policy, pool, [ANIMAL], RolloutConfig(max_steps=3, demonstrations=0,
                                        max_new_tokens=6), retrieve=tips_on_even_steps, progress=False)
    assert tipped_turns(trajectory) == [0, 2] and len(trajectory.with_tips) == 3
    trained = 0
    for sample in trajectory.with_tips:  # what the model saw: the history and, at a tipped step, its block
        ids = torch.tensor([sample.input_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(byte_policy.model(ids).logits[0, :-1].float(), -1)
        recomputed = logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1)
        mask = torch.tensor(sample.action_mask[1:], dtype=torch.bool)
        assert torch.allclose(recomputed[mask], torch.tensor(sample.old_logprobs[1:])[mask], atol=1e-4)
        trained += int(mask.sum())
    assert trained == sum(len(turn.response_ids) for turn in trajectory.turns) > 0


@pytest.mark.slow
def test_packed_ids_equal_the_smollm2_chatml_render(tiny_smollm2_model, pool):
    from empo2_lite.config import PolicyConfig
    from empo2_lite.policy import load_policy

    policy = load_policy(PolicyConfig(model=str(tiny_smollm2_model), lora_rank=0))
    sampler = ScriptedSampler(policy, {"animal": ["look around", "open door to kitchen", "go to kitchen"],
                                                 "light bulb": ["look around"] * 3})
    trajectories = collect_rollouts(policy, pool, [ANIMAL, BULB], RolloutConfig(max_steps=3), sampler=sampler,
                                    retrieve=tips_on_even_steps, progress=False)
    for trajectory in trajectories:
        history = [{"role": "system", "content": SYSTEM_PROMPT}]
        for turn in trajectory.turns:
            history += [{"role": "user", "content": turn.user_message},
                        {"role": "assistant", "content": turn.response_text}]
        renders = [(trajectory.without_tips[0], history)]
        for sample, step in zip(trajectory.with_tips[1:], tipped_turns(trajectory)):
            turn = trajectory.turns[step]
            renders.append((sample, history[:1 + 2 * step] + [
                {"role": "user", "content": prompts.with_tips(turn.user_message, turn.tips)},
                {"role": "assistant", "content": turn.response_text}]))
        assert len(renders) == 3
        for sample, messages in renders:
            rendered = policy.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
            # The render closes the last assistant turn; the sample ends at its response.
            assert rendered[: len(sample.input_ids)] == sample.input_ids
            assert policy.tokenizer.decode(rendered[len(sample.input_ids):]) == "<|im_end|>\n"


def test_history_window_makes_one_sample_per_turn_and_shows_tips_at_their_step(byte_policy, pool):
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around", "inventory"] * 3})
    [trajectory] = collect_rollouts(byte_policy, pool, [ANIMAL], RolloutConfig(max_steps=5, history_window=2,
                                    demonstrations=0), retrieve=lambda q: ["remember the doors"] if q.step == 1 else [],
                                    sampler=sampler, progress=False)
    decode = byte_policy.tokenizer.decode
    assert len(trajectory.with_tips) == len(trajectory.without_tips) == 5
    shows_tip = ["remember the doors" in decode(sample.input_ids) for sample in trajectory.with_tips]
    assert shows_tip == [False, True, False, False, False]  # the block of step 1 is shown at step 1 only
    assert all("Your task:" in decode(sample.input_ids) for sample in trajectory.with_tips)  # the first turn stays
    assert not any(prompts.TIP_BLOCK_START in decode(s.input_ids) for s in trajectory.without_tips)
    for step, (with_tips, without_tips) in enumerate(zip(trajectory.with_tips, trajectory.without_tips)):
        assert with_tips.action_ids() == without_tips.action_ids() == trajectory.turns[step].response_ids
        assert with_tips.input_ids[: len(sampler.fed["animal"][step])] == sampler.fed["animal"][step]


def test_a_template_that_rewrites_history_fails_loudly(byte_policy):
    tokenizer = byte_policy.tokenizer
    original = tokenizer.chat_template
    tokenizer.chat_template = "{{ messages[-1]['content'] }}"  # shows only the newest message
    try:
        chat = ChatTokens(tokenizer, "system")
        chat.add_user_turn("first observation")
        chat.add_response(tokenizer("look\n").input_ids, "look\n", [0.0] * 5)
        with pytest.raises(TemplateError, match="history_window"):
            chat.add_user_turn("second observation")
    finally:
        tokenizer.chat_template = original


def test_action_text_is_the_first_line_without_special_tokens(byte_policy):
    tokenizer = byte_policy.tokenizer
    ids = tokenizer("open door to kitchen\nand more", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    response = SampledResponse(ids, [0.0] * len(ids), tokenizer.decode(ids), "eos")
    assert action_text(response, tokenizer) == "open door to kitchen"


def test_memory_tips_reach_the_with_tips_view_only_and_novelty_is_recorded(byte_policy, pool):
    from empo2_lite.memory import Novelty, TipEntry, TipMemory

    memory = TipMemory()
    [start] = pool.reset([("find-animal", 0)])  # the episode's first observation, as a retrieval key
    memory.add([TipEntry("find-animal", 0, "the animal waits outside", "go to outside", 80, start.observation.strip())])
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around", "look around", "inventory"]})
    [trajectory] = collect_rollouts(byte_policy, pool, [ANIMAL], RolloutConfig(max_steps=3, demonstrations=0),
                                    retrieve=memory.tips_for, sampler=sampler, progress=False)
    pay_novelty([trajectory], Novelty())
    decode = byte_policy.tokenizer.decode
    shown = "the animal waits outside (that attempt did 'go to outside' here and ended with score 80/100)"
    assert trajectory.turns[0].tips == (shown,)
    assert "the animal waits outside" in decode(trajectory.with_tips[1].input_ids)
    assert "the animal waits outside" not in decode(trajectory.without_tips[0].input_ids)
    assert [turn.novelty for turn in trajectory.turns] == [1.0, 0.5, 1.0]  # "look around" twice, then inventory
    assert trajectory.turns[1].history.startswith(start.observation.strip()[:40])
    assert "> look around" in trajectory.turns[1].history


# -- every step's block fits its budget, and the context ------------------------------------------
def _episode(tokenizer, **settings) -> _Episode:
    start = EpisodeStart(task="find-animal", variation=0, observation="This room is called the kitchen.",
                         task_description="Your task is to find an animal.", max_steps=30, score=0,
                         info={"inventory": "In your inventory: nothing"})
    policy = SimpleNamespace(tokenizer=tokenizer)
    return _Episode(policy, EpisodeSpec("find-animal", 0, 0, seed=0), 0, start, RolloutConfig(demonstrations=0, **settings))


def test_a_block_takes_the_best_tips_that_fit_and_counts_the_rest(tiny_smollm2_model):
    from empo2_lite.policy.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_smollm2_model))
    tips = [prompts.format_tip(f"Note number {i} about the greenhouse door.", "open door to greenhouse", 10 * i)
            for i in range(10)]

    def size(chosen):
        return len(tokenizer(prompts.tip_block(chosen), add_special_tokens=False).input_ids)

    episode = _episode(tokenizer, tip_block_tokens=size(tips[:2]))
    assert size(tips[:3]) > size(tips[:2])
    assert episode.next_prompt(tips) and episode.pending_tips == tuple(tips[:2]) and episode.pending_dropped == 8
    assert episode._tips_to_show(tips) == tuple(tips[:2])  # the next step shows its own block again
    assert episode._tips_to_show([tips[0], tips[0]]) == (tips[0],)  # a tip retrieved twice is shown once


def full_length_tips(tokenizer, config) -> list[str]:
    """``top_k`` tips as long as the tip writer may make them, each with an action of
    ``max_new_tokens`` tokens and the longest score."""
    tip, action = " ".join(["word"] * config.memory.tip_max_new_tokens), " ".join(["go"] * config.rollout.max_new_tokens)
    assert len(tokenizer(tip, add_special_tokens=False).input_ids) == config.memory.tip_max_new_tokens
    assert len(tokenizer(action, add_special_tokens=False).input_ids) == config.rollout.max_new_tokens
    return [prompts.format_tip(f"{index} {tip}", action, -100) for index in range(config.memory.top_k)]


@pytest.mark.parametrize("name", ["gpu-24gb", "gpu-48gb"])
def test_ten_full_length_tips_are_shown_at_the_first_and_the_last_step(name, tiny_smollm2_model):
    """The paper shows the top 10 tips: under the GPU presets a retrieval of 10 full-length tips is
    shown whole at every step, the last step of an episode that reaches the step cap included."""
    from empo2_lite.config import PolicyConfig
    from empo2_lite.policy import load_policy

    config = preset(name)
    policy = load_policy(PolicyConfig(model=str(tiny_smollm2_model), lora_rank=0))
    tips = full_length_tips(policy.tokenizer, config)
    steps = get_task("find-animal").max_steps
    sampler = ScriptedSampler(policy, {"animal": ["look around"] * steps})
    with ReplayPool(1, unrecorded="fixed") as pool:
        [trajectory] = collect_rollouts(policy, pool, [ANIMAL], config.rollout, retrieve=lambda query: tips,
                                        sampler=sampler, progress=False)
    assert trajectory.end_reason == "max_steps" and len(trajectory.turns) == steps == 30
    assert len(trajectory.turns[0].tips) == len(trajectory.turns[-1].tips) == 10
    assert all(turn.tips_dropped == 0 for turn in trajectory.turns)


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


def test_the_worst_case_counts_one_block_whatever_the_number_of_steps(tiny_smollm2_model):
    from empo2_lite.policy.loading import load_tokenizer

    tokenizer = load_tokenizer(str(tiny_smollm2_model))
    small, large = RolloutConfig(tip_block_tokens=10), RolloutConfig(tip_block_tokens=110)
    for steps in (5, 30):
        base = worst_case_prompt_tokens(tokenizer, "find-animal", small, steps)
        assert worst_case_prompt_tokens(tokenizer, "find-animal", large, steps) - base == 100
        assert base - worst_case_prompt_tokens(tokenizer, "find-animal", small, steps, with_tips=False) == 10


# -- edge paths: the context limit, and an environment failure in the middle of a wave ---------------
def test_an_episode_that_outgrows_the_context_ends_there_while_the_other_plays_on(byte_policy):
    scripts = {"animal": ["look around"] * 4, "light bulb": ["inventory"] * 4}
    config = RolloutConfig(max_steps=4, demonstrations=0, max_new_tokens=8)
    measured = ScriptedSampler(byte_policy, scripts)
    collect_rollouts(byte_policy, ReplayPool(2), [ANIMAL, BULB], config, sampler=measured, progress=False)
    animal_lengths, bulb_lengths = ([len(p) for p in measured.fed[key]] for key in ("animal", "light bulb"))
    # The third prompt of find-animal is the first that does not fit; every prompt of the other fits.
    limit = animal_lengths[2] + config.max_new_tokens - 1
    assert animal_lengths[1] + config.max_new_tokens <= limit and max(bulb_lengths) + config.max_new_tokens <= limit

    pool, sampler = ReplayPool(2), ScriptedSampler(byte_policy, scripts)
    animal, bulb = collect_rollouts(byte_policy, pool, [ANIMAL, BULB], RolloutConfig(
        max_steps=4, demonstrations=0, max_new_tokens=8, max_context_tokens=limit), sampler=sampler, progress=False)
    assert animal.end_reason == "context_limit" and len(animal.turns) == 2 and animal.error is None
    assert pool.abandoned == [0] and sampler.batch_sizes == [2, 2, 1, 1]
    assert bulb.end_reason == "max_steps" and len(bulb.turns) == 4
    [packed], [with_tips] = animal.without_tips, animal.with_tips
    assert with_tips.input_ids == packed.input_ids and with_tips.action_mask == packed.action_mask
    assert packed.action_ids() == [token for turn in animal.turns for token in turn.response_ids]
    assert [len(p) for p in sampler.fed["animal"]] == animal_lengths[:2]  # the third prompt never reached the model
    assert packed.input_ids[: len(sampler.fed["animal"][1])] == sampler.fed["animal"][1]
    assert animal.final_message == prompts.step_user_message(animal.final_observation)


def test_an_environment_failure_ends_its_episode_only_and_it_gets_no_tip(byte_policy):
    from empo2_lite.config import MemoryConfig

    pool = ReplayPool(2)
    pool.fail_at(0, step=2)
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 4, "light bulb": ["inventory"] * 4})
    animal, bulb = collect_rollouts(byte_policy, pool, [ANIMAL, BULB], RolloutConfig(max_steps=4, demonstrations=0),
                                    sampler=sampler, progress=False, tips=MemoryConfig(tip_max_new_tokens=4))
    assert animal.end_reason == "env_failure" and "slot 0" in animal.error and len(animal.turns) == 1
    assert sampler.batch_sizes == [2, 2, 1, 1] and len(sampler.fed["animal"]) == 2
    assert bulb.end_reason == "max_steps" and len(bulb.turns) == 4 and bulb.error is None
    assert animal.tip is None and animal.tip_finish is None  # never written: it is not trained on
    assert bulb.tip is not None and bulb.tip_finish in ("eos", "newline", "length")


def test_the_trainer_leaves_an_env_failure_out_of_the_update(tmp_path, monkeypatch, tiny_smollm2_model):
    from empo2_lite import iteration as phases
    from empo2_lite import trainer as trainer_module
    from empo2_lite.config import apply_overrides
    from empo2_lite.runs import RunDir

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    played, batches = [], []

    def collecting(*args, **kwargs):
        played.extend(collect_rollouts(*args, **kwargs))
        return played

    def updating(batch, *args, **kwargs):
        batches.append(batch)
        return update(batch, *args, **kwargs)

    update = phases.update
    monkeypatch.setattr(phases, "collect_rollouts", collecting)
    monkeypatch.setattr(phases, "update", updating)
    config = apply_overrides(preset("cpu-smoke"), {"iterations": 1, "name": "failing", "p": 1.0, "q": 1.0,
                                                   "rollout.max_steps": 2,
                                                   "policy.model": str(tiny_smollm2_model)})
    trainer = trainer_module.Trainer(config, RunDir.named(config.name))
    trainer.sampler = ScriptedSampler(trainer.policy, {"animal": ["look around"] * 1000})
    pool = ReplayPool(config.n_envs)
    pool.fail_at(1, step=2)
    [metrics] = trainer.train(progress=False, pool=pool)
    assert [t.end_reason for t in played] == ["max_steps", "env_failure", "max_steps", "max_steps"]
    assert metrics["charts/env_failures"] == 1 and played[1].turns and played[1].with_tips
    [batch] = batches
    assert batch.played == [played[0], played[2], played[3]]
    assert set(batch.sample_episodes) == {0, 1, 2}  # every played episode's samples, nothing else


class _RewordingPool(ReplayPool):
    """Replays the recording but shows ``observations[(slot, step)]`` as the observation reached, so
    the novelty the rollout records can be checked on observations built around the threshold."""

    def __init__(self, size: int, observations: dict[tuple[int, int], str]) -> None:
        super().__init__(size, unrecorded="fixed")
        self._observations, self._steps = observations, [0] * size

    def step(self, actions):
        results = super().step(actions)
        for slot in results:
            self._steps[slot] += 1
            results[slot] = dataclasses.replace(results[slot], observation=self._observations[(slot, self._steps[slot])])
        return results


def test_the_rollout_scores_near_threshold_states_per_lock_step_and_counts_the_most_similar(byte_policy):
    """Jaccard threshold 0.8, twelve words ``base``. ``at`` adds three (12/15 = 0.8: similar);
    ``below`` drops one and adds two (11/14 = 0.786: a state of its own); ``between`` is similar to
    both (11/13 to base, 12/13 to ``below``) and its visit counts towards ``below``, the closer."""
    from empo2_lite.memory import Novelty

    words = [f"word{letter}" for letter in "abcdefghijkl"]
    base, at = " ".join(words), " ".join(words + ["one", "two", "three"])
    below, between = " ".join(words[:11] + ["four", "five"]), " ".join(words[:11] + ["four"])
    observations = {(0, 1): base, (0, 2): at, (0, 3): base, (0, 4): base,
                    (1, 1): base, (1, 2): below, (1, 3): between, (1, 4): below}
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 8})  # both members read it
    episodes = [EpisodeSpec("find-animal", 0, 0, seed=1), EpisodeSpec("find-animal", 0, 0, seed=2)]
    novelty = Novelty(threshold=0.8)
    first, second = collect_rollouts(byte_policy, _RewordingPool(2, observations), episodes,
                                     RolloutConfig(max_steps=4, demonstrations=0), sampler=sampler,
                                     progress=False)
    pay_novelty([first, second], novelty)
    # Step 1: both reach base, scored against the counts from before the step: 1 and 1 (not 1/2).
    # Step 2: ``at`` joins base's 2 visits (1/3); ``below`` starts a state (1).
    # Step 3: base (3 visits) -> 1/4; ``between`` is similar to base (3) and ``below`` (1) -> 1/5.
    # Step 4: base (4) -> 1/5; ``below`` holds its visit and ``between``'s -> 1/3 (1/2 had
    # ``between`` counted towards base).
    assert [turn.novelty for turn in first.turns] == pytest.approx([1.0, 1 / 3, 1 / 4, 1 / 5])
    assert [turn.novelty for turn in second.turns] == pytest.approx([1.0, 1.0, 1 / 5, 1 / 3])
    assert novelty.distinct_states("find-animal", 0) == 2


@pytest.mark.parametrize("n_envs", [2, 4])
def test_novelty_does_not_depend_on_how_many_waves_play_the_episodes(byte_policy, n_envs):
    """Eight identical episodes of one variation: on 8 environments they play as one wave, on 4 or
    2 as two or four waves one after another. Each step index is scored once for all of them, so
    every episode gets the same novelty whatever ``n_envs`` (scored wave by wave, the second wave of
    four got sums of 0.6 against the first wave's 3: GRPO advantages of +-0.94 from position alone)."""
    from empo2_lite.memory import Novelty

    def novelty_by_episode(size: int) -> list[list[float]]:
        sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 3 * 8})  # one script, all episodes
        specs = [EpisodeSpec("find-animal", 0, 0, seed=index) for index in range(8)]
        with ReplayPool(size, unrecorded="fixed") as pool:
            played = collect_rollouts(byte_policy, pool, specs, RolloutConfig(max_steps=3, demonstrations=0),
                                      sampler=sampler, progress=False)
            pay_novelty(played, Novelty())
        return [[turn.novelty for turn in trajectory.turns] for trajectory in played]

    one_wave = novelty_by_episode(8)
    assert one_wave == [one_wave[0]] * 8 and sum(one_wave[0]) > 0
    assert novelty_by_episode(n_envs) == one_wave

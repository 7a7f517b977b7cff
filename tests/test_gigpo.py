"""GiGPO (``algo/gigpo.py``): golden values on hand-made groups, the anchor-state key, the settings,
the algorithm table's two GiGPO entries, and both trained end to end on replayed transitions."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from empo2_lite import jobs, plots, results
from empo2_lite.algo.advantages import ActionAdvantages, grpo_action_advantages
from empo2_lite.algo.algorithms import ALGORITHMS, algorithm_doing
from empo2_lite.algo.estimators import ESTIMATORS
from empo2_lite.algo.gigpo import (anchor_states, canonical_observation, discounted_returns, gigpo_action_advantages,
                                   gigpo_advantages, step_groups, step_rewards)
from empo2_lite.config import ConfigError, TrainConfig, apply_overrides, preset
from empo2_lite.runs import RunDir
from empo2_lite.trainer import Trainer
from empo2_lite.trajectory import Trajectory, Turn, append_history
from replay_pool import ReplayPool
from scripted import ScriptedSampler

HALLWAY = ("This room is called the hallway. In it, you see:\n\tthe agent\n\ta picture\nYou also see:\n"
           "\tA door to the kitchen (that is open)")
HALLWAY_REORDERED = ("This room is called the hallway. In it, you see:\n\ta picture\n\tthe agent\nYou also see:\n"
                     "\tA door to the kitchen (that is open)")
KITCHEN = "You move to the kitchen."


def episode(rollout_id: int, steps: list[tuple[str, str, int]], start: str = HALLWAY, group_id: int = 0,
            novelty: list[float] | None = None) -> Trajectory:
    """A played find-animal episode from ``start`` (score 0): (action, observation, reward) per step,
    each turn with the history the rollout would have recorded."""
    history, score, turns = start, 0, []
    for step, (action, observation, reward) in enumerate(steps):
        score += reward
        turns.append(Turn("", (), [], [], action, action, action, reward, score, "newline", history=history,
                          novelty=novelty[step] if novelty else 0.0))
        history = append_history(history, action, observation)
    return Trajectory("find-animal", 0, group_id, rollout_id, turns=turns, score=score, end_reason="completed")


def repeated_states_group() -> list[Trajectory]:
    """Three episodes of one variation that meet the same states (see the golden test)."""
    return [
        episode(0, [("look around", HALLWAY_REORDERED, 0), ("go to kitchen", KITCHEN, 0),
                    ("pick up cat", "You pick up the cat.", 8)]),
        episode(1, [("go to kitchen", KITCHEN, 0), ("pick up cat", "You pick up the cat.", 8)], start=HALLWAY_REORDERED),
        episode(2, [("go to kitchen", KITCHEN, 0), ("open fridge", "The fridge is now open.", 4),
                    ("close fridge", "The fridge is now closed.", 0)]),
    ]


def rounded(advantages: list[list[float]]) -> list[list[float]]:
    return [[round(value, 4) for value in steps] for steps in advantages]


def test_golden_values_on_a_group_with_repeated_states():
    """Worked by hand, with gamma = 0.5 and omega = 1 (round numbers; the defaults are the paper's).

    Episode 1: look around (the hallway again, its objects listed in another order), go to kitchen,
    pick up cat (+8). Episode 2: go to kitchen, pick up cat (+8). Episode 3: go to kitchen, open
    fridge (+4), close fridge. Returns 8, 8, 4.

    Anchor states: A = the start (score 0, in the hallway, its description, no transition): episode
    1's steps 0 and 1 (looking changes nothing, and the reordered hallway reads the same), the step 0
    of episodes 2 and 3. B = (score 0, in the kitchen, "You move to the kitchen.", no transition):
    episode 1's step 2, the step 1 of episodes 2 and 3. Episode 3's step 2 (score 4, the fridge open)
    is alone. Share: 7 of 8.

    Discounted returns G_t = r_t + 0.5 G_t+1: episode 1: 2, 4, 8; episode 2: 4, 8; episode 3: 2, 4, 0.
    Step group A holds 2, 4, 4, 2 (mean 3), B holds 8, 8, 4 (mean 20/3); the episode group 8, 8, 4
    (mean 20/3).

    "mean": A_step = -1, +1, +1, -1 in A and 4/3, 4/3, -8/3 in B, 0 alone; A_episode = 4/3, 4/3, -8/3.
    Sums: episode 1: 4/3 - 1, 4/3 + 1, 4/3 + 4/3; episode 2: 4/3 + 1, 8/3; episode 3: -8/3 - 1,
    -8/3 - 8/3, -8/3 + 0.

    "std" (unbiased): A's std is 2/sqrt(3), so A_step = -+sqrt(3)/2; B's and the episode group's std
    is 4/sqrt(3), so 4/3 becomes sqrt(3)/3 and -8/3 becomes -2 sqrt(3)/3. Sums: episode 1:
    sqrt(3)/3 - sqrt(3)/2 = -sqrt(3)/6, 5 sqrt(3)/6, 2 sqrt(3)/3; episode 2: 5 sqrt(3)/6,
    2 sqrt(3)/3; episode 3: -2 sqrt(3)/3 - sqrt(3)/2 = -7 sqrt(3)/6, -4 sqrt(3)/3, -2 sqrt(3)/3.

    What GRPO cannot say: episode 1's look around, a wasted step, is below its group (A_step -1),
    and episode 3's open fridge, taken where the others picked up the cat, is the worst action.
    """
    group = repeated_states_group()
    returns = torch.tensor([8.0, 8.0, 4.0])
    rewards = [[turn.reward for turn in trajectory.turns] for trajectory in group]
    assert [sorted(members) for members in step_groups(group)] == [[(0, 0), (0, 1), (1, 0), (2, 0)],
                                                                   [(0, 2), (1, 1), (2, 1)], [(2, 2)]]
    mean = gigpo_advantages(group, returns, rewards, gamma=0.5, omega=1.0, normalisation="mean")
    third = 1 / 3
    assert rounded(mean) == rounded([[third, 7 * third, 8 * third], [7 * third, 8 * third],
                                     [-11 * third, -16 * third, -8 * third]])
    root3 = math.sqrt(3)
    std = gigpo_advantages(group, returns, rewards, gamma=0.5, omega=1.0, normalisation="std")
    assert rounded(std) == rounded([[-root3 / 6, 5 * root3 / 6, 2 * root3 / 3], [5 * root3 / 6, 2 * root3 / 3],
                                    [-7 * root3 / 6, -4 * root3 / 3, -2 * root3 / 3]])
    assert isinstance(std, ActionAdvantages) and std.diagnostics == {"step_group_share": 7 / 8}


def test_an_action_alone_in_its_step_group_gets_the_episode_advantage_only():
    lone = [episode(0, [("go to kitchen", KITCHEN, 0), ("pick up cat", "You pick up the cat.", 8)])]
    advantages = gigpo_advantages(lone, torch.tensor([8.0]), [[0, 8]], gamma=0.95, omega=1.0, normalisation="std")
    assert advantages == grpo_action_advantages(lone, torch.tensor([8.0]))  # 8 / (1 + 1e-6) at both steps
    assert advantages.diagnostics == {"step_group_share": 0.0}
    other_group = episode(1, [("go to kitchen", KITCHEN, 0), ("pick up cat", "You pick up the cat.", 8)], group_id=1)
    apart = gigpo_advantages([*lone, other_group], torch.tensor([8.0, 8.0]), [[0, 8], [0, 8]], gamma=0.95, omega=1.0,
                             normalisation="mean")
    assert apart == [[8.0, 8.0], [8.0, 8.0]] and apart.diagnostics == {"step_group_share": 0.0}  # groups never mix


@pytest.mark.parametrize("normalisation", ["std", "mean"])
def test_an_all_equal_group_has_no_advantage_at_either_level(normalisation):
    same = [episode(i, [("go to kitchen", KITCHEN, 0), ("pick up cat", "You pick up the cat.", 8)]) for i in range(3)]
    advantages = gigpo_advantages(same, torch.tensor([8.0] * 3), [[0, 8]] * 3, gamma=0.95, omega=1.0,
                                  normalisation=normalisation)
    assert advantages == [[0.0, 0.0]] * 3 and advantages.diagnostics == {"step_group_share": 1.0}


def test_without_the_step_term_gigpo_is_grpo():
    group = repeated_states_group()
    returns = torch.tensor([8.0, 8.0, 4.0])
    rewards = [[turn.reward for turn in trajectory.turns] for trajectory in group]
    no_step = gigpo_advantages(group, returns, rewards, gamma=0.95, omega=0.0, normalisation="std")
    assert no_step == grpo_action_advantages(group, returns)


def test_the_anchor_key_names_the_state_not_the_path_nor_only_the_last_observation():
    def last_key(steps: list[tuple[str, str, int]]):
        return anchor_states(episode(0, [*steps, ("wait", "You decide to wait.", 0)]))[-1]

    kitchen = [("go to kitchen", KITCHEN, 0)]
    walked = [("go to kitchen", KITCHEN, 0), ("go to hallway", "You move to the hallway.", 0), *kitchen]
    looked = [("inventory", "In your inventory, you see:\n\tan orange", 0), *kitchen]
    assert last_key(walked) == last_key(kitchen) == last_key(looked)  # walking back and forth, looking: one state
    opened = [("open door to bedroom", "The door is now open.", 0), *kitchen]
    assert last_key(opened) != last_key(kitchen)  # the same last observation after another change
    other_door = [("open door to studio", "The door is now open.", 0), *kitchen]
    assert last_key(opened) != last_key(other_door)  # the action says which door
    bedroom_first = [("open door to bedroom", "The door is now open.", 0), ("open door to kitchen", "The door is now open.", 0)]
    assert last_key(bedroom_first) == last_key(bedroom_first[::-1])  # two changes in either order: one state
    blocked = [("go to hallway", "The door is not open.", 0), *kitchen]
    assert last_key(blocked) == last_key(kitchen)  # a move that failed leaves the agent where it was
    hallway = [*walked, ("go to hallway", "You move to the hallway.", 0)]
    assert last_key(hallway) != last_key(kitchen) and last_key(hallway)[1] == "hallway"
    scored = [("go to kitchen", KITCHEN, 5)]
    assert last_key(scored) != last_key(kitchen)  # the score parts states whose text is alike
    assert canonical_observation(HALLWAY) == canonical_observation(HALLWAY_REORDERED)
    assert canonical_observation("a red box\na blue ball") != canonical_observation("a red ball\na blue box")


def test_step_returns_are_discounted_and_stop_at_the_episode_end():
    assert discounted_returns([1.0, 2.0, 4.0], 0.5) == [1 + 1 + 1.0, 2 + 2.0, 4.0]
    assert discounted_returns([], 0.95) == []


@pytest.mark.parametrize("aggregation, novelty_term", [("sum", 1.5), ("mean", 0.75)])
def test_step_rewards_carry_the_novelty_when_switched_on_and_add_up_to_the_return(aggregation, novelty_term):
    config = apply_overrides(TrainConfig(), {"reward_scale": 0.5, "memory.novelty_coef": 2.0,
                                             "memory.novelty_aggregation": aggregation,
                                             "update.gigpo_step_novelty": True})
    played = episode(0, [("go to kitchen", KITCHEN, 10), ("look around", "This room is called the kitchen.", 0)],
                     novelty=[1.0, 0.5])
    rewards = step_rewards(played, config)
    assert sum(rewards) == pytest.approx(0.5 * (played.score - played.start_score) + 2.0 * novelty_term)
    assert rewards[1] == pytest.approx(2.0 * 0.5 * (1.0 if aggregation == "sum" else 0.5))
    off = apply_overrides(config, {"update.gigpo_step_novelty": False})
    assert step_rewards(played, off) == [5.0, 0.0]  # the default: the score changes alone


def test_by_default_novelty_does_not_split_identical_actions_at_the_step_level():
    """Two episodes take the same action from the same state and reach the same kitchen; the first
    was paid 1 for it, the second 1/2. With step novelty their step returns differ only by novelty
    and "std" turns 0.5 into +-0.71; by default (novelty at the episode level) both get the same
    step advantage. ``step_novelty_only_share`` counts such step groups either way."""
    pair = [episode(0, [("go to kitchen", KITCHEN, 0)], novelty=[1.0]),
            episode(1, [("go to kitchen", KITCHEN, 0)], novelty=[0.5])]
    returns = torch.tensor([1.0, 0.5])
    with_novelty = apply_overrides(TrainConfig(algo="empo2+gigpo"), {"algo": "empo2+gigpo",
                                                                    "update.gigpo_step_novelty": True})
    noisy = gigpo_action_advantages(pair, returns, with_novelty)
    # episode term +-0.7071 (GRPO) plus a step term of +-0.7071 from novelty alone
    assert rounded(noisy) == [[1.4142], [-1.4142]]
    assert noisy.diagnostics["step_novelty_only_share"] == 1.0
    default = gigpo_action_advantages(pair, returns, TrainConfig(algo="empo2+gigpo"))
    assert TrainConfig().update.gigpo_step_novelty is False
    assert rounded(default) == [[0.7071], [-0.7071]]  # the episode term alone
    assert default.diagnostics["step_novelty_only_share"] == 1.0  # they differ only by novelty
    scored = [episode(0, [("go to kitchen", KITCHEN, 0), ("pick up cat", "You pick up the cat.", 8)], novelty=[1.0, 1.0]),
              episode(1, [("go to kitchen", KITCHEN, 0), ("look around", "This room is called the kitchen.", 0)],
                      novelty=[0.5, 1.0])]
    assert gigpo_action_advantages(scored, torch.tensor([10.0, 1.5]), with_novelty).diagnostics[
        "step_novelty_only_share"] == 0.0  # the first step's returns differ by the cat's 8 points


def test_the_estimator_reads_its_settings_from_the_config():
    group = repeated_states_group()
    returns = torch.tensor([8.0, 8.0, 4.0])
    config = apply_overrides(TrainConfig(algo="gigpo"), {"algo": "gigpo", "update.gigpo_gamma": 0.5,
                                                         "update.gigpo_normalisation": "mean"})
    assert ESTIMATORS["gigpo"] is gigpo_action_advantages and ESTIMATORS["grpo"] is grpo_action_advantages
    assert rounded(gigpo_action_advantages(group, returns, config))[2] == rounded([[-11 / 3, -16 / 3, -8 / 3]])[0]
    halved = apply_overrides(config, {"update.gigpo_omega": 0.5})
    assert gigpo_action_advantages(group, returns, halved)[2][2] == pytest.approx(-8 / 3)  # alone: episode term only


def test_the_paper_settings_are_the_defaults_and_bad_ones_are_refused_in_one_line():
    update = TrainConfig().update
    assert (update.gigpo_gamma, update.gigpo_omega, update.gigpo_normalisation) == (0.95, 1.0, "std")
    for setting, message in (("update.gigpo_gamma=1.5", "update.gigpo_gamma: 1.5 is not allowed; it must be a number in [0, 1]"),
                             ("update.gigpo_omega=-1", "update.gigpo_omega: -1.0 is not allowed; it must be a number >= 0"),
                             ("update.gigpo_normalisation=none",
                              "update.gigpo_normalisation: 'none' is not allowed; choose one of: std, mean")):
        key, _, value = setting.partition("=")
        with pytest.raises(ConfigError) as error:
            apply_overrides(preset("cpu-smoke"), {"algo": "gigpo", key: value}).validate()
        assert str(error.value) == message


def test_two_table_entries_share_switches_and_differ_in_their_estimator():
    gigpo, both = ALGORITHMS["gigpo"], ALGORITHMS["empo2+gigpo"]
    assert (gigpo.switches, gigpo.advantage) == (ALGORITHMS["grpo"].switches, "gigpo")
    assert (both.switches, both.advantage) == (ALGORITHMS["empo2"].switches, "gigpo")
    assert algorithm_doing(False, False, False).name == "grpo"  # files written before GiGPO: GRPO's estimator
    assert algorithm_doing(True, True, True, advantage="gigpo").name == "empo2+gigpo"
    both_config, empo2 = (apply_overrides(preset("cpu-demo"), {"algo": name}) for name in ("empo2+gigpo", "empo2"))
    assert (both_config.p, both_config.write_tips, both_config.memory.novelty_coef) == (empo2.p, True, 1.0) == (0.25, True, 1.0)
    with pytest.raises(ConfigError, match=r"^p: 0.25 is not allowed with algo 'gigpo' \(no memory rollouts\); "
                                          r"use algo 'empo2\+gigpo'$"):
        apply_overrides(preset("cpu-smoke"), {"algo": "gigpo", "p": 0.25}).validate()


def test_gigpo_and_empo2_gigpo_train_end_to_end_on_replayed_transitions(tmp_path, monkeypatch, tiny_smollm2_model):
    """Every action is "look around", so every step of a group starts from one state (share 1) and
    every score change is 0: GiGPO, like GRPO, has no gradient here. With EMPO²'s novelty reward
    (1, 1/3, 1/5, 1/7 over the steps, the same in both episodes of a group) the returns are still
    equal (GRPO's episode term, all EMPO² has, is 0); by default novelty stays out of the step
    returns, so empo2+gigpo has no gradient either, and every step group would differ by novelty
    alone (share 1). With ``update.gigpo_step_novelty`` the step returns differ and it learns."""
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    rows = {}
    for name, algo, step_novelty in (("gigpo", "gigpo", False), ("empo2+gigpo", "empo2+gigpo", False),
                                     ("step-novelty", "empo2+gigpo", True)):
        config = apply_overrides(preset("cpu-smoke"), {"algo": algo, "iterations": 1, "name": name, "seed": 3,
                                                       "policy.model": str(tiny_smollm2_model),
                                                       "update.mask_granularity": "off",
                                                       "update.gigpo_step_novelty": step_novelty})
        trainer = Trainer(config, RunDir.named(config.name))
        trainer.sampler = ScriptedSampler(trainer.policy, {"animal": ["look around"] * 1000})
        [rows[name]] = trainer.train(progress=False, pool=ReplayPool(config.n_envs))
    gigpo, both, step_novelty = rows["gigpo"], rows["empo2+gigpo"], rows["step-novelty"]
    assert gigpo["diagnostics/step_group_share"] == both["diagnostics/step_group_share"] == 1.0
    assert gigpo["diagnostics/equal_return_groups"] == both["diagnostics/equal_return_groups"] == 1.0
    assert gigpo["losses/loss"] == 0.0 and gigpo["losses/grad_norm"] == 0.0
    assert both["losses/loss"] == 0.0 and both["losses/grad_norm"] == 0.0
    assert step_novelty["losses/loss"] != 0.0 and step_novelty["losses/grad_norm"] > 0
    assert gigpo["diagnostics/step_novelty_only_share"] == 0.0
    assert both["diagnostics/step_novelty_only_share"] == step_novelty["diagnostics/step_novelty_only_share"] == 1.0
    assert gigpo["memory/entries"] == 0 and gigpo["charts/novelty_mean"] == 0
    assert both["memory/entries"] > 0 and both["charts/novelty_mean"] > 0
    stored = json.loads((tmp_path / "empo2+gigpo" / "config.json").read_text())
    assert stored["algo"] == "empo2+gigpo" and stored["update"]["gigpo_gamma"] == 0.95
    assert RunDir.named("gigpo").config().algo == "gigpo"
    metrics = results.load_metrics(results.find_runs(tmp_path))
    assert "diagnostics/step_group_share" in jobs.CURVE_METRICS  # `plot` draws it where runs logged it
    curve = plots.learning_curves(metrics, metric="diagnostics/step_group_share").axes[0]
    assert [line.get_label() for line in curve.get_lines()] == ["GiGPO (1 run)", "EMPO² + GiGPO (2 runs)"]
    grpo_row = {key: value for key, value in gigpo.items() if key != "diagnostics/step_group_share"}
    curve = plots.learning_curves(pd.concat([metrics, pd.DataFrame([{**grpo_row, "run": "grpo", "algo": "grpo"}])]),
                                  metric="diagnostics/step_group_share").axes[0]
    assert len(curve.get_lines()) == 2  # a run that did not log the share (GRPO) gets no line

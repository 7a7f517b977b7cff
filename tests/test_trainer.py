"""The training loop: its logic on replayed ScienceWorld episodes (no Java, seconds), one
cpu-smoke run end to end on real ScienceWorld, and the resume of a run killed mid-iteration.

The replayed runs script every action ("look around", recorded for each of find-animal's training
variations by ``tests/record_transitions.py``) and train the tiny model with SmolLM2's tokenizer
(prompts a quarter of the byte tokenizer's length), which still writes the tips.
"""

from __future__ import annotations

import collections
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from empo2_lite.config import ConfigError, MemoryConfig, TrainConfig, apply_overrides, preset
from empo2_lite.memory import TipMemory
from empo2_lite.runs import RunDir
from empo2_lite.summary import summarize
from empo2_lite.algo.advantages import grpo_advantages
from empo2_lite.iteration import aggregate_novelty, equal_return_group_share
from empo2_lite.trainer import Trainer
from empo2_lite.trajectory import Trajectory, Turn
from replay_pool import ReplayPool
from scripted import ScriptedSampler


def train_on_replays(config: TrainConfig, model: Path) -> list[dict]:
    """Train ``model`` with ``config`` (a find-animal run of at most 4 steps an episode) on recorded
    transitions, every action "look around", in the run folder named after the config."""
    config = apply_overrides(config, {"policy.model": str(model)})
    trainer = Trainer(config, RunDir.named(config.name))
    trainer.sampler = ScriptedSampler(trainer.policy, {"animal": ["look around"] * 1000})
    return trainer.train(progress=False, pool=ReplayPool(config.n_envs))


def assert_numbers_are_finite(metrics: dict) -> None:
    """Every metric but the mode is a finite int or float (a NaN passes a range check)."""
    for key, value in metrics.items():
        if key != "mode":
            assert isinstance(value, (int, float)) and math.isfinite(value), (key, value)


def end_reasons(metrics: dict) -> dict:
    return {key: value for key, value in metrics.items() if key.startswith("episodes/end_")}


def test_an_iteration_logs_every_metric_and_saves_checkpoint_memory_and_tensorboard(tmp_path, monkeypatch,
                                                                                   tiny_smollm2_model):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"iterations": 1, "name": "replayed", "p": 1.0, "q": 1.0})
    [metrics] = train_on_replays(config, tiny_smollm2_model)
    assert metrics["mode"] == "off_policy" and metrics["charts/env_failures"] == 0
    assert metrics["charts/steps_mean"] == 4 and metrics["tokens/update"] > 0
    for key in ("charts/return_mean", "charts/success_rate", "charts/novelty_mean", "losses/loss", "losses/clip_fraction",
                "losses/masked_fraction", "losses/entropy", "losses/grad_norm", "time/rollout", "time/tips",
                "time/memory", "time/update", "memory/peak_rss_mb", "memory/slot_entries", "memory/filled_slot_share",
                "memory/tip_block_share", "memory/tips_dropped_budget", "memory/tips_skipped_context"):
        assert key in metrics
    assert metrics["memory/tips_truncated"] == 4  # the random model writes on to the 12-token limit
    assert_numbers_are_finite(metrics)
    # Every action is "look around" (3 tokens), so the episodes are fixed: both variations score 8,
    # every episode runs its 4 steps, and the novelty of the repeated observation is 1, 1/3, 1/5,
    # 1/7 (the group's two episodes are counted together, score_step).
    assert {key: metrics[key] for key in ("charts/return_mean", "charts/return_std", "charts/return_max",
                                          "charts/success_rate", "charts/tips_shown_mean",
                                          "diagnostics/response_tokens_mean", "tokens/generated")} == {
        "charts/return_mean": 8, "charts/return_std": 0.0, "charts/return_max": 8, "charts/success_rate": 0.0,
        "charts/tips_shown_mean": 0, "diagnostics/response_tokens_mean": 3, "tokens/generated": 4 * 4 * 3}
    assert end_reasons(metrics) == {"episodes/end_max_steps": 4}
    assert metrics["charts/novelty_mean"] == pytest.approx((1 + 1 / 3 + 1 / 5 + 1 / 7) / 4)
    assert metrics["memory/entries"] == 4 * 4  # one tip entry per step
    run = RunDir.named("replayed")
    assert run.latest_checkpoint().name == "iter-000001"
    assert len(TipMemory.load(run.memory_path)) == metrics["memory/entries"] > 0
    assert any(name.startswith("events.out") for name in os.listdir(run.path / "tensorboard"))


def test_grpo_has_no_novelty_and_no_memory_while_empo2_of_the_same_seed_has_both(tmp_path, monkeypatch,
                                                                                 tiny_smollm2_model):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    rows = {}
    for algo in ("grpo", "empo2"):
        config = apply_overrides(preset("cpu-smoke"), {"algo": algo, "iterations": 1, "name": algo, "seed": 3})
        [rows[algo]] = train_on_replays(config, tiny_smollm2_model)
    grpo, empo2 = rows["grpo"], rows["empo2"]
    assert grpo["charts/novelty_mean"] == 0 and grpo["memory/entries"] == 0 and grpo["time/tips"] == 0
    assert not (tmp_path / "grpo" / "memory.jsonl").exists()
    assert json.loads((tmp_path / "grpo" / "config.json").read_text())["p"] == 0.0
    assert empo2["charts/novelty_mean"] > 0 and empo2["memory/entries"] > 0
    for row in rows.values():  # every episode is counted under its end reason
        ends = {key: value for key, value in row.items() if key.startswith("episodes/end_")}
        assert sum(ends.values()) == 4 and ends
        assert row["update/optimizer_steps"] >= 1 and row["tokens/prefilled"] > row["tokens/generated"] > 0
        assert 0 <= row["diagnostics/equal_return_groups"] <= 1 and row["diagnostics/response_tokens_mean"] > 0
        assert {"diagnostics/wrong_focus_share", "diagnostics/length_limit_share"} <= set(row)
    for row in rows.values():  # scripted "look around" on seed 3's variations: scores 8 and 17
        assert_numbers_are_finite(row)
        assert (row["charts/return_mean"], row["charts/return_std"], row["charts/return_max"]) == (12.5, 4.5, 17)
        assert end_reasons(row) == {"episodes/end_max_steps": 4} and row["tokens/generated"] == 48
    assert empo2["charts/novelty_mean"] == pytest.approx((1 + 1 / 3 + 1 / 5 + 1 / 7) / 4)


def test_equal_return_groups_are_those_that_carry_no_gradient():
    returns = torch.tensor([1.0, 1.0, 2.0, 3.0, -5.0, -5.0, -5.0, 7.0])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 2, 3])  # a lone episode (group 3) keeps its return as advantage
    assert equal_return_group_share(returns, groups) == 2 / 4
    advantages = grpo_advantages(returns, groups)
    assert [bool((advantages[groups == g] == 0).all()) for g in range(4)] == [True, False, True, False]
    assert equal_return_group_share(torch.tensor([]), torch.tensor([], dtype=torch.long)) == 0.0


@pytest.mark.jvm
@pytest.mark.slow
def test_one_cpu_smoke_iteration_end_to_end(tmp_path, monkeypatch):
    """Real ScienceWorld and the model's own actions: the LoRA weights change, and the run is
    checkpointed, remembered and evaluated (each metric is checked on replays above). The task has
    4 test variations (find-animal has 20), so the evaluation is one wave of episodes."""
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"iterations": 1, "name": "e2e", "p": 1.0, "q": 1.0, "eval_every": 1,
                                                   "task": "identify-life-stages-2"})
    trainer = Trainer(config, RunDir.named("e2e"))
    before = {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters() if p.requires_grad}
    [metrics] = trainer.train(progress=False)
    assert metrics["mode"] == "off_policy" and metrics["charts/env_failures"] == 0
    assert metrics["charts/steps_mean"] == 4 and metrics["tokens/update"] > 0
    after = dict(trainer.policy.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before)
    run = RunDir.named("e2e")
    assert run.latest_checkpoint().name == "iter-000001"
    assert len(TipMemory.load(run.memory_path)) == metrics["memory/entries"] > 0
    [evaluation] = run.read_evals()  # periodic: on the dev split, never on test
    assert evaluation["split"] == "dev" and evaluation["episodes"] == len(trainer.task.dev_variations)


def train_freely(config: TrainConfig, model: Path, iterations: int | None = None, resume: bool = False) -> list[dict]:
    """Train ``model`` on identify-life-stages-2's recorded starts with the policy's own actions
    (every unrecorded action answered with a fixed observation): sampling, evaluation and tips all
    draw from the model, so every random stream is exercised."""
    config = apply_overrides(config, {"policy.model": str(model), "task": "identify-life-stages-2",
                                      **({"iterations": iterations} if iterations else {})})
    trainer = Trainer(config, RunDir.named(config.name), resume=resume)
    return trainer.train(progress=False, pool=ReplayPool(config.n_envs, unrecorded="fixed"))


def training_fields(metrics: list[dict]) -> list[dict]:
    """The metrics a run's randomness and arithmetic decide: all but times and peak process memory."""
    return [{key: value for key, value in row.items() if not key.startswith(("time/", "memory/peak_"))}
            for row in metrics]


def test_evaluating_does_not_change_training(tmp_path, monkeypatch, tiny_smollm2_model):
    """Two runs that differ only in ``eval_every`` train on the same tokens: every evaluation draws
    from seeds of its own, never from the training rollouts' streams."""
    from empo2_lite import evaluation

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    played = []
    real = evaluation.collect_rollouts
    monkeypatch.setattr(evaluation, "collect_rollouts",
                        lambda policy, pool, specs, *args, **kwargs: played.extend(s.variation for s in specs)
                        or real(policy, pool, specs, *args, **kwargs))
    base = apply_overrides(preset("cpu-smoke"), {"iterations": 3, "p": 0.5, "seed": 9, "rollout.temperature": 1.0})
    quiet = train_freely(apply_overrides(base, {"name": "quiet", "eval_every": 0}), tiny_smollm2_model)
    assert played == []
    measured = train_freely(apply_overrides(base, {"name": "measured", "eval_every": 1}), tiny_smollm2_model)
    assert training_fields(quiet) == training_fields(measured)
    assert len({row["mode"] for row in quiet}) == 3 and quiet[0]["tokens/generated"] > 0  # every mode was played
    assert sorted(set(played)) == [4, 5] and len(played) == 6  # dev only: 3 evaluations x 2 dev variations
    rows = RunDir.named("measured").read_evals()
    assert [(row["iteration"], row["split"], row["kind"]) for row in rows] == [(1, "dev", "periodic"),
                                                                               (2, "dev", "periodic"),
                                                                               (3, "dev", "periodic")]


@pytest.mark.parametrize("engine, iterations, eval_every", [("slots", 3, 1), ("kv-cache", 2, 0), ("rereading", 2, 0)])
def test_a_resumed_run_matches_an_uninterrupted_one(tmp_path, monkeypatch, tiny_smollm2_model, engine, iterations,
                                                    eval_every):
    """With every decoding engine (the default one over three iterations, memory ones among them,
    with an evaluation after each)."""
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    base = apply_overrides(preset("cpu-smoke"), {"iterations": iterations, "p": 0.5, "seed": 9,
                                                 "eval_every": eval_every, "rollout.engine": engine})
    whole = train_freely(apply_overrides(base, {"name": "whole"}), tiny_smollm2_model)
    first = train_freely(apply_overrides(base, {"name": "parts"}), tiny_smollm2_model, iterations=1)
    rest = train_freely(apply_overrides(base, {"name": "parts"}), tiny_smollm2_model, resume=True)
    assert training_fields(first + rest) == training_fields(whole)
    assert RunDir.named("parts").read_evals() == RunDir.named("whole").read_evals()
    assert iterations < 3 or {row["mode"] for row in whole} != {"plain"}


def test_memory_iterations_draw_variations_whose_slot_holds_tips(tmp_path, monkeypatch, tiny_smollm2_model):
    """With p = 1 and one of 4 variations per iteration, every memory iteration after the first
    finds tips in its slot (``memory_draw="filled"``); a uniform draw leaves most of them empty."""
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    shares = {}
    for draw in ("filled", "uniform"):
        config = apply_overrides(preset("cpu-smoke"), {
            "name": draw, "iterations": 6, "p": 1.0, "seed": 2, "memory_draw": draw, "variations_per_iteration": 1,
            "group_size": 2, "n_envs": 2, "policy.model": str(tiny_smollm2_model), "task": "identify-life-stages-2",
            "update.learning_rate": 1e-6})
        trainer = Trainer(config, RunDir.named(draw))
        trainer.sampler = ScriptedSampler(trainer.policy, {"life stages": ["look around"] * 1000})
        metrics = trainer.train(progress=False, pool=ReplayPool(config.n_envs))
        assert metrics[0]["memory/slot_entries"] == 0 and metrics[0]["memory/filled_slot_share"] == 0  # reported apart
        later = metrics[1:]
        shares[draw] = statistics.mean(row["memory/filled_slot_share"] for row in later)
        assert all(row["mode"] != "plain" for row in later)
    assert shares["filled"] == 1.0 >= 0.9
    assert shares["uniform"] < 0.9  # the problem the filled draw solves


def trainer_state(trainer: Trainer) -> dict:
    """Copies of everything a checkpoint must carry over: adapter weights, AdamW moments and
    steps, both generators' states, the novelty counts and the iteration."""
    import copy

    from peft import get_peft_model_state_dict

    return {"adapter": {name: tensor.detach().clone()
                        for name, tensor in get_peft_model_state_dict(trainer.policy.model).items()},
            "optimizer": copy.deepcopy(trainer.optimizer.state_dict()),
            "python_rng": trainer.rng.getstate(), "torch_rng": torch.get_rng_state().clone(),
            "novelty": trainer.novelty.to_json(), "iteration": trainer.iteration}


def test_a_resume_restores_weights_optimizer_generators_and_novelty(tmp_path, monkeypatch, tiny_smollm2_model):
    """A trainer made with resume=True holds exactly the state saved at the checkpoint (the
    comparison of metrics in the test above could miss a piece that changes them only later)."""
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    saved = []
    real_save = Trainer.save_checkpoint

    def save_and_remember(trainer):
        torch.rand(11)  # the scripted replay draws nothing from torch's generator: move it off the seed
        real_save(trainer)
        saved.append(trainer_state(trainer))

    monkeypatch.setattr(Trainer, "save_checkpoint", save_and_remember)
    config = apply_overrides(preset("cpu-smoke"), {"iterations": 1, "name": "resumed", "p": 1.0, "q": 1.0, "seed": 5,
                                                   "policy.model": str(tiny_smollm2_model)})
    trainer = Trainer(config, RunDir.named("resumed"))
    trainer.sampler = ScriptedSampler(trainer.policy, {"animal": ["look around"] * 1000})
    trainer.train(progress=False, pool=ReplayPool(config.n_envs))
    [at_save] = saved
    torch.rand(3)  # whatever ran in between must not matter
    resumed = trainer_state(Trainer(apply_overrides(config, {"iterations": 2}), RunDir.named("resumed"), resume=True))
    fresh = trainer_state(Trainer(apply_overrides(config, {"name": "fresh"}), RunDir.named("fresh")))

    assert resumed["iteration"] == at_save["iteration"] == 1
    assert resumed["adapter"].keys() == at_save["adapter"].keys()
    assert all(torch.equal(resumed["adapter"][name], at_save["adapter"][name]) for name in at_save["adapter"])
    assert not all(torch.equal(fresh["adapter"][name], at_save["adapter"][name]) for name in at_save["adapter"])
    moments = at_save["optimizer"]["state"]
    assert moments and resumed["optimizer"]["state"].keys() == moments.keys()
    for index, state in moments.items():
        assert {"exp_avg", "exp_avg_sq", "step"} <= state.keys()
        for key, value in state.items():
            assert torch.equal(resumed["optimizer"]["state"][index][key], value), (index, key)
    assert resumed["optimizer"]["param_groups"] == at_save["optimizer"]["param_groups"]
    assert resumed["python_rng"] == at_save["python_rng"] != fresh["python_rng"]
    assert torch.equal(resumed["torch_rng"], at_save["torch_rng"])
    assert not torch.equal(fresh["torch_rng"], at_save["torch_rng"])
    assert resumed["novelty"] == at_save["novelty"] != fresh["novelty"]
    assert at_save["novelty"]["slots"]  # counts to restore


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "empo2_lite", "train", "--preset", "cpu-smoke", *args]


@pytest.mark.jvm
@pytest.mark.slow
def test_a_run_killed_mid_iteration_resumes_with_memory_intact(tmp_path, monkeypatch, tiny_smollm2_model):
    env = {**os.environ, "EMPO2_RUNS": str(tmp_path)}
    killed = subprocess.Popen(train_command("--name", "killed", "--iterations", "2", "--set", "p=1.0", "--set", "seed=1"),
                              env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = RunDir(tmp_path / "killed")
    deadline = time.monotonic() + 300
    while run.latest_checkpoint() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # well inside the second iteration's rollouts
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert run.latest_checkpoint().name == "iter-000001"
    entries_at_kill = len(TipMemory.load(run.memory_path))

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    from empo2_lite.__main__ import main

    assert main(["train", "--resume", "killed"]) == 0  # in process, on JVMs as the killed one
    metrics = run.read_metrics()
    assert [m["iteration"] for m in metrics] == [0, 1]
    # The modes come from the trainer's RNG alone, so an uninterrupted run of the same seed on
    # replayed episodes draws what this one must have drawn (seed 1: on-policy, then off-policy).
    whole_config = apply_overrides(preset("cpu-smoke"), {"name": "whole", "iterations": 2, "p": 1.0, "seed": 1})
    whole = train_on_replays(whole_config, tiny_smollm2_model)
    assert [m["mode"] for m in metrics] == [m["mode"] for m in whole]  # RNG state restored
    assert len({m["mode"] for m in whole}) == 2  # so a fresh RNG would have drawn the first mode again
    assert len(TipMemory.load(run.memory_path)) == metrics[-1]["memory/entries"] >= entries_at_kill > 0
    written_by = [json.loads(line)["iteration"] for line in run.memory_path.read_text().splitlines()]
    assert sorted(set(written_by)) == [0, 1] and written_by == sorted(written_by)  # no duplicate iteration 1
    assert run.latest_checkpoint().name == "iter-000002"


def test_the_novelty_term_is_the_sum_or_the_mean_of_the_steps():
    trajectory = Trajectory("find-animal", 0, 0, 0, turns=[_turn(novelty=value) for value in (1.0, 0.5, 0.0, 0.5)])
    assert aggregate_novelty(trajectory, "sum") == 2.0
    assert aggregate_novelty(trajectory, "mean") == 0.5
    assert aggregate_novelty(Trajectory("find-animal", 0, 0, 1), "mean") == 0.0
    with pytest.raises(ConfigError, match="memory.novelty_aggregation: 'max' is not allowed; choose one of: sum, mean"):
        MemoryConfig(novelty_aggregation="max").validate()


def charts_as_the_trainer_first_computed_them(trajectories) -> dict:
    """The reference: the trainer's own formulas before the statistics moved to summary.py."""
    played = [t for t in trajectories if t.end_reason != "env_failure"]
    scores = [t.score for t in played] or [0]
    end_reasons = collections.Counter(t.end_reason for t in trajectories)
    return {
        "charts/return_mean": statistics.mean(scores),
        "charts/return_std": statistics.pstdev(scores),
        "charts/return_max": max(scores),
        "charts/success_rate": sum(t.success for t in played) / max(len(played), 1),
        "charts/success_official_rate": sum(t.final_info["success_official"] for t in played) / max(len(played), 1),
        "charts/novelty_mean": statistics.mean([turn.novelty for t in played for turn in t.turns] or [0.0]),
        "charts/steps_mean": statistics.mean([len(t.turns) for t in played] or [0]),
        "charts/tips_shown_mean": statistics.mean([len(turn.tips) for t in played for turn in t.turns] or [0]),
        "charts/env_failures": len(trajectories) - len(played),
        **{f"episodes/end_{reason}": count for reason, count in sorted(end_reasons.items())},
    }


def test_chart_metrics_from_the_shared_summary_are_the_trainers_own_numbers():
    from test_summary import episode, turn

    from empo2_lite.iteration import chart_metrics

    batches = {
        "mixed": [episode(0, 100, turns=[turn(2, 1.0, 3, 50)]), episode(0, 40, "max_steps", [turn(0, 0.5, 5, 80)] * 2),
                  episode(1, -100, "failed", [turn(1, 0.25, 4, 60)]), episode(1, 7, "env_failure")],
        "integral means": [episode(0, 20, turns=[turn(1, 1.0, 1, 1)]), episode(1, 40, turns=[turn(3, 0.5, 1, 1)])],
        "every episode lost": [episode(0, 0, "env_failure"), episode(1, 0, "env_failure")],
        "nothing played": [],
    }
    for name, batch in batches.items():  # json text: the same numbers and the same int/float types
        charts = chart_metrics(summarize(batch))
        diagnostics = {key: charts.pop(key) for key in list(charts) if key.startswith("diagnostics/")}
        expected = charts_as_the_trainer_first_computed_them(batch)
        scienceworld = ["diagnostics/wrong_focus_share"] if batch else []  # an empty batch names no environment
        if not batch:
            del expected["charts/success_official_rate"]
        assert json.dumps(charts, sort_keys=True) == json.dumps(expected, sort_keys=True), name  # extras come last
        assert sorted(diagnostics) == ["diagnostics/actions_as_written", "diagnostics/length_limit_share",
                                       "diagnostics/response_tokens_mean", *scienceworld], name  # values: test_summary.py


def _turn(novelty: float = 0.0) -> Turn:
    return Turn(user_message="", tips=(), response_ids=[1], logprobs=[0.0], response_text="look around\n",
                raw_action="look around", action="look around", reward=0, score=0, finish="newline", novelty=novelty)


def test_the_lora_initialisation_follows_the_seed_not_what_ran_before(tiny_smollm2_model, tmp_path):
    """Two trainers of the same seed draw the same adapter even when other code used torch's
    generator in between; another seed draws another one."""
    def lora_a(seed: int, name: str):
        torch.rand(7)  # whatever ran before
        config = apply_overrides(preset("cpu-smoke"), {"policy.model": str(tiny_smollm2_model), "seed": seed,
                                                       "name": name})
        trainer = Trainer(config, RunDir(tmp_path / name))
        return [p.detach().clone() for n, p in trainer.policy.model.named_parameters() if "lora_A" in n]

    first, again, other = lora_a(1, "a"), lora_a(1, "b"), lora_a(2, "c")
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert not all(torch.equal(x, y) for x, y in zip(first, other))


def test_the_sampler_is_told_of_every_optimiser_step(tmp_path, monkeypatch, tiny_smollm2_model):
    """The trainer keeps one sampler for its rollouts and tells it after each optimiser step that
    the weights changed (where merged weights or an inference engine's adapter would be refreshed)."""
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"name": "told", "iterations": 2, "policy.model": str(tiny_smollm2_model),
                                                   "update.mini_batch_actions": 3})
    trainer = Trainer(config, RunDir.named("told"))
    sampler = trainer.sampler = ScriptedSampler(trainer.policy, {"animal": ["look around"] * 1000})
    told = []
    for _ in range(config.iterations):
        before = sampler.weight_updates
        metrics = trainer.run_iteration(ReplayPool(config.n_envs))
        told.append((sampler.weight_updates - before, metrics["update/optimizer_steps"]))
    assert all(count == steps > 1 for count, steps in told), told

"""Evaluation and the frozen-weight memory loop (OOD adaptation, memory-only baseline).

The final evaluation's settings are checked without Java; the rest plays real ScienceWorld
episodes. The statistics are tested in test_summary.py."""

from __future__ import annotations

import contextlib
import json
import math
from types import SimpleNamespace

import pytest
import torch

from empo2_lite import evaluation
from empo2_lite.config import ConfigError, MemoryConfig, RolloutConfig, apply_overrides, preset
from empo2_lite.env import pool as pool_module
from empo2_lite.env.scienceworld import pool as scienceworld_pool
from empo2_lite.summary import summarize
from empo2_lite.env.scienceworld.tasks import OOD_PAIRS
from empo2_lite.tasks import get_task
from replay_pool import ReplayPool
from scripted import ScriptedSampler

TASK = get_task("identify-life-stages-2")  # 4 test variations: 6..9
FAST = RolloutConfig(max_steps=2, max_new_tokens=6, demonstrations=0)


@pytest.fixture()
def pool():
    """Recorded ScienceWorld transitions (no Java): the spy below scripts every action."""
    return ReplayPool(4)


@pytest.fixture()
def recorded_calls(monkeypatch):
    """Every collect_rollouts call of the evaluation module: its specs and its retrieve hook.
    Each episode answers "look around" at every step, as recorded for the replay pool."""
    calls = []
    real = evaluation.collect_rollouts

    def spy(policy, pool, specs, config=None, retrieve=None, **kwargs):
        calls.append({"variations": [s.variation for s in specs], "retrieve": retrieve, "temperature": config.temperature})
        sampler = ScriptedSampler(policy, {"life stages": ["look around"] * len(specs) * config.max_steps})
        return real(policy, pool, specs, config, retrieve=retrieve, sampler=sampler, **kwargs)

    monkeypatch.setattr(evaluation, "collect_rollouts", spy)
    return calls



def test_evaluation_settings_take_what_is_given_and_the_configs_for_the_rest():
    config = apply_overrides(preset("cpu-smoke"), {"eval_episodes_per_variation": 4, "eval_temperature": 0.7})
    assert evaluation.evaluation_settings(config).row() == {"temperature": 0.7, "episodes_per_variation": 4}
    assert evaluation.evaluation_settings(config, 0.0) == evaluation.EvaluationSettings(0.0, 4)  # 0 is greedy, not unset
    assert evaluation.evaluation_settings(config, None, 2) == evaluation.EvaluationSettings(0.7, 2)


def test_jobs_open_the_given_pool_factory_else_the_envpool_of_the_moment(monkeypatch):
    env = preset("cpu-smoke").env
    built = []
    assert pool_module.open_pool(lambda size, config: built.append(("given", size, config)) or "given", 3, env) == "given"
    monkeypatch.setattr(scienceworld_pool, "EnvPool", lambda size, config: built.append(("EnvPool", size, config)) or "default")
    assert pool_module.open_pool(None, 2, env) == "default"  # looked up when called: a test can replace it
    assert built == [("given", 3, env), ("EnvPool", 2, env)]


def test_final_evaluation_uses_the_configs_episodes_per_variation_and_temperature(tmp_path, monkeypatch):
    from empo2_lite.runs import RunDir

    config = apply_overrides(preset("cpu-smoke"), {"eval_episodes_per_variation": 4, "eval_temperature": 0.7,
                                                   "iterations": 1})
    run = RunDir(tmp_path / "run")
    run.start(config)
    calls = []

    def fake_evaluate(policy, pool, task, rollout, *, split, temperature, episodes_per_variation, **kwargs):
        calls.append((task.name, split, temperature, episodes_per_variation))
        return {"task": task.name, "split": split, "episodes": 4 * len(task.test_variations)}

    monkeypatch.setattr(scienceworld_pool, "EnvPool", lambda *args: contextlib.nullcontext())  # no JVM
    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    record = evaluation.final_evaluation(run.path, policy=object())
    assert calls == [(config.task, "test", 0.7, 4)]
    assert record["kind"] == "final" and run.read_evals() == [record] and record["iteration"] == 1


def fake_evaluations(monkeypatch) -> list[str]:
    """Replace the playing of an evaluation by a row saying which split it played; return the splits played."""
    played = []

    def fake_evaluate(policy, pool, task, rollout, *, split, **kwargs):
        played.append(split)
        return {"task": task.name, "split": split, "return_mean": 1.0 if split == "test" else 2.0}

    monkeypatch.setattr(scienceworld_pool, "EnvPool", lambda *args: contextlib.nullcontext())  # no JVM
    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    return played


def started_run(tmp_path, rows: list[dict]):
    from empo2_lite.runs import RunDir

    run = RunDir(tmp_path / "run")
    run.start(apply_overrides(preset("cpu-smoke"), {"iterations": 2}))
    for row in rows:
        run.append_eval(row)
    return run


def test_a_dev_row_is_never_returned_as_a_final_test_result(tmp_path, monkeypatch):
    played = fake_evaluations(monkeypatch)
    dev_row = {"iteration": 2, "kind": "periodic", "split": "dev", "temperature": 0.4, "episodes_per_variation": 1,
               "return_mean": 50.0}
    run = started_run(tmp_path, [dev_row])
    record = evaluation.final_evaluation(run.path, policy=object())
    assert played == ["test"] and record["split"] == "test" and record["return_mean"] == 1.0
    assert evaluation.final_evaluation(run.path, policy=object(), split="dev") == dev_row  # dev asks find it
    assert played == ["test"]


def test_an_eval_row_without_a_split_is_a_test_row_and_the_test_split_is_played_once(tmp_path, monkeypatch):
    played = fake_evaluations(monkeypatch)
    old_row = {"iteration": 2, "kind": "final", "temperature": 0.4, "episodes_per_variation": 1, "return_mean": 7.0}
    run = started_run(tmp_path, [old_row])
    assert evaluation.final_evaluation(run.path, policy=object()) == old_row and played == []
    with pytest.raises(ConfigError, match="test split of run was played already.*played once"):
        evaluation.final_evaluation(run.path, policy=object(), temperature=0.7)
    evaluation.final_evaluation(run.path, policy=object(), temperature=0.7, split="dev")  # dev: as often as wanted
    assert played == ["dev"] and [row.get("split", "test") for row in run.read_evals()] == ["test", "dev"]


def test_find_animal_evaluations_on_dev_play_ids_150_and_up_seeded_by_what_they_are():
    task = get_task("find-animal")
    specs = evaluation.evaluation_specs(task, 2, split="dev", seed=0, purpose="eval-dev", iteration=4)
    assert [spec.variation for spec in specs] == [v for v in range(150, 170) for _ in range(2)]
    assert len({spec.seed for spec in specs}) == 40  # every episode its own seed
    again = evaluation.evaluation_specs(task, 2, split="dev", seed=0, purpose="eval-dev", iteration=4)
    later = evaluation.evaluation_specs(task, 2, split="dev", seed=0, purpose="eval-dev", iteration=8)
    tested = evaluation.evaluation_specs(task, 2, split="test", seed=0, purpose="eval-test", iteration=4)
    assert again == specs and not {s.seed for s in later} & {s.seed for s in specs}
    assert [spec.variation for spec in tested][::2] == list(range(225, 245))
    with pytest.raises(Exception, match="split: 'train' is not allowed for an evaluation"):
        evaluation.evaluation_specs(task, 1, split="train", seed=0, purpose="eval-train", iteration=0)


def test_evaluate_plays_each_test_variation_k_times_without_memory(byte_policy, pool, recorded_calls):
    result = evaluation.evaluate(byte_policy, pool, TASK, FAST, split="test", seed=0, iteration=0, temperature=0.4,
                                 episodes_per_variation=2)
    [call] = recorded_calls
    assert sorted(call["variations"]) == [6, 6, 7, 7, 8, 8, 9, 9]
    assert call["retrieve"] is None and call["temperature"] == 0.4
    # Pinned from tests/data/transitions/identify-life-stages-2-{6..9}.json: "look around" scores 0 at every
    # recorded step (no success), so each of the 8 episodes ends at the 2-step cap with return 0.
    assert result == {"task": TASK.name, "split": "test", "seed": 0, "episodes_per_variation": 2, "episodes": 8,
                      "env_failures": 0, "return_mean": 0.0, "return_std": 0.0, "return_se": 0.0, "success_rate": 0.0,
                      "success_official_rate": 0.0, "per_variation": {"6": 0.0, "7": 0.0, "8": 0.0, "9": 0.0},
                      "per_variation_success": {"6": 0.0, "7": 0.0, "8": 0.0, "9": 0.0}, "end_reasons": {"max_steps": 8},
                      "actions_as_written": 1.0}
    assert list(result) == ["task", "split", "seed", "episodes_per_variation", "episodes", "env_failures",
                            "return_mean", "return_std", "return_se", "success_rate", "success_official_rate",
                            "per_variation", "per_variation_success", "end_reasons",
                            "actions_as_written"]  # the order eval.jsonl rows are written in


def test_memory_adaptation_never_updates_weights_and_starts_without_memory(byte_policy, pool, recorded_calls):
    before = {name: p.detach().clone() for name, p in byte_policy.model.named_parameters()}
    history = evaluation.memory_adaptation(byte_policy, pool, TASK, FAST, MemoryConfig(tip_max_new_tokens=8), iterations=3,
                                           split="test", seed=0, temperature=0.4, episodes_per_variation=1)
    assert [row["used_memory"] for row in history] == [False, True, True]
    assert recorded_calls[0]["retrieve"] is None and all(call["retrieve"] is not None for call in recorded_calls[1:])
    # The recordings score 0 at every step, so each iteration returns 0 and no improvement is defined.
    assert [row["return_mean"] for row in history] == [0.0, 0.0, 0.0]
    assert all(math.isnan(row["improvement_percent"]) for row in history)
    assert [row["end_reasons"] for row in history] == [{"max_steps": 4}] * 3 and [row["episodes"] for row in history] == [4] * 3
    assert history[-1]["memory_entries"] > 0 and all("return_se" in row for row in history)
    assert all(torch.equal(before[name], p) for name, p in byte_policy.model.named_parameters())
    assert all(row["split"] == "test" and sum(row["end_reasons"].values()) == row["episodes"] for row in history)


@pytest.mark.parametrize("returns, improvements", [
    ([40.0, 50.0, 20.0, 40.0], [0.0, 25.0, -50.0, 0.0]),
    ([-20.0, -10.0, -30.0, 0.0], [0.0, 50.0, -50.0, 100.0]),  # a negative baseline: rising returns still improve
    ([-50.0, 25.0, -100.0, -50.0], [0.0, 150.0, -100.0, 0.0]),
])
def test_memory_adaptation_improvement_is_relative_to_iteration_0_in_every_row(monkeypatch, returns, improvements):
    """Scripted mean returns per iteration (no episode is played): each row's improvement_percent is
    100 x (its return - iteration 0's) / |iteration 0's|, in every row, whatever the baseline's sign."""
    from dataclasses import replace

    scripted = iter(returns)
    monkeypatch.setattr(evaluation, "warn_if_context_is_short", lambda *args, **kwargs: None)
    monkeypatch.setattr(evaluation, "collect_rollouts", lambda *args, **kwargs: [])
    monkeypatch.setattr(evaluation, "summarize",
                        lambda trajectories: replace(summarize([]), return_mean=next(scripted)))
    history = evaluation.memory_adaptation(SimpleNamespace(tokenizer=None), None, TASK, FAST, MemoryConfig(), iterations=len(returns),
                                           split="dev", seed=3, temperature=0.4, episodes_per_variation=1)
    assert [row["return_mean"] for row in history] == returns
    assert [row["improvement_percent"] for row in history] == pytest.approx(improvements)
    assert [row["iteration"] for row in history] == list(range(len(returns)))
    assert [row["used_memory"] for row in history] == [False] + [True] * (len(returns) - 1)


def test_memory_adaptation_improvement_is_undefined_from_a_zero_baseline(monkeypatch):
    from dataclasses import replace

    scripted = iter([0.0, 10.0])
    monkeypatch.setattr(evaluation, "warn_if_context_is_short", lambda *args, **kwargs: None)
    monkeypatch.setattr(evaluation, "collect_rollouts", lambda *args, **kwargs: [])
    monkeypatch.setattr(evaluation, "summarize",
                        lambda trajectories: replace(summarize([]), return_mean=next(scripted)))
    history = evaluation.memory_adaptation(SimpleNamespace(tokenizer=None), None, TASK, FAST, MemoryConfig(), iterations=2, split="dev", seed=0,
                                           temperature=0.4, episodes_per_variation=1)
    assert all(math.isnan(row["improvement_percent"]) for row in history)


def test_evaluation_and_the_memory_loop_warn_when_the_context_is_short(byte_policy, pool, recorded_calls, caplog):
    short = RolloutConfig(max_steps=2, max_new_tokens=6, demonstrations=0, max_context_tokens=64)
    evaluation.evaluate(byte_policy, pool, TASK, short, split="dev", seed=0, iteration=0, temperature=0.4,
                        episodes_per_variation=1)
    assert "long episodes may end with context_limit" in caplog.text
    caplog.clear()
    evaluation.memory_adaptation(byte_policy, pool, TASK, short, MemoryConfig(tip_max_new_tokens=8), iterations=1,
                                 split="dev", seed=0, temperature=0.4, episodes_per_variation=1)
    assert "with tips may need" in caplog.text


def test_the_papers_ood_pairs_are_named():
    assert set(OOD_PAIRS.values()) == {
        ("identify-life-stages-2", "lifespan-shortest-lived"), ("lifespan-longest-lived", "test-conductivity"),
        ("power-component", "chemistry-mix-paint-secondary-color")}


@pytest.mark.jvm
@pytest.mark.slow
def test_eval_and_ood_commands_on_a_trained_run(tmp_path, monkeypatch, capsys):
    """``train`` (on recorded transitions), then ``eval`` and ``ood`` on its folder on JVMs, as a
    user runs them but in process (the commands' one-line errors are checked in subprocesses in
    test_cli.py, and CI runs the demo, training included, on JVMs as a process of its own)."""
    from empo2_lite.__main__ import main

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    with monkeypatch.context() as replayed:
        replayed.setattr(scienceworld_pool, "EnvPool", lambda size, config=None: ReplayPool(size, unrecorded="fixed"))
        assert main(["train", "--preset", "cpu-smoke", "--task", "identify-life-stages-2", "--iterations", "1",
                     "--name", "a"]) == 0
    assert (tmp_path / "a" / "metrics.jsonl").read_text().count("\n") == 1
    assert main(["eval", "--run", "a"]) == 0
    [final] = [json.loads(line) for line in (tmp_path / "a" / "eval.jsonl").read_text().splitlines()]
    assert final["kind"] == "final" and final["episodes"] + final["env_failures"] == 4
    capsys.readouterr()
    assert main(["ood", "--run", "a", "--task", "identify-life-stages-2", "--iterations", "2"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "a" / "ood-identify-life-stages-2.jsonl").read_text().splitlines()]
    assert [row["used_memory"] for row in rows] == [False, True] and rows[0]["trained_on"] == "identify-life-stages-2"
    adapted = capsys.readouterr()
    assert "iteration  2  memory on" in adapted.out  # printed 1-based


@pytest.mark.parametrize("baseline, check", [
    ("naive", lambda rows: rows[0]["baseline"] == "naive" and rows[0]["episodes"] + rows[0]["env_failures"] == 4),
    ("memory-only", lambda rows: [t["used_memory"] for t in rows[0]["trials"]] == [False, True]),
])
def test_baseline_commands_write_their_own_run_folder(tmp_path, monkeypatch, recorded_calls, baseline, check):
    """In process on the replay pool (test_eval_and_ood_commands_on_a_trained_run runs the CLI on JVMs)."""
    from empo2_lite.__main__ import main

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    monkeypatch.setattr(scienceworld_pool, "EnvPool", lambda size, config=None: ReplayPool(size))
    assert main(["eval", "--baseline", baseline, "--task", "identify-life-stages-2", "--preset", "cpu-smoke",
                 "--trials", "2"]) == 0
    assert len(recorded_calls) == (2 if baseline == "memory-only" else 1)
    path = tmp_path / f"baseline-{baseline}-identify-life-stages-2" / "eval.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert check(rows)


@pytest.mark.jvm
@pytest.mark.slow
def test_final_evaluation_is_played_once_then_read_back(tmp_path, monkeypatch):
    from empo2_lite import evaluation
    from empo2_lite.runs import RunDir
    from empo2_lite.trainer import Trainer

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"name": "final", "task": TASK.name, "iterations": 1, "n_envs": 2,
                                                   "variations_per_iteration": 1})
    run = RunDir.named("final")
    Trainer(config, run).train(progress=False)
    played = []
    real_evaluate = evaluation.evaluate
    monkeypatch.setattr(evaluation, "evaluate", lambda *args, **kwargs: played.append(1) or real_evaluate(*args, **kwargs))
    first = evaluation.final_evaluation(run.path)
    again = evaluation.final_evaluation(run.path)
    assert played == [1]
    assert first == again and first["iteration"] == 1 and first["kind"] == "final"
    assert first["episodes"] == 4  # the task's 4 test variations, once each
    rows = [json.loads(line) for line in (run.path / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 1

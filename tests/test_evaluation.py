"""Evaluation and the frozen-weight memory loop (OOD adaptation, memory-only baseline).

The final evaluation's settings are checked without Java; the rest plays real ScienceWorld
episodes. The statistics are tested in test_summary.py."""

from __future__ import annotations

import contextlib
import json

import pytest
import torch

from empo2_lite import evaluation
from empo2_lite.config import MemoryConfig, RolloutConfig, apply_overrides, preset
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
        sampler = ScriptedSampler(policy.tokenizer, {"life stages": ["look around"] * len(specs) * config.max_steps})
        return real(policy, pool, specs, config, retrieve=retrieve, sampler=sampler, **kwargs)

    monkeypatch.setattr(evaluation, "collect_rollouts", spy)
    return calls


def test_final_evaluation_uses_the_configs_episodes_per_variation_and_temperature(tmp_path, monkeypatch):
    from empo2_lite.runs import RunDir

    config = apply_overrides(preset("cpu-smoke"), {"eval_episodes_per_variation": 4, "eval_temperature": 0.7,
                                                   "iterations": 1})
    run = RunDir(tmp_path / "run")
    run.start(config)
    calls = []

    def fake_evaluate(policy, pool, task, rollout, temperature, episodes_per_variation, progress=False):
        calls.append((task.name, temperature, episodes_per_variation))
        return {"task": task.name, "episodes": 4 * len(task.test_variations)}

    monkeypatch.setattr(evaluation, "EnvPool", lambda *args: contextlib.nullcontext())  # no JVM
    monkeypatch.setattr(evaluation, "evaluate", fake_evaluate)
    record = evaluation.final_evaluation(run.path, policy=object())
    assert calls == [(config.task, 0.7, 4)]
    assert record["kind"] == "final" and run.read_evals() == [record] and record["iteration"] == 1


def test_evaluate_plays_each_test_variation_k_times_without_memory(byte_policy, pool, recorded_calls):
    result = evaluation.evaluate(byte_policy, pool, TASK, FAST, temperature=0.4, episodes_per_variation=2)
    [call] = recorded_calls
    assert sorted(call["variations"]) == [6, 6, 7, 7, 8, 8, 9, 9]
    assert call["retrieve"] is None and call["temperature"] == 0.4
    assert result["episodes"] + result["env_failures"] == 8
    assert set(result["per_variation"]) == {"6", "7", "8", "9"}
    assert -100 <= result["return_mean"] <= 100 and 0 <= result["success_rate"] <= 1
    assert result["episodes_per_variation"] == 2 and "return_se" in result


def test_memory_adaptation_never_updates_weights_and_starts_without_memory(byte_policy, pool, recorded_calls):
    before = {name: p.detach().clone() for name, p in byte_policy.model.named_parameters()}
    history = evaluation.memory_adaptation(byte_policy, pool, TASK, FAST, MemoryConfig(tip_max_new_tokens=8), iterations=3,
                                           temperature=0.4, episodes_per_variation=1)
    assert [row["used_memory"] for row in history] == [False, True, True]
    assert recorded_calls[0]["retrieve"] is None and all(call["retrieve"] is not None for call in recorded_calls[1:])
    assert history[0]["improvement_percent"] == 0.0 or history[0]["return_mean"] == 0
    assert history[-1]["memory_entries"] > 0 and all("return_se" in row for row in history)
    assert all(torch.equal(before[name], p) for name, p in byte_policy.model.named_parameters())


def test_the_papers_ood_pairs_are_named():
    assert set(evaluation.OOD_PAIRS.values()) == {
        ("identify-life-stages-2", "lifespan-shortest-lived"), ("lifespan-longest-lived", "test-conductivity"),
        ("power-component", "chemistry-mix-paint-secondary-color")}


@pytest.mark.jvm
@pytest.mark.slow
def test_eval_and_ood_commands_on_a_trained_run(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "EMPO2_RUNS": str(tmp_path)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "empo2_lite", *args], env=env, capture_output=True, text=True,
                              timeout=600)

    trained = cli("train", "--preset", "cpu-smoke", "--task", "identify-life-stages-2", "--iterations", "1", "--name", "a")
    assert trained.returncode == 0, trained.stderr[-2000:]
    evaluated = cli("eval", "--run", "a")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    [final] = [json.loads(line) for line in (tmp_path / "a" / "eval.jsonl").read_text().splitlines()]
    assert final["kind"] == "final" and final["episodes"] + final["env_failures"] == 4
    adapted = cli("ood", "--run", "a", "--task", "identify-life-stages-2", "--iterations", "2")
    assert adapted.returncode == 0, adapted.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "a" / "ood-identify-life-stages-2.jsonl").read_text().splitlines()]
    assert [row["used_memory"] for row in rows] == [False, True] and rows[0]["trained_on"] == "identify-life-stages-2"
    assert "iteration  2  memory on" in adapted.stdout  # printed 1-based


@pytest.mark.parametrize("baseline, check", [
    ("naive", lambda rows: rows[0]["baseline"] == "naive" and rows[0]["episodes"] + rows[0]["env_failures"] == 4),
    ("memory-only", lambda rows: [t["used_memory"] for t in rows[0]["trials"]] == [False, True]),
])
def test_baseline_commands_write_their_own_run_folder(tmp_path, monkeypatch, recorded_calls, baseline, check):
    """In process on the replay pool (test_eval_and_ood_commands_on_a_trained_run runs the CLI on JVMs)."""
    from empo2_lite.__main__ import main
    from empo2_lite.env import pool as pool_module

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    monkeypatch.setattr(pool_module, "EnvPool", lambda size, config=None: ReplayPool(size))
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

"""The training loop end to end on real ScienceWorld (cpu-smoke preset), configs, metrics and resume."""

from __future__ import annotations

import collections
import json
import statistics
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from empo2_lite.config import ConfigError
from empo2_lite.memory import TipMemory
from empo2_lite.runs import RunDir
from empo2_lite.summary import summarize
from empo2_lite.config import (
    TrainConfig,
    apply_overrides,
    load_overrides_file,
    parse_set_arguments,
    preset,
)


def test_overrides_are_typed_and_unknown_keys_are_named():
    config = apply_overrides(preset("cpu-smoke"), parse_set_arguments(
        ["update.learning_rate=3e-4", "group_size=3", "rollout.history_window=2", "use_off_policy=false",
         "policy.lora_target_modules=q_proj,v_proj"]))
    assert config.update.learning_rate == 3e-4 and config.group_size == 3 and config.rollout.history_window == 2
    assert config.use_off_policy is False and config.policy.lora_target_modules == ("q_proj", "v_proj")
    with pytest.raises(ConfigError, match="update.learn_rate: unknown setting; known settings of update: .*update.learning_rate"):
        apply_overrides(config, {"update.learn_rate": "1"})
    with pytest.raises(ConfigError, match="group_size: 'many' is not allowed; it must be a number"):
        apply_overrides(config, {"group_size": "many"})
    with pytest.raises(ConfigError, match="--set: 'p' is not allowed"):
        parse_set_arguments(["p"])


def test_yaml_overrides_nest_by_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: power-component\nupdate:\n  learning_rate: 0.001\nrollout:\n  max_steps: 7\n")
    config = apply_overrides(preset("cpu-smoke"), load_overrides_file(path))
    assert (config.task, config.update.learning_rate, config.rollout.max_steps) == ("power-component", 0.001, 7)


def test_config_round_trips_through_json():
    config = apply_overrides(preset("cpu-demo"), {"q": 0.85, "memory.entries_per": "episode"})
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize("change, message", [
    ({"p": 1.5}, r"p: 1.5 is not allowed; it must be a number in \[0, 1\]"),
    ({"q": -0.1}, r"q: -0.1 is not allowed"),
    ({"task": "find-unicorn"}, "task: 'find-unicorn' is not one of the paper's tasks"),
    ({"algo": "ppo"}, "algo: 'ppo' is not allowed; choose one of: empo2, grpo"),
    ({"group_size": 0}, "group_size: 0 is not allowed"),
    ({"update.mask_granularity": "word"}, "update.mask_granularity"),
    ({"update.temperature": 0.5}, "update.temperature: unknown setting; known settings of update: update.clip_high"),
    ({"update.lr": 1}, "update.lr: unknown setting; known settings of update: .*update.learning_rate"),
    ({"eval_temperature": -1.0}, r"eval_temperature: -1.0 is not allowed; it must be in \[0, 5\]"),
    ({"off_policy_old_logprob": "both"}, "off_policy_old_logprob"),
])
def test_validation_names_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(preset("cpu-smoke"), change).validate()


def test_every_preset_is_valid_and_gpu_presets_say_they_are_unverified():
    from empo2_lite.config import presets as train_config

    for name in train_config.PRESETS:
        preset(name).validate()
    assert "Unverified until measured" in train_config.__doc__


def test_train_cli_rejects_bad_settings_before_any_heavy_work(monkeypatch, capsys):
    from empo2_lite import trainer
    from empo2_lite.__main__ import main

    def no_training(*args, **kwargs):
        raise AssertionError("the Trainer was built for an invalid config")

    monkeypatch.setattr(trainer, "Trainer", no_training)
    assert main(["train", "--preset", "cpu-smoke", "--set", "p=2"]) == 2
    assert capsys.readouterr().err.strip() == "empo2-lite: error: p: 2.0 is not allowed; it must be a number in [0, 1]"
    # `python -m empo2_lite` says the same, in one line and with no traceback.
    out = subprocess.run([sys.executable, "-m", "empo2_lite", "train", "--preset", "cpu-smoke", "--set", "p=2"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["empo2-lite: error: p: 2.0 is not allowed; it must be a number in [0, 1]"]


@pytest.mark.jvm
@pytest.mark.slow
def test_one_cpu_smoke_iteration_end_to_end(tmp_path, monkeypatch):
    from empo2_lite.trainer import Trainer

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"iterations": 1, "name": "e2e", "p": 1.0, "q": 1.0, "eval_every": 1})
    trainer = Trainer(config, RunDir.named("e2e"))
    before = {n: p.detach().clone() for n, p in trainer.policy.model.named_parameters() if p.requires_grad}
    [metrics] = trainer.train(progress=False)
    assert metrics["mode"] == "off_policy" and metrics["charts/env_failures"] == 0
    assert metrics["charts/steps_mean"] == 4 and metrics["tokens/update"] > 0
    for key in ("charts/return_mean", "charts/success_rate", "charts/novelty_mean", "losses/loss", "losses/clip_fraction",
                "losses/masked_fraction", "losses/entropy", "losses/grad_norm", "time/rollout", "time/tips",
                "time/memory", "time/update", "memory/peak_rss_mb"):
        assert key in metrics
    after = dict(trainer.policy.model.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before)
    run = RunDir.named("e2e")
    assert run.latest_checkpoint().name == "iter-000001"
    assert len(TipMemory.load(run.memory_path)) == metrics["memory/entries"] > 0
    [evaluation] = run.read_evals()
    assert evaluation["episodes"] == len(trainer.task.test_variations)
    assert any(name.startswith("events.out") for name in os.listdir(run.path / "tensorboard"))


def train_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "empo2_lite", "train", "--preset", "cpu-smoke", *args]


@pytest.mark.jvm
@pytest.mark.slow
def test_a_run_killed_mid_iteration_resumes_with_memory_intact(tmp_path):
    env = {**os.environ, "EMPO2_RUNS": str(tmp_path)}
    common = ["--iterations", "3", "--set", "p=1.0"]
    subprocess.run(train_command("--name", "whole", *common), env=env, check=True, capture_output=True, timeout=600)

    killed = subprocess.Popen(train_command("--name", "killed", *common), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    run = RunDir(tmp_path / "killed")
    deadline = time.monotonic() + 300
    while run.latest_checkpoint() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.0)  # well inside the second iteration's rollouts
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert run.latest_checkpoint().name == "iter-000001"
    entries_at_kill = len(TipMemory.load(run.memory_path))

    resumed = subprocess.run(train_command("--resume", "killed"), env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    metrics = run.read_metrics()
    assert [m["iteration"] for m in metrics] == [0, 1, 2]
    whole = RunDir(tmp_path / "whole").read_metrics()
    assert [m["mode"] for m in metrics] == [m["mode"] for m in whole]  # RNG state restored
    assert len(TipMemory.load(run.memory_path)) == metrics[-1]["memory/entries"] >= entries_at_kill > 0
    written_by = [json.loads(line)["iteration"] for line in run.memory_path.read_text().splitlines()]
    assert sorted(set(written_by)) == [0, 1, 2] and written_by == sorted(written_by)  # no duplicate iteration 1
    assert run.latest_checkpoint().name == "iter-000003"


@pytest.mark.jvm
@pytest.mark.slow
def test_grpo_has_no_novelty_and_no_memory_while_empo2_of_the_same_seed_has_both(tmp_path, monkeypatch):
    from empo2_lite.trainer import Trainer

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    rows = {}
    for algo in ("grpo", "empo2"):
        config = apply_overrides(preset("cpu-smoke"), {"algo": algo, "iterations": 1, "name": algo, "seed": 3})
        [rows[algo]] = Trainer(config, RunDir.named(algo)).train(progress=False)
    grpo, empo2 = rows["grpo"], rows["empo2"]
    assert grpo["charts/novelty_mean"] == 0 and grpo["memory/entries"] == 0 and grpo["time/tips"] == 0
    assert not (tmp_path / "grpo" / "memory.jsonl").exists()
    assert json.loads((tmp_path / "grpo" / "config.json").read_text())["p"] == 0.0
    assert empo2["charts/novelty_mean"] > 0 and empo2["memory/entries"] > 0
    for row in rows.values():  # every episode is counted under its end reason
        ends = {key: value for key, value in row.items() if key.startswith("episodes/end_")}
        assert sum(ends.values()) == 4 and ends
        assert row["update/optimizer_steps"] >= 1 and row["tokens/prefilled"] > row["tokens/generated"] > 0


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
        "charts/success_official_rate": sum(t.success_official for t in played) / max(len(played), 1),
        "charts/novelty_mean": statistics.mean([turn.novelty for t in played for turn in t.turns] or [0.0]),
        "charts/steps_mean": statistics.mean([len(t.turns) for t in played] or [0]),
        "charts/tips_shown_mean": statistics.mean([len(turn.tips) for t in played for turn in t.turns] or [0]),
        "charts/env_failures": len(trajectories) - len(played),
        **{f"episodes/end_{reason}": count for reason, count in sorted(end_reasons.items())},
    }


def test_chart_metrics_from_the_shared_summary_are_the_trainers_own_numbers():
    from test_summary import episode, turn

    from empo2_lite.trainer import chart_metrics

    batches = {
        "mixed": [episode(0, 100, turns=[turn(2, 1.0, 3, 50)]), episode(0, 40, "max_steps", [turn(0, 0.5, 5, 80)] * 2),
                  episode(1, -100, "failed", [turn(1, 0.25, 4, 60)]), episode(1, 7, "env_failure")],
        "integral means": [episode(0, 20, turns=[turn(1, 1.0, 1, 1)]), episode(1, 40, turns=[turn(3, 0.5, 1, 1)])],
        "every episode lost": [episode(0, 0, "env_failure"), episode(1, 0, "env_failure")],
        "nothing played": [],
    }
    for name, batch in batches.items():  # json text: the same numbers and the same int/float types
        assert json.dumps(chart_metrics(summarize(batch))) == json.dumps(charts_as_the_trainer_first_computed_them(batch)), name

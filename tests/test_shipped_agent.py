"""The shipped agent: packed from a study's run and its warm start, put back under the runs root as
two ordinary runs whose warm-start path holds on this machine. No model or Java: the run folders
are written through RunDir with a stand-in adapter."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from empo2_lite.config import ConfigError, apply_overrides, preset
from empo2_lite.runs import RunDir
from empo2_lite.shipped_agent import install_agent, read_agent, ship_agent, training_minutes


def finished_run(path: Path, *, init_adapter: str = "", warm_start: dict | None = None, iterations: int = 2) -> RunDir:
    """A run of ``iterations`` iterations with metrics, one test row and checkpoints (adapter and optimizer)."""
    run = RunDir(path)
    config = apply_overrides(preset("cpu-smoke"), {"name": path.name, "iterations": iterations, "seed": 1,
                                                   "algo": "grpo"})
    config.policy.init_adapter = init_adapter
    run.start(config)
    for iteration in range(iterations):
        run.append_metrics({"iteration": iteration, "charts/success_rate": 0.5, "time/rollout": 60.0, "time/update": 30.0})
        run.save_checkpoint(iteration + 1, {"w": torch.full((4,), float(iteration))}, {"state": list(range(100))}, {})
    run.append_eval({"iteration": iterations, "kind": "final", "split": "test", "success_rate": 0.5})
    if warm_start is not None:
        run.write_warm_start(warm_start)
    return run


@pytest.fixture()
def study_run(tmp_path) -> RunDir:
    warm = finished_run(tmp_path / "study" / "warm-start-v2", iterations=1,
                        warm_start={"settings": {"variations": 2}, "cloned": [{}, {}], "minutes": 1.5})
    return finished_run(tmp_path / "study" / "main" / "grpo-s1", init_adapter=str(warm.path))


def test_an_agent_ships_both_adapters_without_optimizer_state_and_names_its_warm_start_relatively(study_run, tmp_path):
    record = ship_agent(study_run.path, tmp_path / "agent", why="best test success")
    assert record == {"run": "grpo-s1", "algo": "grpo", "seed": 1, "task": "find-animal", "preset": "cpu-smoke",
                      "model": "tiny:byte", "iterations": 2, "why": "best test success", "warm_start_minutes": 1.5,
                      "training_minutes": 3.0, "warm_start_variations": 2}
    assert read_agent(tmp_path / "agent") == record
    shipped = sorted(str(path.relative_to(tmp_path / "agent")) for path in (tmp_path / "agent").rglob("*") if path.is_file())
    assert shipped == ["agent.json",
                       "trained/checkpoints/iter-000002/adapter.safetensors", "trained/checkpoints/iter-000002/state.json",
                       "trained/checkpoints/latest", "trained/config.json", "trained/eval.jsonl", "trained/metrics.jsonl",
                       "warm-start/checkpoints/iter-000001/adapter.safetensors",
                       "warm-start/checkpoints/iter-000001/state.json", "warm-start/checkpoints/latest",
                       "warm-start/config.json", "warm-start/metrics.jsonl", "warm-start/warm_start.json"]
    config = json.loads((tmp_path / "agent" / "trained" / "config.json").read_text())
    assert config["policy"]["init_adapter"] == "../warm-start"
    trained = RunDir(tmp_path / "agent" / "trained")
    assert trained.read_adapter(trained.latest_checkpoint())["w"].tolist() == [1.0] * 4  # the last iteration's


def test_install_points_the_trained_run_at_its_copied_warm_start_once(study_run, tmp_path, monkeypatch):
    ship_agent(study_run.path, tmp_path / "agent", why="test")
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path / "runs"))
    warm, trained = install_agent(tmp_path / "agent", "demo")
    assert warm.path == tmp_path / "runs" / "demo" / "warm-start" and warm.read_warm_start()["minutes"] == 1.5
    assert trained.config().policy.init_adapter == str(warm.path.resolve())
    trained.config().validate()  # the warm start's folder exists where the config says
    trained.append_eval({"iteration": 2, "kind": "final", "split": "dev", "success_rate": 1.0})
    again = install_agent(tmp_path / "agent", "demo")
    assert again[1].read_evals()[-1]["split"] == "dev"  # what a demo played there is kept


def test_a_newly_shipped_agent_replaces_the_installed_one_and_the_old_demo_is_moved_aside(study_run, tmp_path,
                                                                                          monkeypatch):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path / "runs"))
    ship_agent(study_run.path, tmp_path / "agent", why="first pick")
    _, trained = install_agent(tmp_path / "agent", "demo")
    trained.append_eval({"iteration": 2, "kind": "final", "split": "dev", "success_rate": 1.0})
    ship_agent(study_run.path, tmp_path / "newer", why="a later pick")  # agent.json differs ("why")
    _, fresh = install_agent(tmp_path / "newer", "demo")
    assert not fresh.read_evals() or all(row.get("split") != "dev" for row in fresh.read_evals())
    assert read_agent(tmp_path / "runs" / "demo")["why"] == "a later pick"
    old = RunDir(tmp_path / "runs" / "demo-previous-agent" / "trained")
    assert old.read_evals()[-1]["split"] == "dev" and read_agent(old.path.parent)["why"] == "first pick"


def test_refusals_name_what_is_wrong(study_run, tmp_path):
    plain = finished_run(tmp_path / "plain")
    with pytest.raises(ConfigError, match="init_adapter is empty"):
        ship_agent(plain.path, tmp_path / "agent", why="")
    ship_agent(study_run.path, tmp_path / "agent", why="")
    with pytest.raises(ConfigError, match="exists; ship into a new folder"):
        ship_agent(study_run.path, tmp_path / "agent", why="")
    with pytest.raises(ConfigError, match="no shipped agent at"):
        read_agent(tmp_path)
    assert not (tmp_path / ".agent.partial").exists()


def test_training_minutes_add_every_phase_of_every_iteration(study_run):
    assert training_minutes(study_run) == pytest.approx(3.0)

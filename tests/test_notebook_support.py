"""Helpers the notebooks rely on: the smoke switch, the runs folder, estimates, the install check,
and the final evaluation that `make demo` and the notebooks share."""

from __future__ import annotations

import json

import pytest

from empo2_lite import notebook
from empo2_lite.runs import runs_root
from empo2_lite.train_config import apply_overrides, preset


def test_smoke_mode_only_for_exactly_one(monkeypatch):
    monkeypatch.setenv("EMPO2_SMOKE", "1")
    assert notebook.smoke_mode()
    for value in ("0", "", "yes"):
        monkeypatch.setenv("EMPO2_SMOKE", value)
        assert not notebook.smoke_mode()
    monkeypatch.delenv("EMPO2_SMOKE")
    assert not notebook.smoke_mode()


def test_project_runs_folder_unless_the_variable_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("EMPO2_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    root = notebook.use_project_runs()
    assert root == runs_root() and root.is_absolute() and root.name == "runs"
    assert (root.parent / "pyproject.toml").exists()  # the repository, not the notebook's folder
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path / "elsewhere"))
    assert notebook.use_project_runs() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def test_estimates_scale_with_iterations_episodes_and_runs():
    demo = preset("cpu-demo")  # 85 s per iteration of 4 episodes, 10 s per evaluation episode
    assert notebook.estimate(demo, iterations=3, eval_episodes=20).startswith("cpu-demo: ~8 min and ~5 GB of RAM (measured")
    doubled = apply_overrides(demo, {"group_size": 8})  # twice the episodes per iteration
    assert notebook.estimate(doubled, iterations=1).startswith("cpu-demo: ~3 min")
    assert notebook.estimate(preset("cpu-smoke"), iterations=2, runs=2).startswith("cpu-smoke: ~60 s")
    assert "estimate scaled from a 3-step iteration on an H200" in notebook.estimate(preset("gpu-24gb"))
    assert "estimate: not yet measured" in notebook.estimate(preset("gpu-48gb"))
    assert "GPU memory" in notebook.estimate(preset("gpu-48gb"))
    assert "no estimate" in notebook.estimate(apply_overrides(demo, {"preset": ""}))


@pytest.mark.parametrize("line, major", [('openjdk version "17.0.9" 2023-10-17', 17), ('java version "1.8.0_391"', 8),
                                         ('openjdk version "11" 2018-09-25', 11), ("", None), (None, None)])
def test_java_major_version(line, major):
    assert notebook.java_major(line) == major


def test_install_check_reports_what_a_run_needs():
    report = notebook.check_install()
    for key in ("python", "torch", "transformers", "scienceworld", "java", "cuda"):
        assert report[key] and report[key] != "missing"
    assert notebook.java_major(report["java"]) >= 11


def test_install_check_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(notebook, "java_version", lambda: None)
    with pytest.raises(RuntimeError, match="missing: java"):
        notebook.check_install()


@pytest.mark.jvm
@pytest.mark.slow
def test_final_evaluation_is_played_once_then_read_back(tmp_path, monkeypatch):
    from empo2_lite import evaluation
    from empo2_lite.runs import RunDir
    from empo2_lite.trainer import Trainer

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"name": "final", "iterations": 1, "n_envs": 2,
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
    assert first["episodes"] == 20  # find-animal's 20 test variations, once each
    rows = [json.loads(line) for line in (run.path / "eval.jsonl").read_text().splitlines()]
    assert len(rows) == 1

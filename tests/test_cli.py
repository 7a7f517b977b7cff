"""The ``play``, ``eval``, ``train`` and ``demo`` commands, run as a user would (subprocesses, real
JVMs except for the bad-input and damaged-run checks, which must fail before any JVM starts)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import asdict

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "empo2_lite", *args], capture_output=True, text=True, timeout=180)


@pytest.mark.jvm
def test_play_gold_on_a_test_variation_ends_with_a_json_summary():
    out = run_cli("play", "--task", "power-component", "--variation", "15", "--split", "test", "--gold", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["score"] == 100 and summary["success"] and summary["done"]
    assert summary["steps"] == len(summary["actions"]) > 0
    assert "[  1] >" in out.stdout  # each step is printed before the summary


@pytest.mark.jvm
def test_play_given_actions_reports_corrections_and_failure():
    out = run_cli("play", "--task", "find-animal", "--variation", "2", "--actions", "look around;zzz qqq;focus on air", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary == {**summary, "score": -100, "success": False, "done": True, "steps": 3, "end_reason": "failed"}
    assert "policy said: 'zzz qqq'" in out.stdout


@pytest.mark.parametrize("args, expected", [
    (["--task", "find-unicorn", "--variation", "0", "--gold"], "choose one of: chemistry-mix"),
    (["--task", "find-animal", "--variation", "0", "--split", "test", "--gold"], "choose one of 225..299"),
    (["--task", "power-component", "--variation", "99", "--gold"], "choose one of 0..9"),
    (["--task", "find-animal", "--variation", "0", "--actions", " ; "], "actions: no action given"),
])
def test_bad_input_is_one_clear_line(args, expected):
    out = run_cli("play", *args)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


@pytest.mark.parametrize("args, expected", [
    (["--baseline", "naive", "--task", "find-animal"], "--preset: a baseline needs the preset whose model and "
                                                        "settings it uses; choose one of: cpu-smoke, cpu-demo"),
    (["--baseline", "naive", "--task", "find-animal", "--preset", "cpu-smoke", "--episodes-per-variation", "0"],
     "--episodes-per-variation: 0 is not allowed"),
    (["--run", "some-run", "--preset", "cpu-demo"], "--preset: only for baselines"),
    (["--run", "some-run", "--set", "rollout.demonstrations=0"], "--name/--set: only for baselines"),
    (["--baseline", "naive", "--task", "find-animal", "--preset", "cpu-smoke", "--set", "rollout.demos=0"],
     "rollout.demos"),
])
def test_bad_eval_input_is_one_clear_line(args, expected):
    out = run_cli("eval", *args)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]


def test_resuming_with_a_damaged_memory_line_is_one_clear_line(tmp_path, monkeypatch):
    import torch

    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.memory import TipEntry
    from empo2_lite.runs import RunDir

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    run = RunDir.named("damaged")
    run.start(apply_overrides(preset("cpu-smoke"), {"name": "damaged", "iterations": 2}))
    tip = json.dumps(asdict(TipEntry("find-animal", 0, "look first", "look around", 0, "You are in the hallway.")))
    run.memory_path.write_text(f"{tip}\n{tip[:-5]}\n{tip}\n")  # line 2 cut short, e.g. by a disk fault
    run.save_checkpoint(1, {"w": torch.zeros(1)}, {}, {})
    out = run_cli("train", "--resume", "damaged")
    assert out.returncode == 2
    [line] = out.stderr.splitlines()  # no traceback, and no model was loaded first
    assert line.startswith(f"empo2-lite: error: {run.memory_path}: line 2 is not a tip record (")
    assert line.endswith("); fix or delete that line, or delete the file to continue with an empty memory")


@pytest.mark.jvm
@pytest.mark.slow
def test_smoke_demo_plays_its_stand_in_agent_beside_the_references_then_reads_everything_back(tmp_path, monkeypatch,
                                                                                               capsys):
    """In process (the demo as a process of its own is CI's last step, ``.ci/run``), twice: the
    second run plays and trains nothing."""
    from empo2_lite.__main__ import main

    monkeypatch.setenv("EMPO2_SMOKE", "1")
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for line in ("untrained ", "warm start alone (no RL)", "EMPO² seed 0 (warm start + RL)", "training success"):
        assert line in out
    assert (tmp_path / "demo-smoke-agent" / "agent.json").is_file()
    assert (tmp_path / "demo-smoke-play" / "figures" / "demo.png").is_file()
    played = {name: (tmp_path / name / "eval.jsonl").read_text()
              for name in ("demo-smoke-play-untrained", "demo-smoke-play-warm-start-alone", "demo-smoke-play/trained")}
    assert all(len(text.splitlines()) == 1 for name, text in played.items() if "trained" not in name.split("/")[-1])
    assert '"split": "dev"' in played["demo-smoke-play/trained"]
    iteration = (tmp_path / "demo-smoke-play-one-iteration" / "metrics.jsonl").read_text()
    assert len(iteration.splitlines()) == 1
    assert main(["demo"]) == 0  # everything is read back: nothing played or trained again
    assert {name: (tmp_path / name / "eval.jsonl").read_text() for name in played} == played
    assert (tmp_path / "demo-smoke-play-one-iteration" / "metrics.jsonl").read_text() == iteration


def test_eval_of_a_run_on_another_task_points_to_ood():
    out = run_cli("eval", "--run", "some-run", "--task", "find-animal")
    assert out.returncode == 2 and out.stderr.strip().endswith("for another, see `ood`)")


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


@pytest.mark.parametrize("args, expected", [
    (["--preset", "cpu-tiny"], "--preset: 'cpu-tiny' is not allowed; choose one of: cpu-smoke"),
    (["--task", "find-unicorn"], "choose one of: chemistry-mix"),
    (["--seeds", "0", "--only", "grpo-s3"], "--only: grpo-s3 is not a piece of this experiment; choose from naive-s0, "
                                           "memory-only-s0, empo2-s0, grpo-s0"),
    (["--seeds", "0", "1", "0"], "--seeds: 0 given twice; give each seed once"),
    (["--trials", "0"], "--trials: 0 is not allowed"),
])
def test_bad_compare_input_is_one_clear_line(args, expected, tmp_path):
    out = run_cli("compare", "--out", str(tmp_path / "cmp"), *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]
    assert not (tmp_path / "cmp").exists()  # refused before anything was written


@pytest.mark.parametrize("command", ["train", "eval"])
def test_help_names_every_preset(command):
    from empo2_lite.config import PRESETS

    out = run_cli(command, "--help")
    assert out.returncode == 0, out.stderr
    text = re.sub(r"-\s+", "-", out.stdout)  # argparse may wrap a name at its hyphen ("cpu-solve-\n  chosen")
    assert all(name in text for name in PRESETS)


def test_train_help_lists_every_algorithm_of_the_table():
    from empo2_lite.__main__ import build_parser
    from empo2_lite.config import ALGORITHMS

    train = next(action for action in build_parser()._subparsers._group_actions[0].choices["train"]._actions
                 if "--algo" in action.option_strings)
    assert all(f"{entry.name} ({entry.summary})" in train.help for entry in ALGORITHMS.values())


HEAVY_MODULES = ("torch", "transformers", "peft")
MAIN_THEN_LIST_HEAVY_IMPORTS = f"""
import sys
from empo2_lite.__main__ import main
code = main(sys.argv[1:])
print([name for name in {HEAVY_MODULES!r} if name in sys.modules])
sys.exit(code)
"""


@pytest.mark.parametrize("args, expected", [
    (["train", "--preset", "cpu-smoke", "--set", "update.lr=1"], "update.lr: unknown setting; known settings of update"),
    (["train", "--preset", "cpu-tiny"], "preset: 'cpu-tiny' is not allowed"),
    (["train", "--task", "find-unicorn"], "task: 'find-unicorn' is not one of the paper's tasks"),
    (["train", "--algo", "ppo"], "algo: 'ppo' is not allowed; choose one of: empo2, grpo, grpo+novelty, grpo+tips-unseen"),
    (["train", "--algo", "grpo", "--set", "memory.novelty_coef=1"],
     "memory.novelty_coef: 1.0 is not allowed with algo 'grpo' (no novelty reward); use algo 'grpo+novelty'"),
    (["train", "--iterations", "0"], "iterations: 0 is not allowed"),
    (["train", "--preset", "cpu-smoke", "--set", "policy.lora_dropout=0.1"],
     "policy.lora_dropout: 0.1 is not allowed; it must be 0"),
    (["train", "--resume", "nope"], "--resume: no run named 'nope'"),
    (["train", "--resume", "nope", "--set", "p=0"], "--set: not with --resume"),
    (["eval", "--baseline", "naive", "--task", "find-animal", "--preset", "cpu-smoke", "--set", "update.lr=1"],
     "update.lr: unknown setting"),
    (["eval", "--baseline", "memory-only", "--task", "find-animal", "--preset", "cpu-smoke", "--trials", "0"],
     "--trials: 0 is not allowed"),
    (["eval", "--baseline", "reflexion", "--task", "find-animal", "--preset", "cpu-smoke", "--trials", "0"],
     "--trials: 0 is not allowed"),
    (["eval", "--baseline", "reflexion", "--task", "find-animal", "--preset", "cpu-smoke", "--from", "w"],
     "--from: give it with --baseline warm-start (the warm start played) or retrospex (its actor), and only then"),
    (["eval", "--baseline", "retro", "--task", "find-animal", "--preset", "cpu-smoke"],
     "--baseline: 'retro' is not allowed; choose one of: naive, memory-only, reflexion, retrospex, warm-start"),
    (["eval", "--run", "nope"], "--run: no run named 'nope'"),
    (["eval", "--run", "nope", "--seed", "1"], "--seed: only for baselines"),
    (["eval", "--run", "nope", "--temperature", "9"], "--temperature: 9.0 is not allowed; it must be in [0, 5]"),
    (["eval", "--run", "nope", "--split", "train"], "--split: 'train' is not allowed; choose one of: dev, test"),
    (["ood", "--run", "nope", "--task", "find-animal", "--split", "val"], "--split: 'val' is not allowed"),
    (["ood", "--run", "nope", "--task", "find-animal"], "--run: no run named 'nope'"),
    (["ood", "--run", "nope", "--pair", "a-to-b"], "--pair: 'a-to-b' is not allowed"),
    (["ood", "--run", "nope", "--task", "find-animal", "--iterations", "0"], "--iterations: 0 is not allowed"),
    (["ablate", "--grid", "update.lr=1,2"], "grid: ['update.lr'] cannot be ablated"),
    (["ablate", "--set", "update.lr=1"], "update.lr: unknown setting"),
    (["compare", "--preset", "cpu-tiny"], "--preset: 'cpu-tiny' is not allowed"),
    (["compare", "--seeds", "0", "0"], "--seeds: 0 given twice"),
    (["play", "--task", "find-animal", "--variation", "225", "--run", "nope"], "--run: no run named 'nope'"),
    (["play", "--task", "find-animal", "--variation", "0", "--gold", "--max-steps", "0"], "--max-steps: 0 is not allowed"),
    (["plot", "--runs", "no-such-folder"], "no runs folder at no-such-folder"),
])
def test_bad_settings_fail_in_one_line_before_torch_or_transformers_is_imported(args, expected, tmp_path):
    """Every command checks all of its settings before ``jobs`` (and with it torch, transformers and
    peft: seconds of loading) is imported, so a typo costs well under a second."""
    out = subprocess.run([sys.executable, "-c", MAIN_THEN_LIST_HEAVY_IMPORTS, *args], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "EMPO2_RUNS": str(tmp_path)}, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("empo2-lite: error: ") and expected in line
    assert out.stdout.strip().splitlines()[-1] == "[]"  # none of HEAVY_MODULES was imported


def test_eval_passes_the_baselines_seed_and_defaults_it_to_0(monkeypatch):
    from empo2_lite import jobs
    from empo2_lite.__main__ import main

    seeds = []
    monkeypatch.setattr(jobs, "baseline", lambda *args, seed, **kwargs: seeds.append(seed) or {})
    base = ["eval", "--baseline", "naive", "--task", "find-animal", "--preset", "cpu-smoke"]
    assert main([*base, "--seed", "2"]) == 0 and main(base) == 0
    assert seeds == [2, 0]

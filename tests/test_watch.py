"""Watching a run's agent: ``play --run`` and the before/after transcripts (``empo2_lite/watch.py``).

Episodes replay recorded ScienceWorld transitions (no Java) with scripted actions; the transcript
is checked against a hand-built trajectory.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from dataclasses import replace

from empo2_lite import watch
from empo2_lite.config import apply_overrides, preset
from empo2_lite.prompts import STEP_REQUEST, step_user_message
from empo2_lite.runs import RunDir
from empo2_lite.trajectory import Trajectory, Turn
from replay_pool import ReplayPool
from scripted import ScriptedSampler

TASK = "identify-life-stages-2"


def a_turn(action: str, score: int, said: str | None = None, tips: tuple[str, ...] = (), message: str = "") -> Turn:
    return Turn(user_message=message, tips=tips, response_ids=[1], logprobs=[0.0], response_text=said or action,
                raw_action=said or action, action=action, reward=0, score=score, finish="newline")


def test_the_transcript_pairs_each_command_with_what_came_back():
    turns = [a_turn("look around", 0, tips=("open doors first (that attempt did 'look around' here and ended with score 0/100)",),
                    message="You are in the kitchen."),
             a_turn("focus on red box", -100, said="focus on the red box", message=step_user_message("A room with a red box."))]
    episode = Trajectory(TASK, 6, 0, 0, turns=turns, score=-100, end_reason="failed",
                         final_message=step_user_message("You focus on the red box."))
    lines = watch.transcript(episode).splitlines()
    assert lines[0] == f"== {TASK}, variation 6"
    assert lines[1].startswith("     tip: open doors first")
    assert lines[2:5] == ["[ 1] > look around", "      A room with a red box.", "      score 0"]
    assert lines[5] == "[ 2] > focus on red box   (wrote 'focus on the red box')"
    assert lines[6:8] == ["      You focus on the red box.", "      score -100"]
    assert lines[-1] == "== ended: failed, final score -100"
    assert STEP_REQUEST not in "\n".join(lines)


@pytest.fixture()
def trained_run(tmp_path, monkeypatch):
    """A cpu-smoke run (tiny model) with a checkpoint, and episodes scripted to "look around"."""
    from peft import get_peft_model_state_dict

    from empo2_lite.policy import load_policy

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    config = apply_overrides(preset("cpu-smoke"), {"task": TASK, "name": "trained", "iterations": 1})
    run = RunDir.named("trained")
    run.start(config)
    run.save_checkpoint(1, get_peft_model_state_dict(load_policy(config.policy).model), {}, {})
    calls = []
    real = watch.collect_rollouts

    def scripted(policy, pool, specs, config=None, retrieve=None, **kwargs):
        calls.append({"adapter": policy.has_adapter, "memory": retrieve is not None, "temperature": config.temperature,
                      "variations": [spec.variation for spec in specs]})
        sampler = ScriptedSampler(policy, {"life stages": ["look around"] * config.max_steps})
        return real(policy, pool, specs, config, retrieve=retrieve, sampler=sampler, **kwargs)

    monkeypatch.setattr(watch, "collect_rollouts", scripted)
    return run, calls


def test_a_run_is_watched_with_its_adapter_or_untrained_on_a_test_variation(trained_run):
    run, calls = trained_run
    replay = lambda size, config=None: ReplayPool(size)  # noqa: E731
    trained = watch.watch_run(run.path, make_pool=replay)
    untrained = watch.watch_run(run.path, variation=7, untrained=True, temperature=0.0, make_pool=replay)
    assert (trained.variation, untrained.variation) == (6, 7)  # the first test variation by default
    assert [turn.action for turn in trained.turns] == ["look around"] * 4 and trained.end_reason == "max_steps"
    assert calls == [{"adapter": True, "memory": False, "temperature": 0.4, "variations": [6]},
                     {"adapter": False, "memory": False, "temperature": 0.0, "variations": [7]}]
    with pytest.raises(ValueError, match="with_memory: the memory belongs to the trained run"):
        watch.watch_run(run.path, untrained=True, with_memory=True, make_pool=replay)


def test_untrained_means_without_the_warm_start_too(trained_run, tmp_path, monkeypatch):
    """A run started from a warm start: ``untrained`` loads the base model with neither adapter,
    ``warm_start_only`` the base model with the warm start merged in and no RL adapter."""
    run, calls = trained_run
    warm = tmp_path / "warm"
    warm.mkdir()
    recorded = json.loads((run.path / "config.json").read_text())
    (warm / "config.json").write_text(json.dumps(recorded))
    recorded["policy"]["init_adapter"] = str(warm)
    (run.path / "config.json").write_text(json.dumps(recorded))
    assert run.config().policy.init_adapter == str(warm)
    loaded = []
    real_load = __import__("empo2_lite.policy", fromlist=["load_policy"]).load_policy
    monkeypatch.setattr("empo2_lite.policy.load_policy",
                        lambda config, rollout=None: loaded.append(config) or real_load(replace(config, init_adapter="")))
    replay = lambda size, config=None: ReplayPool(size)  # noqa: E731
    watch.watch_run(run.path, untrained=True, make_pool=replay)
    watch.watch_run(run.path, warm_start_only=True, make_pool=replay)
    assert [(config.lora_rank, config.init_adapter) for config in loaded] == [(0, ""), (0, str(warm))]
    with pytest.raises(ValueError, match="choose one"):
        watch.watch_run(run.path, untrained=True, warm_start_only=True, make_pool=replay)


def test_warm_start_only_needs_a_run_that_started_from_one(trained_run):
    run, _ = trained_run
    with pytest.raises(ValueError, match="--warm-start-only: trained did not start from a warm start"):
        watch.watch_run(run.path, warm_start_only=True, make_pool=lambda size, config=None: ReplayPool(size))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "empo2_lite", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, expected", [
    (["--run", "nope", "--task", "find-animal", "--variation", "225"], "--run: no run named 'nope'"),
    (["--run", "nope", "--task", "find-animal", "--variation", "0"], "not a test variation of find-animal"),
    (["--run", "nope", "--task", "find-animal", "--variation", "225", "--memory", "--untrained"],
     "--memory: the memory belongs to the trained run"),
    (["--run", "nope", "--task", "find-animal", "--variation", "225", "--untrained", "--warm-start-only"],
     "--untrained, --warm-start-only: choose one"),
    (["--gold", "--task", "find-animal", "--variation", "0", "--memory"], "--memory/--untrained/--warm-start-only: only with"),
    (["--gold", "--task", "find-animal", "--variation", "0", "--warm-start-only"], "only with --run NAME"),
])
def test_bad_play_run_input_is_one_clear_line(args, expected, tmp_path):
    out = subprocess.run([sys.executable, "-m", "empo2_lite", "play", *args], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ, "EMPO2_RUNS": str(tmp_path)})
    assert out.returncode == 2 and "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0]

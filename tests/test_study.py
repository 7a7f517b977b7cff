"""The study (``empo2_lite/study``) without a GPU, a model or Java: the declared plan and its
refusals, the pieces of each phase, the time arithmetic, the estimate, the choice on dev, the
scheduler (k processes at a time, killed at the phase's end and when the study is interrupted),
the lock, the archive, the record of the shipped CPU study, and whole studies (also resumed) whose
pieces are stand-ins that write what real pieces write. The real thing on a CPU is ``--rehearse``
(``test_the_rehearsal``, with EMPO2_REHEARSE=1: about two minutes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import pytest
import yaml

from empo2_lite import jobs
from empo2_lite.config import ConfigError
from empo2_lite.runs import RunDir, runs_under
from empo2_lite.study import estimate, parts, phases, pieces, report, runner, schedule
from empo2_lite.study.plan import PLANS, read_plan

ROOT = Path(__file__).resolve().parents[1]
GPU_PLAN, CPU_PLAN = PLANS / "gpu.yaml", PLANS / "cpu.yaml"


def test_the_plan_declares_the_screening_and_the_rehearsal_shrinks_it():
    plan = read_plan()
    assert (plan.preset, plan.task, plan.algos, plan.seeds) == ("gpu-learn", "find-non-living-thing",
                                                               ["grpo", "gigpo", "empo2"], [0, 1, 2])
    assert plan.screen["setting"] == "update.learning_rate" and plan.screen["values"] == [3e-4, 1e-3]
    assert plan.references == {"main": {}, "reference-d0": {"rollout.demonstrations": 0}}
    rehearsal = read_plan(rehearse=True, budget_s=90, k=None)
    assert (rehearsal.preset, rehearsal.seeds, rehearsal.budget_s, rehearsal.k) == ("cpu-smoke", [0], 90, 3)
    assert rehearsal.screen == plan.screen  # the same screening, on the tiny model
    changed = read_plan(settings={"rollout.engine": "kv-cache"})
    assert changed.overrides == {**plan.overrides, "rollout.engine": "kv-cache"}
    with pytest.raises(ConfigError, match="rollout.engine: 'warp' is not allowed"):
        read_plan(settings={"rollout.engine": "warp"})


@pytest.mark.parametrize("change, message", [
    ({"screen": {"setting": "update.learning_rate", "values": [-1.0], "seed": 1}}, "update.learning_rate: -1.0"),
    ({"references": {"reference-d0": {}}}, "references: needs 'main'"),
    ({"algos": ["grpo", "grpo"]}, "^algos: grpo given twice"),
    ({"k": 0}, "^k: 0 is not allowed; it must be an integer >= 1"),
    ({"bugdet_s": 10}, "^bugdet_s: not a key of a study plan; the keys are: preset, algos"),
])
def test_a_plan_that_cannot_run_is_refused_in_one_line(tmp_path, change, message):
    values = {**yaml.safe_load(GPU_PLAN.read_text()), **change}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=message):
        read_plan(path)


def test_each_phase_has_its_pieces(tmp_path):
    plan = read_plan()
    screening = phases.screening_pieces(plan, tmp_path, 60.0)
    assert [piece.name for piece in screening] == ["grpo-0.0003", "grpo-0.001", "gigpo-0.0003", "gigpo-0.001",
                                                   "empo2-0.0003", "empo2-0.001"]
    spec = screening[1].spec
    assert (spec["split"], spec["seed"], spec["train_seconds"], spec["root"]) == ("dev", 100, 60.0, str(tmp_path / "screen"))
    assert spec["train_until"] is None
    assert spec["overrides"] == {"eval_every": 0, "checkpoint_every": 1, "update.learning_rate": 1e-3, "iterations": 1000}
    [first, *_] = references = phases.reference_pieces(plan, tmp_path)
    assert [piece.name for piece in references] == ["naive-s0", "naive-s1", "naive-s2"]
    assert [entry["root"] for entry in first.spec["evaluations"]] == [str(tmp_path / "main"), str(tmp_path / "reference-d0")]
    assert first.spec["evaluations"][1]["overrides"]["rollout.demonstrations"] == 0
    chosen = {algo: {"update.learning_rate": value} for algo, value in (("grpo", 1e-3), ("gigpo", 3e-4), ("empo2", 1e-3))}
    compared = phases.compared_pieces(plan, tmp_path, chosen, 12, 95.0)
    assert [piece.name for piece in compared][:4] == ["grpo-s0", "grpo-s1", "grpo-s2", "gigpo-s0"]
    assert compared[3].spec["overrides"]["update.learning_rate"] == 3e-4 and compared[3].spec["split"] == "test"
    assert {piece.spec["overrides"]["iterations"] for piece in compared} == {12}


def test_the_time_arithmetic():
    assert phases.training_seconds(110, pieces=9, k=9, evaluation_s=45) == 65      # one wave
    assert phases.training_seconds(110, pieces=7, k=5, evaluation_s=20) == 35      # two waves
    assert phases.iterations_for(95, overhead_s=20, iteration_s=6.0) == 11         # 75 s / 6.6 s
    assert phases.iterations_for(10, overhead_s=20, iteration_s=6.0) == 0


def test_phase_costs_take_the_slowest_algorithm_and_the_longest_overhead():
    plan = read_plan()
    outcomes = {"grpo-0.0003": {"started": 0, "trained": 60, "evaluated": 90, "iteration_seconds": [5, 6, 9]},
                "empo2-0.001": {"started": 0, "trained": 62, "evaluated": 100, "iteration_seconds": [8, 8]},
                "gigpo-0.001": {"started": 0, "seconds": 105, "trained": 55, "iteration_seconds": [7]},  # killed
                "naive-s0": {"started": 0, "trained": 0, "evaluated": 40}}
    assert phases.phase_costs(plan, outcomes) == {"iteration_s": 8, "overhead_s": 48, "evaluation_s": 50}
    with pytest.raises(ConfigError, match="no screening run finished an iteration"):
        phases.phase_costs(plan, {"naive-s0": outcomes["naive-s0"]})


def test_the_choice_is_the_best_dev_return_with_ties_to_the_first_value(tmp_path):
    plan = read_plan()
    dev = {("grpo", 3e-4): 1.0, ("grpo", 1e-3): 5.0, ("gigpo", 3e-4): 2.0, ("gigpo", 1e-3): 2.0}
    for (algo, value), result in dev.items():
        run = RunDir(tmp_path / phases.screen_name(algo, value))
        run.append_eval({"split": "dev", "return_mean": result})
        run.append_eval({"split": "test", "return_mean": 99.0})  # never a choice
    choices = phases.choose(plan, tmp_path)
    assert choices["grpo"] == {"value": 1e-3, "overrides": {"update.learning_rate": 1e-3},
                               "dev_returns": {3e-4: 1.0, 1e-3: 5.0}, "dev_success": {3e-4: None, 1e-3: None},
                               "screened": True}
    assert choices["gigpo"]["value"] == 3e-4
    assert choices["empo2"] == {"value": "preset", "overrides": {"update.learning_rate": 3e-4},  # the preset's
                                "dev_returns": {3e-4: None, 1e-3: None}, "dev_success": {3e-4: None, 1e-3: None},
                                "screened": False}


def test_pieces_run_k_at_a_time_and_the_phase_end_kills_or_skips_the_rest(tmp_path, capsys):
    def command(piece):
        script = ("import json, sys, time; spec = json.loads(sys.argv[1]); time.sleep(spec['sleep']); "
                  "open(spec['report'], 'w').write(json.dumps({'iterations': 2}))")
        return [sys.executable, "-c", script, json.dumps(piece.spec)]

    pieces = [schedule.Piece(name, {"sleep": sleep}) for name, sleep in (("a", 0.1), ("b", 30), ("c", 0.1), ("d", 0.1))]
    began = time.time()
    outcomes = schedule.run_pieces(pieces, 2, began + 1.5, tmp_path, command=command)
    assert time.time() - began < 2.5
    assert outcomes["a"]["exit"] == 0 and outcomes["a"]["iterations"] == 2 and outcomes["c"]["exit"] == 0
    assert outcomes["b"]["exit"] is None and "iterations" not in outcomes["b"]  # killed at the phase's end
    assert outcomes["d"]["exit"] == 0 or outcomes["d"].get("not_started")
    assert "b: killed at the phase's end" in capsys.readouterr().out


FAKE_PIECE = textwrap.dedent("""
    import json, sys, time
    from empo2_lite.runs import RunDir, runs_under
    spec = json.loads(sys.argv[1])
    roots = [spec["root"]] if spec["kind"] == "train" else [entry["root"] for entry in spec["evaluations"]]
    for root in roots:
        with runs_under(root):
            run = RunDir.named(spec["name"])
            run.path.mkdir(parents=True, exist_ok=True)
            (run.path / "config.json").write_text("{}")
            score = 10.0 * spec["overrides"]["update.learning_rate"] if spec["kind"] == "train" else 0.0
            run.append_eval({"split": spec.get("split", "test"), "return_mean": score})
    now = time.time()
    report = {"started": now - 3, "trained": now - 1, "evaluated": now, "iteration_seconds": [1.0, 1.0]}
    open(spec["report"], "w").write(json.dumps(report if spec["kind"] == "train" else {}))
""")


def test_a_study_chooses_on_dev_then_sizes_and_runs_the_compared_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(phases, "prepare", lambda plan: None)
    plan = read_plan(budget_s=20)
    plan.pack_reserve_s, plan.eval_reserve_s = 2, 1
    record: dict = {}
    phases.run_study(plan, tmp_path, time.time(), record,
                     command=lambda piece: [sys.executable, "-c", FAKE_PIECE, json.dumps(piece.spec)])
    assert {algo: choice["value"] for algo, choice in record["choices"].items()} == {algo: 1e-3 for algo in plan.algos}
    assert record["costs"] == pytest.approx({"iteration_s": 1.0, "overhead_s": 0.0, "evaluation_s": 1.0}, abs=1e-3)
    assert record["phase2"]["iterations"] in {int(record["phase2"]["train_seconds"] / 1.1) + shift for shift in (-1, 0)}
    assert len(record["phase2"]["pieces"]) == 9 and "gigpo-s2" in record["phase2"]["pieces"]
    assert all(piece["exit"] == 0 for phase in ("phase1", "phase2") for piece in record[phase]["pieces"].values())
    assert (tmp_path / "main" / "naive-s2").is_dir() and (tmp_path / "reference-d0" / "naive-s2").is_dir()
    [archive] = report.pack(tmp_path, tmp_path / "out")
    with tarfile.open(archive) as packed:
        names = packed.getnames()
    assert "gpu-study/main/gigpo-s0/eval.jsonl" in names and "gpu-study/logs/gigpo-s0.log" in names


def test_the_archive_leaves_out_checkpoints_tensorboard_and_step_logs(tmp_path):
    run = tmp_path / "work" / "main" / "grpo-s0"
    for folder in ("checkpoints/iter-000001", "tensorboard"):
        (run / folder).mkdir(parents=True)
        (run / folder / "file").write_text("x")
    (run / "metrics.jsonl").write_text("{}\n")
    (run / "steps.jsonl").write_text("{}\n")
    [archive] = report.pack(tmp_path / "work", tmp_path / "out")
    with tarfile.open(archive) as packed:
        assert sorted(packed.getnames()) == ["gpu-study", "gpu-study/main", "gpu-study/main/grpo-s0",
                                             "gpu-study/main/grpo-s0/metrics.jsonl"]


def test_an_archive_too_large_to_come_back_whole_comes_back_in_parts(tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "memory.jsonl").write_bytes(os.urandom(5_000))  # does not compress
    written = report.pack(tmp_path / "work", tmp_path / "out", largest=2_000)
    assert len(written) == 3 and all(path.stat().st_size <= 2_000 for path in written)
    assert not (tmp_path / "out" / "gpu-study.tgz").exists()
    joined = parts.join_parts([path.parent for path in written], tmp_path / "gpu-study.tgz")
    with tarfile.open(joined) as packed:
        assert packed.extractfile("gpu-study/memory.jsonl").read() == (tmp_path / "work" / "memory.jsonl").read_bytes()


@pytest.mark.parametrize("train_seconds, until_in", [(0.5, None), (1000.0, 0.5)])  # its own clock, or the phase's
def test_a_piece_the_clock_stops_ends_at_its_checkpoint_and_is_evaluated_there(tmp_path, monkeypatch, train_seconds,
                                                                               until_in):
    import torch

    evaluated = []

    def slow_train(config, progress, **options):  # one iteration, then one that outlasts the clock
        run = RunDir.named(config.name)
        run.start(config)
        run.append_metrics({"iteration": 0, "time/rollout": 1.5, "time/update": 0.5})
        run.save_checkpoint(1, {"w": torch.zeros(1)}, {}, {})
        run.append_metrics({"iteration": 1, "time/rollout": 9.0})
        time.sleep(10)

    def final_evaluation(path, policy, split, **options):
        evaluated.append((Path(path).name, RunDir(path).config().iterations, split))
        return {"return_mean": 1.0}

    monkeypatch.setattr(jobs, "train", slow_train)
    monkeypatch.setattr(jobs, "final_evaluation", final_evaluation)
    spec = {"name": "grpo-0.001", "preset": "cpu-smoke", "task": "find-animal", "algo": "grpo", "seed": 100,
            "split": "dev", "train_seconds": train_seconds, "train_until": until_in and time.time() + until_in,
            "overrides": {"iterations": 1000}, "report": str(tmp_path / "r.json"), "root": str(tmp_path)}
    outcome = pieces.train_piece(spec, time.time())
    assert (outcome["cut"], outcome["iterations"], outcome["iteration_seconds"]) == (True, 1, [2.0])
    assert evaluated == [("grpo-0.001", 1, "dev")]
    assert outcome["started"] <= outcome["trained"] <= outcome["evaluated"]
    written = json.loads((tmp_path / "r.json").read_text())  # before the evaluation: training's cost survives a kill
    assert written == {key: value for key, value in outcome.items() if key != "evaluated"}


def test_the_cpu_plan_screens_four_settings_with_grpo_for_fixed_iterations(tmp_path):
    plan = read_plan(CPU_PLAN)
    assert (plan.name, plan.preset, plan.task, plan.k, plan.iterations) == ("cpu-study", "cpu-learn", "find-animal", 2, 6)
    screening = phases.screening_pieces(plan, tmp_path, 500.0)
    assert [piece.name for piece in screening] == ["grpo-preset", "grpo-lr3e-4", "grpo-d0", "grpo-g4x2"]
    assert screening[3].spec["overrides"] == {"eval_every": 0, "checkpoint_every": 1, "group_size": 4,
                                              "variations_per_iteration": 2, "iterations": 3}
    assert {piece.spec["split"] for piece in screening} == {"dev"}
    references = phases.reference_pieces(plan, tmp_path, {"rollout.max_steps": 10, "rollout.demonstrations": 2})
    main, without = references[0].spec["evaluations"]
    assert main["overrides"]["rollout.max_steps"] == 10 and main["overrides"]["rollout.demonstrations"] == 2
    assert without["overrides"]["rollout.max_steps"] == 10 and without["overrides"]["rollout.demonstrations"] == 0


@pytest.mark.parametrize("screen, message", [
    ({"candidates": {"a": {}}, "algos": ["grpo"], "seed": 1}, "without screen.shared every algorithm needs"),
    ({"candidates": {"a": {}}, "algos": ["ppo"], "shared": True, "seed": 1}, "screen.algos: ppo is not in algos"),
    ({"candidates": {"a": {"group_size": 0}}, "algos": ["grpo"], "shared": True, "seed": 1}, "group_size"),
    ({"candidates": {}, "algos": ["grpo"], "shared": True, "seed": 1}, "give at least one value"),
])
def test_a_screening_that_cannot_run_is_refused_in_one_line(tmp_path, screen, message):
    values = {**yaml.safe_load(CPU_PLAN.read_text()), "screen": screen}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=message):
        read_plan(path)


def test_a_shared_choice_is_the_best_mean_dev_return_over_the_screening_algorithms(tmp_path):
    plan = read_plan(CPU_PLAN)
    plan.screen["algos"] = ["grpo", "gigpo"]
    dev = {("grpo", "preset"): 4.0, ("gigpo", "preset"): 0.0, ("grpo", "d0"): 1.0, ("gigpo", "d0"): 2.0,
           ("grpo", "g4x2"): 3.0}  # g4x2: 3.0 from grpo alone beats preset's mean 2.0 and d0's 1.5
    for (algo, key), result in dev.items():
        RunDir(tmp_path / phases.screen_name(algo, key)).append_eval({"split": "dev", "return_mean": result})
    choices = phases.choose(plan, tmp_path)
    assert set(choices) == {"empo2", "gigpo", "grpo"} and len({id(choice) for choice in choices.values()}) == 1
    assert choices["empo2"]["value"] == "g4x2"
    assert choices["empo2"]["overrides"] == {"group_size": 4, "variations_per_iteration": 2}
    assert choices["empo2"]["dev_returns"] == {"preset": 2.0, "lr3e-4": None, "d0": 1.5, "g4x2": 3.0}


FAKE_CPU_PIECE = textwrap.dedent("""
    import json, sys, time
    from empo2_lite.runs import RunDir, runs_under
    spec = json.loads(sys.argv[1])
    entries = ([(spec["root"], spec["overrides"])] if spec["kind"] == "train"
               else [(entry["root"], entry["overrides"]) for entry in spec["evaluations"]])
    for root, overrides in entries:
        with runs_under(root):
            run = RunDir.named(spec["name"])
            run.path.mkdir(parents=True, exist_ok=True)
            (run.path / "config.json").write_text(json.dumps(overrides))
            score = 10.0 if overrides.get("rollout.demonstrations") == 0 else 1.0
            run.append_eval({"split": spec.get("split", "test"), "return_mean": score})
    now = time.time()
    report = {"started": now - 3, "trained": now - 1, "evaluated": now, "iteration_seconds": [1.0]}
    open(spec["report"], "w").write(json.dumps(report if spec["kind"] == "train" else {}))
""")


def test_a_shared_screening_runs_the_references_after_the_choice_with_its_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(phases, "prepare", lambda plan: None)
    plan = read_plan(CPU_PLAN, budget_s=40, k=4)
    plan.pack_reserve_s, plan.eval_reserve_s = 2, 1
    record: dict = {}
    phases.run_study(plan, tmp_path, time.time(), record,
                     command=lambda piece: [sys.executable, "-c", FAKE_CPU_PIECE, json.dumps(piece.spec)])
    assert sorted(record["phase1"]["pieces"]) == ["grpo-d0", "grpo-g4x2", "grpo-lr3e-4", "grpo-preset"]  # no reference
    assert {algo: choice["value"] for algo, choice in record["choices"].items()} == dict.fromkeys(plan.algos, "d0")
    assert record["phase2"]["iterations"] == 6  # fixed by the plan, not sized
    assert sorted(record["phase2"]["pieces"]) == sorted([*(f"{algo}-s{seed}" for algo in plan.algos for seed in (0, 1, 2)),
                                                          "naive-s0", "naive-s1", "naive-s2"])
    assert all(piece["exit"] == 0 for piece in record["phase2"]["pieces"].values())
    compared = json.loads((tmp_path / "main" / "gigpo-s1" / "config.json").read_text())
    reference = json.loads((tmp_path / "main" / "naive-s1" / "config.json").read_text())
    assert compared["rollout.demonstrations"] == reference["rollout.demonstrations"] == 0  # played as the runs are
    assert compared["iterations"] == 6


def test_a_study_started_again_plays_no_reference_twice(tmp_path, monkeypatch, capsys):
    played = []

    def baseline(kind, task, preset_name, **options):
        played.append(options["name"])
        RunDir.named(options["name"]).append_eval({"split": "test", "return_mean": 0.0})
        return {"return_mean": 0.0}

    monkeypatch.setattr(jobs, "baseline", baseline)
    spec = {"kind": "reference", "baseline": "naive", "name": "naive-s0", "task": "find-animal", "preset": "cpu-learn",
            "seed": 0,
            "evaluations": [{"root": str(tmp_path / "main"), "overrides": {}},
                            {"root": str(tmp_path / "reference-d0"), "overrides": {"rollout.demonstrations": 0}}]}
    pieces.reference_piece(spec, time.time())
    assert pieces.PIECE_KINDS["reference"].done(spec)  # a resumed study does not even start it
    pieces.reference_piece(spec, time.time())
    assert played == ["naive-s0", "naive-s0"]  # once per folder, not again
    assert capsys.readouterr().out.count("evaluated before") == 2


def fake(script: str):
    """A piece command running ``script`` (a stand-in for ``empo2_lite.study.pieces``) on the spec."""
    return lambda piece: [sys.executable, "-c", script, json.dumps(piece.spec)]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m empo2_lite`` in a fresh interpreter that fails if torch was imported."""
    code = ("import sys; from empo2_lite.__main__ import main; status = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(status)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("change, message", [
    ({"bugdet_s": 10}, "bugdet_s: not a key of a study plan; the keys are: preset, algos, seeds"),
    ({"algos": None}, "algos: missing from the plan; a plan needs preset, algos, seeds, references, budget_s"),
    ({"algos": []}, "algos: give at least one algorithm of: empo2, grpo"),
    ({"screen": {"candidates": {}, "algos": ["grpo"], "shared": True, "seed": 1}},
     "screen: give at least one value (values) or candidate (candidates)"),
    ({"budget_s": 60}, "budget_s: 60 s leave the compared runs no iteration at ~10 s each (gpu-learn"),
    ({"budget_s": 200, "iterations": 50}, "budget_s: the plan needs ~"),
])
def test_a_plan_that_cannot_run_is_refused_in_one_line_before_anything_runs(tmp_path, change, message):
    values = {**yaml.safe_load(GPU_PLAN.read_text()), **change}
    values = {key: value for key, value in values.items() if value is not None}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(values))
    out = run_cli("study", "--plan", str(path), "--work", str(tmp_path / "work"))
    assert out.returncode == 2, out.stdout + out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("empo2-lite: error: ") and message in line
    assert not (tmp_path / "work").exists()  # nothing ran, nothing was written


def test_the_kit_lists_the_study_and_compare_stays_a_command():
    from empo2_lite.__main__ import build_parser

    text = build_parser().format_help()
    assert "study" in text and "compare" in text


def test_the_estimate_prints_each_phase_and_runs_nothing(tmp_path):
    out = run_cli("study", "--plan", "cpu", "--estimate", "--work", str(tmp_path / "work"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("cpu-study: 3 algorithm(s) x 3 seed(s), 6 iteration(s) each at ~70 s (cpu-learn")
    assert [line.split()[0] for line in lines[1:]] == ["prepare", "phase", "phase", "pack", "total"]
    assert not (tmp_path / "work").exists()


def test_the_estimate_sizes_phase_2_as_the_study_does():
    plan = read_plan(GPU_PLAN)
    found = estimate.estimate(plan)
    left = plan.budget_s - plan.pack_reserve_s - found.phases["prepare"] - found.phases["phase 1"]
    assert found.phases["phase 1"] == pytest.approx(0.35 * (310 - 15 - 20))  # the screening's share: a time box
    # 9 runs in one wave; gpu-learn: 10 s per iteration, 20 test variations x 2 episodes x 0.4 s = 16 s of test
    assert found.iterations == phases.iterations_for(left - 16 * phases.MARGIN, estimate.START_S, 10.0) == 12
    assert found.phases["phase 2"] == pytest.approx(estimate.START_S + 12 * 10 + 16)
    assert estimate._waves([3, 1, 2, 5, 4], 2) == 3 + 5 + 4
    assert estimate.estimate(read_plan(GPU_PLAN, rehearse=True)).iterations >= 1  # the rehearsal is not refused


def test_the_shipped_cpu_study_record_is_read_as_a_plan_the_study_would_continue(tmp_path):
    record = report.read_record(ROOT / "data" / "sample_runs" / "cpu-study")
    assert asdict(record["plan"]) == asdict(read_plan("cpu"))  # the shipped plan made it
    phases.check_same_study(read_plan("cpu", budget_s=600), {"plan": asdict(record["plan"])}, tmp_path)
    assert record["choices"]["grpo"]["value"] == "g4x2" and record["phase2"]["iterations"] == 6
    with pytest.raises(ConfigError, match="^--work: .* holds a study of another plan .*differs in seeds"):
        phases.check_same_study(read_plan("cpu", seeds=[0, 1]), {"plan": asdict(record["plan"])}, tmp_path)


def test_a_second_study_in_the_same_folder_is_refused(tmp_path):
    with runner.locked(tmp_path):
        with pytest.raises(ConfigError, match=f"^--work: a study is running in {tmp_path} already \\(pid {os.getpid()}\\)"):
            runner.run(read_plan(CPU_PLAN), tmp_path)
    with runner.locked(tmp_path):  # released when the first ended
        pass


HANGING_PIECE = textwrap.dedent("""
    import json, os, subprocess, sys, time
    spec = json.loads(sys.argv[1])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a JVM, say
    open(spec["pids"] + "/" + spec["name"], "w").write(f"{os.getpid()} {child.pid}")
    time.sleep(120)
""")


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_study_ends_every_piece_it_started(tmp_path, how):
    pids = tmp_path / "pids"
    pids.mkdir()
    # A study run from a terminal, where Ctrl-C reaches it: a shell that starts a job in the background
    # (`cmd &`, as a CI script may be) has it ignore SIGINT, and Python then installs no handler.
    script = textwrap.dedent(f"""
        import json, signal, sys, time
        from pathlib import Path
        from empo2_lite.study import runner, schedule
        signal.signal(signal.SIGINT, signal.default_int_handler)
        pieces = [schedule.Piece(name, {{"pids": {str(pids)!r}, "name": name}}) for name in ("a", "b", "c")]
        command = lambda piece: [sys.executable, "-c", {HANGING_PIECE!r}, json.dumps(piece.spec)]
        with runner.interrupted_by_sigterm():
            schedule.run_pieces(pieces, 2, time.time() + 300, Path({str(tmp_path)!r}), command=command)
    """)
    study = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.1)
    started = [int(pid) for path in pids.iterdir() for pid in path.read_text().split()]
    assert len(started) == 4  # two pieces (k = 2), each with a child of its own
    study.send_signal(how)
    study.wait(timeout=30)
    time.sleep(0.5)
    alive = [pid for pid in started if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    for pid in alive:  # clean up before failing
        os.kill(pid, signal.SIGKILL)
    assert not alive, f"pieces outlived the study: {alive}; {study.stderr.read().decode()[-2000:]}"
    assert sorted(path.name for path in pids.iterdir()) == ["a", "b"]  # c never started


def test_pieces_a_killed_study_left_running_are_ended_by_the_next_one(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    piece = subprocess.Popen([*sleeper, "empo2_lite.study.pieces"], start_new_session=True)  # a piece, by its command
    other = subprocess.Popen(sleeper, start_new_session=True)  # a process that took a piece's old pid since
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / f"grpo-s0{schedule.PID_SUFFIX}").write_text(str(piece.pid))
    (logs / f"grpo-s1{schedule.PID_SUFFIX}").write_text(str(other.pid))
    try:
        assert schedule.end_leftover_pieces(logs) == [piece.pid]
        assert piece.wait(timeout=10) == -signal.SIGKILL and other.poll() is None
        assert not list(logs.glob("*.pid"))
    finally:
        other.kill()
        other.wait()


def test_a_compared_run_the_clock_cut_is_trained_on_and_tested_after_a_resume(tmp_path, monkeypatch):
    import torch

    tested, calls = [], []

    def train(config, progress, **options):  # checkpoints each iteration; the first call outlasts its clock
        calls.append(config.iterations)
        run = RunDir.named(config.name)
        if not run.exists():
            run.start(config)
        for iteration in range(run.iterations_done(), config.iterations):
            run.append_metrics({"iteration": iteration, "time/rollout": 1.0})
            run.save_checkpoint(iteration + 1, {"w": torch.zeros(1)}, {}, {})
            if iteration == 1 and len(calls) == 1:
                time.sleep(10)
        return jobs.Trained(run, "trained")

    def final_evaluation(path, policy, progress=False, *, split, **options):
        tested.append((RunDir(path).config().iterations, split))
        return {"return_mean": 1.0}

    monkeypatch.setattr(jobs, "train", train)
    monkeypatch.setattr(jobs, "final_evaluation", final_evaluation)
    spec = {"kind": "train", "name": "grpo-s0", "preset": "cpu-smoke", "task": "find-animal", "algo": "grpo",
            "seed": 0, "split": "test", "train_seconds": 0.5, "train_until": None, "root": str(tmp_path),
            "overrides": {"iterations": 4}}
    first = pieces.train_piece(spec, time.time())
    run = RunDir(tmp_path / "grpo-s0")
    assert (first["cut"], first["iterations"], tested) == (True, 2, [])  # not tested at the cut
    assert run.config().iterations == 4 and not pieces.PIECE_KINDS["train"].done(spec)  # still a run of 4
    second = pieces.train_piece({**spec, "train_seconds": 60.0}, time.time())
    assert (second["cut"], second["iterations"], tested) == (False, 4, [(4, "test")])
    assert [row["iteration"] for row in run.read_metrics()] == [0, 1, 2, 3]


def test_a_study_run_again_continues_where_it_stopped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(phases, "prepare", lambda plan: None)
    monkeypatch.setattr(runner, "collect", lambda plan, work: {"tables": {}})  # stand-in runs have no metrics
    plan = read_plan(CPU_PLAN, budget_s=40, k=4)
    plan.pack_reserve_s, plan.eval_reserve_s = 2, 1
    started = []

    def command(piece):
        started.append(piece.name)
        return fake(FAKE_CPU_PIECE)(piece)

    record = runner.run(plan, tmp_path, command=command, check_estimate=False, out=tmp_path / "out")
    assert len(started) == 4 + 9 + 3 and record["phase1"]["done"] and not record["phase2"]["untested"]
    assert (tmp_path / "study.json").exists() and (tmp_path / "out" / "cpu-study.tgz").exists()
    assert "== " not in capsys.readouterr().out  # the library prints no tables; the command does
    started.clear()
    again = runner.run(plan, tmp_path, command=command, check_estimate=False)
    assert started == []  # phase 1 read back, every piece done before
    assert len(again["calls"]) == 2 and again["choices"] == record["choices"]
    assert again["phase2"]["pieces"] == record["phase2"]["pieces"]  # the first call's timings kept
    assert "phase 1: done before" in capsys.readouterr().out


def test_a_reference_that_phase_1_did_not_finish_is_played_after_a_resume(tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(phases, "prepare", lambda plan: None)
    monkeypatch.setattr(runner, "collect", lambda plan, work: {"tables": {}})
    plan = read_plan(GPU_PLAN, budget_s=20)
    plan.pack_reserve_s, plan.eval_reserve_s = 2, 1
    started = []

    def command(piece):
        started.append(piece.name)
        return fake(FAKE_PIECE)(piece)

    runner.run(plan, tmp_path, command=command, check_estimate=False)
    assert "naive-s1" in started and "phase 1" not in started
    shutil.rmtree(tmp_path / "reference-d0" / "naive-s1")  # as if phase 1's end had killed it there
    started.clear()
    runner.run(plan, tmp_path, command=command, check_estimate=False)
    assert started == ["naive-s1"]  # phase 1 is not run again; its unfinished reference is
    assert pieces.PIECE_KINDS["reference"].done(phases.reference_pieces(plan, tmp_path)[1].spec)


def test_compare_is_a_plan_without_a_screening_whose_pieces_are_the_studys(tmp_path):
    from empo2_lite.study.compare import compare_plan, pieces as compare_pieces

    plan = compare_plan("cpu-smoke", [0, 1], task="find-animal", algos=["grpo"])
    references = phases.reference_pieces(plan, tmp_path)
    compared = phases.compared_pieces(plan, tmp_path, {}, None)
    assert [piece.name for piece in references + compared] == ["naive-s0", "memory-only-s0", "naive-s1",
                                                               "memory-only-s1", "grpo-s0", "grpo-s1"]
    assert sorted(piece.name for piece in references + compared) == sorted(compare_pieces([0, 1], ["grpo"]))
    assert {entry["root"] for piece in references for entry in piece.spec["evaluations"]} == {str(tmp_path)}
    assert compared[0].spec["root"] == str(tmp_path) and "iterations" not in compared[0].spec["overrides"]
    assert phases.choose(plan, tmp_path)["grpo"]["overrides"] == {}


def test_the_plans_ship_as_package_data_and_are_found_by_name(tmp_path):
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert declared["empo2_lite.study"] == ["plans/*.yaml"]
    assert sorted(path.name for path in PLANS.glob("*.yaml")) == ["cpu-solve.yaml", "cpu-twx.yaml", "cpu.yaml", "gpu.yaml"]
    assert read_plan("cpu").name == "cpu-study" and read_plan(str(CPU_PLAN)).name == "cpu-study"
    with pytest.raises(ConfigError, match="^--plan: 'gpux' is neither a file nor a shipped plan; give a YAML file "
                                          "or one of: cpu, cpu-solve, cpu-twx, gpu$"):
        read_plan("gpux")


@pytest.mark.slow
@pytest.mark.jvm
@pytest.mark.skipif(os.environ.get("EMPO2_REHEARSE") != "1", reason="about two minutes: set EMPO2_REHEARSE=1")
def test_the_rehearsal(tmp_path):
    """``study --rehearse``: the GPU plan's orchestration on a CPU with the tiny model, end to end."""
    out = run_cli("study", "--rehearse", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out"),
                  env={"EMPO2_RUNS": str(tmp_path / "runs")})
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    record = report.read_record(tmp_path / "work")
    assert record["phase1"]["done"] and record["phase2"]["iterations"] >= 1
    assert (tmp_path / "work" / "main" / "empo2-s0").is_dir() and (tmp_path / "out" / "gpu-study.tgz").exists()


def test_a_figure_that_fails_costs_one_line_not_the_study(tmp_path, monkeypatch, capsys):
    import shutil

    work = tmp_path / "cpu-study"
    shutil.copytree(ROOT / "data" / "sample_runs" / "cpu-study", work, ignore=shutil.ignore_patterns("figures"))

    def broken(*args, **kwargs):
        raise ValueError("a plot that cannot be drawn")

    monkeypatch.setattr(jobs, "all_figures", broken)
    collected = report.collect(read_plan("cpu"), work)
    assert set(collected["tables"]) == {"main", "reference-d0"}
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line == ("study: the figures were not drawn (ValueError: a plot that cannot be drawn); draw them later "
                    f"with: python -m empo2_lite plot --runs {work / 'main'}")

"""Issue #36's parts of the study (``empo2_lite/study``) without a model or Java: the probe and its
rule (golden choices on hand-made rows), the screening's choice by dev success rate then return,
the new piece kinds (probe, warm-start, ood, the warm-start reference), the plan ``cpu-solve`` and
its estimate within the budget, and a study run in parts whose pieces are stand-ins that write what
real pieces write."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from empo2_lite import jobs
from empo2_lite.config import ConfigError
from empo2_lite.runs import RunDir
from empo2_lite.study import estimate, phases, pieces, probe, runner
from empo2_lite.study.plan import PLANS, part_stages, read_plan, stages

ROOT = Path(__file__).resolve().parents[1]
SOLVE_PLAN = PLANS / "cpu-solve.yaml"


def probe_row(returns: list[float], success: float) -> dict:
    """A dev row as ``evaluate`` writes it: one episode per variation."""
    return {"split": "dev", "per_variation": {str(index): value for index, value in enumerate(returns)},
            "success_rate": success, "return_mean": sum(returns) / len(returns)}


# -- the probe's rule ---------------------------------------------------------------------------
def test_the_probe_picks_the_first_candidate_in_the_plans_order_that_meets_the_rule():
    plan = read_plan("cpu-solve")
    near = [50.0] * 5 + [10.0] * 15            # exactly 5 at 50 points: meets "at least 5"
    short = [75.0] * 4 + [8.0] * 16            # 4 at >= 50: does not
    solved = [100.0] * 10 + [60.0] * 10        # success 50%: not below 50%
    rows = {"fnlt-10-d1": probe_row(short, 0.0), "fnlt-10-d0": probe_row(solved, 0.5),
            "longest-8-d1": probe_row(near, 0.0), "longest-8-d0": probe_row(near + [], 0.05), "shortest-8-d1": None}
    choice = probe.pick(plan, rows)
    assert (choice["value"], choice["task"], choice["rule_met"]) == ("longest-8-d1", "lifespan-longest-lived", True)
    assert choice["overrides"] == {"rollout.max_steps": 8, "rollout.demonstrations": 1}
    assert choice["outcomes"]["fnlt-10-d1"] == {"episodes": 20, "at_points": 4, "success_rate": 0.0,
                                                "return_mean": 21.4, "passes": False}
    assert choice["outcomes"]["fnlt-10-d0"]["passes"] is False and choice["outcomes"]["fnlt-10-d0"]["at_points"] == 20
    assert "shortest-8-d1" not in choice["outcomes"]  # not played: not a choice


def test_when_no_probe_meets_the_rule_the_most_episodes_at_its_points_is_chosen_and_recorded_so():
    plan = read_plan("cpu-solve")
    rows = {"fnlt-10-d1": probe_row([60.0] * 3 + [0.0] * 17, 0.0), "fnlt-10-d0": probe_row([49.9] * 20, 0.0),
            "longest-8-d1": probe_row([50.0] * 4 + [-100.0] * 16, 0.0),  # 4, tied with ...
            "longest-8-d0": probe_row([100.0] * 4 + [0.0] * 16, 0.2), "shortest-8-d1": probe_row([0.0] * 20, 0.0)}
    choice = probe.pick(plan, rows)
    assert (choice["value"], choice["rule_met"]) == ("longest-8-d1", False)  # ties: the first listed
    with pytest.raises(ConfigError, match="^probe: no probe was evaluated"):
        probe.pick(plan, dict.fromkeys(rows))


def test_the_probes_choice_sets_the_task_and_settings_of_every_later_piece(tmp_path):
    plan = read_plan("cpu-solve")
    later = probe.probed(plan, {"task": "lifespan-shortest-lived", "overrides": {"rollout.max_steps": 8}})
    assert later.task == "lifespan-shortest-lived" and later.overrides["rollout.max_steps"] == 8
    [first] = phases.screening_pieces(later, tmp_path, 10.0)[:1]
    assert first.spec["task"] == "lifespan-shortest-lived" and first.spec["overrides"]["rollout.max_steps"] == 8
    assert plan.task == "find-non-living-thing"  # the plan itself is unchanged (the record keeps it)


# -- the screening's choice -----------------------------------------------------------------------
def test_the_screening_chooses_by_dev_success_rate_first_then_dev_return(tmp_path):
    plan = read_plan("cpu-solve")
    dev = {"paper": (0.10, 20.0), "ws10": (0.10, 30.0), "ws10-t07": (0.05, 60.0), "ws10-lr3e4": None}
    for key, scored in dev.items():
        if scored:
            RunDir(tmp_path / phases.screen_name("grpo", key)).append_eval(
                {"split": "dev", "success_rate": scored[0], "return_mean": scored[1]})
    choice = phases.choose(plan, tmp_path)["empo2"]
    assert choice["value"] == "ws10" and choice["overrides"] == {"warm_start": 10}  # not ws10-t07's higher return
    assert choice["dev_success"] == {"paper": 0.10, "ws10": 0.10, "ws10-t07": 0.05, "ws10-lr3e4": None}
    assert choice["dev_returns"]["ws10-t07"] == 60.0


def test_a_shared_choice_averages_success_then_return_over_the_screening_algorithms(tmp_path):
    plan = read_plan("cpu-solve")
    plan.screen["algos"] = ["grpo", "gigpo"]
    rows = {("grpo", "paper"): (0.2, 0.0), ("gigpo", "paper"): (0.0, 0.0),   # mean success 0.1
            ("grpo", "ws10"): (0.1, 50.0), ("gigpo", "ws10"): (0.1, 10.0),   # 0.1, return 30
            ("grpo", "ws10-t07"): (0.1, 90.0)}                               # 0.1 (grpo alone), 90
    for (algo, key), (success, value) in rows.items():
        RunDir(tmp_path / phases.screen_name(algo, key)).append_eval(
            {"split": "dev", "success_rate": success, "return_mean": value})
    choice = phases.choose(plan, tmp_path)["grpo"]
    assert choice["value"] == "ws10-t07"
    assert choice["dev_success"]["paper"] == pytest.approx(0.1) and choice["dev_returns"]["ws10"] == 30.0
    older = phases.best_candidate(plan, {"paper": (None, 90.0), "ws10": (0.0, 1.0), "ws10-t07": None,
                                         "ws10-lr3e4": None})
    assert older["value"] == "ws10"  # a row without a success rate counts below any


# -- the plan ------------------------------------------------------------------------------------
def test_the_cpu_solve_plan_declares_the_probe_the_screening_references_ood_and_four_parts():
    plan = read_plan("cpu-solve")
    assert (plan.preset, plan.algos, plan.seeds, plan.k, plan.iterations) == ("cpu-solve", ["empo2", "gigpo", "grpo"],
                                                                              [0, 1, 2], 1, 4)
    assert [task for _, task, _ in probe.probe_candidates(plan)] == [
        "find-non-living-thing", "find-non-living-thing", "lifespan-longest-lived", "lifespan-longest-lived",
        "lifespan-shortest-lived"]
    assert plan.probe["rule"] == {"points": 50, "at_least": 5, "success_below": 0.5}
    assert dict(phases.candidates(plan)) == {"paper": {}, "ws10": {"warm_start": 10},
                                             "ws10-t07": {"warm_start": 10, "rollout.temperature": 0.7},
                                             "ws10-lr3e4": {"warm_start": 10, "update.learning_rate": 3e-4}}
    assert plan.screen["iterations"] == 3 and plan.screen["shared"]  # the same training episodes for each
    assert plan.baselines == ["naive", "memory-only", "warm-start"] and set(plan.references) == {"main", "reference-d0"}
    assert stages(plan) == ["probe", "screen", "seed 0", "seed 1", "seed 2", "ood"]
    assert part_stages(plan, 2) == ["seed 0", "ood"] and plan.part_limit_s == 6000
    assert plan.ood["siblings"]["find-non-living-thing"] == "find-living-thing"


def test_the_cpu_solve_estimate_fits_its_budget_in_parts_of_at_most_100_minutes():
    plan = read_plan("cpu-solve")
    found = estimate.estimate(plan)
    empo2_iteration = 0.75 * 135 + 0.25 * 939  # EMPO²'s memory iterations (p = 0.25) at their measured cost
    assert found.iterations == 4 and found.iteration_s == 135.0 and found.slowest_iteration_s == pytest.approx(empo2_iteration)
    assert len(found.parts) == 4 and max(found.parts) <= 100 * 60 and found.seconds <= 4.5 * 3600
    assert found.seconds == pytest.approx(sum(found.parts))
    # a compared run: start, 4 iterations of 135 s (EMPO²: its expected cost), 20 test episodes of 7 s
    # (EMPO²'s first iteration is a plain one: memory is empty then)
    runs = [estimate.START_S + 4 * 135 + 20 * 7 + extra for extra in (3 * (empo2_iteration - 135), 0, 0)]
    references = (2 * (estimate.START_S + 140) + (estimate.START_S + 2 * 140) + (estimate.START_S + 140))
    assert found.parts[2] == pytest.approx(estimate.PREPARE_S + sum(runs) + references + plan.pack_reserve_s)
    estimate.check_budget(plan, found)
    plan.part_limit_s = 3000
    with pytest.raises(ConfigError, match="^parts: part 1 needs ~56 min .* more than part_limit_s \\(50 min\\)"):
        estimate.check_budget(plan, estimate.estimate(plan))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m empo2_lite`` in a fresh interpreter that fails if torch was imported."""
    code = ("import sys; from empo2_lite.__main__ import main; status = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(status)")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_the_cpu_solve_estimate_prints_each_phase_and_part_without_torch(tmp_path):
    out = run_cli("study", "--plan", "cpu-solve", "--estimate", "--work", str(tmp_path / "work"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("cpu-solve: 3 algorithm(s) x 3 seed(s), 4 iteration(s) each at ~135 s")
    assert "EMPO² ~336 s with its memory iterations" in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["prepare", "probe", "phase", "phase", "ood", "pack", "part",
                                                       "part", "part", "part", "total"]
    assert "part 2" in lines[8] and "seed 0, ood (limit 100 min)" in lines[8]
    refused = run_cli("study", "--plan", "cpu-solve", "--part", "5", "--work", str(tmp_path / "work"))
    assert refused.returncode == 2 and "--part: 5 is not allowed; the plan cpu-solve has parts 1..4" in refused.stderr
    assert not (tmp_path / "work").exists()
    early = run_cli("study", "--plan", "cpu-solve", "--part", "3", "--work", str(tmp_path / "work"))
    assert early.returncode == 2, early.stdout + early.stderr
    [line] = early.stderr.strip().splitlines()
    assert line.startswith("empo2-lite: error: --part: part 3 needs the probe stage done first")


@pytest.mark.parametrize("change, message", [
    ({"screen": {"candidates": {"a": {"warm_start": -1}}, "algos": ["grpo"], "shared": True, "seed": 1,
                 "iterations": 1}}, "^screen.candidates.a.warm_start: -1 is not allowed"),
    ({"screen": {"candidates": {"a": {}}, "algos": ["grpo"], "shared": True, "seed": 1, "iterations": 1}},
     "^baselines: warm-start plays the chosen warm start; no screening candidate has one"),
    ({"baselines": ["naive", "retro"]}, "^baselines: 'retro' is not allowed"),
    ({"baselines": ["naive", "retrospex"]}, "^critic: the retrospex baseline, and only it, needs a critic folder"),
    ({"baseline_folders": {"memory-only": ["elsewhere"]}}, "^baseline_folders.memory-only: \\['elsewhere'\\]"),
    ({"probe": {"candidates": {"x": {"task": "find-animal"}}, "rule": {"points": 50}, "seed": 1}}, "^probe.rule: "),
    ({"probe": {"candidates": {"x": {"task": "find-unicorn"}}, "rule": {"points": 50, "at_least": 5,
                                                                         "success_below": 0.5}, "seed": 1}},
     "find-unicorn"),
    ({"ood": {"siblings": {"find-animal": "find-plant"}, "algos": ["empo2"], "seeds": [0], "iterations": 3}},
     "^ood.siblings: find-non-living-thing has no sibling"),
    ({"ood": {"siblings": {}, "algos": ["ppo"], "seeds": [0], "iterations": 3}}, "^ood.algos: \\['ppo'\\]"),
    ({"parts": [["probe", "screen"], ["seed 0"], ["seed 1"], ["seed 2"]]}, "^parts: ood in no part"),
    ({"parts": [["probe", "screen", "ood"], ["seed 0"], ["seed 1", "seed 2"]]},
     "^parts: 'ood' is in part 1, before 'seed 0' \\(part 2\\)"),
    ({"parts": [["probe", "screen", "seed 7"]]}, "^parts: 'seed 7' is not allowed"),
    ({"iterations": None}, "^parts: a study in parts fixes its iterations"),
    ({"task": "find-animal"}, "^task: 'find-animal' is not allowed with a probe"),
])
def test_a_cpu_solve_plan_that_cannot_run_is_refused_in_one_line(tmp_path, change, message):
    values = {**yaml.safe_load(SOLVE_PLAN.read_text()), **change}
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(ConfigError, match=message):
        read_plan(path)


# -- the pieces ----------------------------------------------------------------------------------
def test_each_new_kind_has_its_pieces(tmp_path):
    plan = probe.probed(read_plan("cpu-solve"), {"task": "find-non-living-thing", "overrides": {}})
    [first, *_] = probes = probe.probe_pieces(plan, tmp_path)
    assert len(probes) == 5 and first.name == "probe-fnlt-10-d1"
    assert (first.spec["kind"], first.spec["root"], first.spec["temperature"], first.spec["seed"]) == (
        "probe", str(tmp_path / "probe"), 1.0, 100)
    assert first.spec["overrides"] == {"eval_every": 0, "checkpoint_every": 1, "rollout.max_steps": 10,
                                       "rollout.demonstrations": 1}
    [warm] = phases.warm_start_pieces(plan, tmp_path, [0, 10, 10])
    assert (warm.name, warm.spec["kind"], warm.spec["variations"]) == ("warm-start-v10", "warm-start", 10)
    screening = {piece.name: piece.spec["overrides"] for piece in phases.screening_pieces(plan, tmp_path, 10.0)}
    assert "policy.init_adapter" not in screening["grpo-paper"] and "warm_start" not in screening["grpo-ws10"]
    assert screening["grpo-ws10-t07"]["policy.init_adapter"] == str(tmp_path / "warm-start" / "warm-start-v10")
    assert screening["grpo-ws10-t07"]["rollout.temperature"] == 0.7
    chosen = {"warm_start": 10, "rollout.temperature": 0.7}
    references = {piece.name: piece.spec for piece in phases.reference_pieces(plan, tmp_path, chosen)}
    assert sorted(references) == sorted(f"{kind}-s{seed}" for kind in ("naive", "memory-only", "warm-start")
                                        for seed in (0, 1, 2))
    assert [entry["root"] for entry in references["naive-s0"]["evaluations"]] == [str(tmp_path / "main"),
                                                                                   str(tmp_path / "reference-d0")]
    assert [entry["root"] for entry in references["memory-only-s1"]["evaluations"]] == [str(tmp_path / "main")]
    assert references["warm-start-s2"]["from_run"] == str(tmp_path / "warm-start" / "warm-start-v10")
    naive = references["naive-s0"]["evaluations"][0]["overrides"]
    assert naive["rollout.temperature"] == 0.7 and "warm_start" not in naive and "policy.init_adapter" not in naive
    assert not [name for name in map(lambda piece: piece.name, phases.reference_pieces(plan, tmp_path, {}))
                if name.startswith("warm-start")]  # no warm start chosen: no warm-start reference
    compared = phases.compared_pieces(plan, tmp_path, dict.fromkeys(plan.algos, chosen), 4)
    assert {piece.spec["overrides"]["policy.init_adapter"] for piece in compared} == {str(warm.spec["root"]) +
                                                                                       "/warm-start-v10"}
    ood = phases.ood_pieces(plan, tmp_path)
    assert [(piece.name, piece.spec["name"], piece.spec["sibling"]) for piece in ood] == [
        ("ood-empo2-s0", "empo2-s0", "find-living-thing"), ("ood-grpo-s0", "grpo-s0", "find-living-thing")]


def callable_as(real):
    """A stand-in's decorator: every call must also bind to the real job's signature."""
    def wrap(fake):
        def checked(*args, **kwargs):
            inspect.signature(real).bind(*args, **kwargs)
            return fake(*args, **kwargs)
        return checked
    return wrap


def test_the_new_kinds_play_their_jobs_and_know_when_they_are_done(tmp_path, monkeypatch):
    calls = []

    @callable_as(jobs.baseline)
    def baseline(kind, task, preset_name, **options):
        calls.append((kind, task, options["split"] if "split" in options else "test", options.get("from_run"),
                      options.get("episodes_per_variation"), options.get("temperature")))
        RunDir.named(options["name"]).append_eval({"split": options.get("split", "test"), "return_mean": 1.0,
                                                   "success_rate": 0.0})
        return {"return_mean": 1.0, "success_rate": 0.0}

    @callable_as(jobs.adapt_ood)
    def adapt_ood(name, task, iterations, **options):
        calls.append(("ood", name, task, iterations))
        RunDir.named(name).write_ood(task, [{"return_mean": 2.0}] * iterations)
        return [{"return_mean": 2.0}] * iterations

    monkeypatch.setattr(jobs, "baseline", baseline)
    monkeypatch.setattr(jobs, "adapt_ood", adapt_ood)
    spec = {"kind": "probe", "root": str(tmp_path / "probe"), "name": "probe-x", "preset": "cpu-solve",
            "task": "find-non-living-thing", "seed": 100, "temperature": 1.0, "overrides": {}}
    assert not pieces.PIECE_KINDS["probe"].done(spec)
    pieces.probe_piece(spec, time.time())
    assert pieces.PIECE_KINDS["probe"].done(spec) and pieces.PIECE_KINDS["probe"].progress(spec) == (1, 1)
    reference = {"kind": "reference", "baseline": "warm-start", "name": "warm-start-s0", "task": "find-non-living-thing",
                 "preset": "cpu-solve", "seed": 0, "from_run": "/w/warm-start-v10",
                 "evaluations": [{"root": str(tmp_path / "main"), "overrides": {}}]}
    pieces.reference_piece(reference, time.time())
    run = RunDir(tmp_path / "main" / "empo2-s0")
    run.path.mkdir(parents=True)
    (run.path / "config.json").write_text("{}")
    ood = {"kind": "ood", "root": str(tmp_path / "main"), "name": "empo2-s0", "sibling": "find-living-thing",
           "iterations": 3}
    assert not pieces.PIECE_KINDS["ood"].done(ood)
    pieces.ood_piece(ood, time.time())
    assert pieces.PIECE_KINDS["ood"].done(ood) and not pieces.PIECE_KINDS["ood"].done({**ood, "iterations": 4})
    assert calls == [("naive", "find-non-living-thing", "dev", None, 1, 1.0),
                     ("warm-start", "find-non-living-thing", "test", "/w/warm-start-v10", None, None),
                     ("ood", "empo2-s0", "find-living-thing", 3)]


def test_a_warm_start_piece_is_done_once_its_record_and_adapter_are_saved(tmp_path, monkeypatch):
    from empo2_lite.warm_start import job

    asked = []

    @callable_as(job.warm_start)
    def warm_start(preset_name, task, settings, *, name, overrides, make_pool=None, progress=True):
        asked.append((preset_name, task, settings.variations, name, overrides))
        run = RunDir.named(name)
        write_warm_start_folder(run.path)
        return job.WarmStarted(run, "trained", run.read_warm_start())

    monkeypatch.setattr(job, "warm_start", warm_start)
    spec = {"kind": "warm-start", "root": str(tmp_path / "warm-start"), "name": "warm-start-v10", "preset": "cpu-solve",
            "task": "find-non-living-thing", "variations": 10, "overrides": {"rollout.max_steps": 10}}
    assert not pieces.PIECE_KINDS["warm-start"].done(spec)
    pieces.warm_start_piece(spec, time.time())
    assert asked == [("cpu-solve", "find-non-living-thing", 10, "warm-start-v10", {"rollout.max_steps": 10})]
    assert pieces.PIECE_KINDS["warm-start"].done(spec)


def write_warm_start_folder(path: Path) -> None:
    """What a finished warm start leaves: its config, record and one checkpoint."""
    (path / "checkpoints" / "iter-000003").mkdir(parents=True, exist_ok=True)
    (path / "checkpoints" / "iter-000003" / "state.json").write_text('{"iteration": 3}')
    (path / "checkpoints" / "latest").write_text("iter-000003")
    (path / "config.json").write_text("{}")
    (path / "warm_start.json").write_text(json.dumps({"cloned": [{}] * 10}))


# -- a study in parts ------------------------------------------------------------------------------
FAKE_SOLVE_PIECE = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from empo2_lite.runs import RunDir
    spec = json.loads(sys.argv[1])
    kind = spec["kind"]

    def folder(root, name, config):
        run = RunDir(Path(root) / name)
        run.path.mkdir(parents=True, exist_ok=True)
        (run.path / "config.json").write_text(json.dumps(config))
        return run

    if kind == "probe":  # find-non-living-thing: 6 of 20 at 60 points; lifespan: none
        near = 6 if spec["task"] == "find-non-living-thing" else 0
        returns = {str(v): (60.0 if v < near else 0.0) for v in range(20)}
        folder(spec["root"], spec["name"], spec["overrides"]).append_eval(
            {"split": "dev", "per_variation": returns, "success_rate": 0.0, "return_mean": 18.0})
    elif kind == "warm-start":
        run = folder(spec["root"], spec["name"], spec["overrides"])
        (run.path / "checkpoints" / "iter-000003").mkdir(parents=True, exist_ok=True)
        (run.path / "checkpoints" / "iter-000003" / "state.json").write_text('{"iteration": 3}')
        (run.path / "checkpoints" / "latest").write_text("iter-000003")
        (run.path / "warm_start.json").write_text("{}")
    elif kind == "train":  # the warm start with a lower temperature succeeds most on dev
        overrides = spec["overrides"]
        warm = bool(overrides.get("policy.init_adapter"))
        assert not warm or Path(overrides["policy.init_adapter"], "warm_start.json").exists()
        success = 0.3 if overrides.get("rollout.temperature") == 0.7 else (0.2 if warm else 0.0)
        run = folder(spec["root"], spec["name"], {**overrides, "task": spec["task"]})
        assert not any(row["split"] == "test" for row in run.read_evals()), "a test split played twice"
        run.append_eval({"split": spec["split"], "success_rate": success, "return_mean": 10.0})
    elif kind == "reference":
        for entry in spec["evaluations"]:
            folder(entry["root"], spec["name"], {**entry["overrides"], "from_run": spec.get("from_run")}).append_eval(
                {"split": "test", "return_mean": 0.0})
    elif kind == "ood":
        RunDir(Path(spec["root"]) / spec["name"]).write_ood(spec["sibling"], [{"return_mean": 1.0}] * spec["iterations"])
    now = time.time()
    report = {"started": now - 3, "trained": now - 1, "evaluated": now, "iteration_seconds": [1.0]}
    open(spec["report"], "w").write(json.dumps(report if kind == "train" else {}))
""")


def test_a_study_in_parts_probes_screens_then_trains_each_seed_and_adapts(tmp_path, monkeypatch):
    monkeypatch.setattr(phases, "prepare", lambda plan: None)
    monkeypatch.setattr(runner, "collect", lambda plan, work: {"tables": {}})
    plan = read_plan("cpu-solve")
    plan.part_limit_s, plan.pack_reserve_s, plan.eval_reserve_s = 60, 2, 1
    started = []

    def command(piece):
        started.append(piece.name)
        return [sys.executable, "-c", FAKE_SOLVE_PIECE, json.dumps(piece.spec)]

    def part(number):
        started.clear()
        return runner.run(plan, tmp_path, command=command, check_estimate=False, part=number)

    with pytest.raises(ConfigError, match="^--part: part 2 needs the probe stage done first"):
        part(2)
    record = part(1)
    assert started[:5] == [f"probe-{name}" for name, _, _ in probe.probe_candidates(plan)]
    assert started[5:] == ["warm-start-v10", "grpo-paper", "grpo-ws10", "grpo-ws10-t07", "grpo-ws10-lr3e4"]
    choice = record["probe"]["choice"]
    assert (choice["value"], choice["task"], choice["rule_met"]) == ("fnlt-10-d1", "find-non-living-thing", True)
    assert record["choices"]["empo2"]["value"] == "ws10-t07" and "phase2" not in record
    record = part(2)
    assert sorted(started) == sorted(["empo2-s0", "gigpo-s0", "grpo-s0", "naive-s0", "memory-only-s0", "warm-start-s0",
                                      "ood-empo2-s0", "ood-grpo-s0"])
    config = json.loads((tmp_path / "main" / "gigpo-s0" / "config.json").read_text())
    assert config["policy.init_adapter"] == str(tmp_path / "warm-start" / "warm-start-v10")
    assert config["rollout.temperature"] == 0.7 and config["task"] == "find-non-living-thing"
    reference = json.loads((tmp_path / "main" / "warm-start-s0" / "config.json").read_text())
    assert reference["from_run"] == config["policy.init_adapter"] and "policy.init_adapter" not in reference
    assert not (tmp_path / "reference-d0" / "memory-only-s0").exists()
    assert record["ood"]["sibling"] == "find-living-thing" and record["ood"]["skipped"] == []
    assert [(call["part"], call["stages"]) for call in record["calls"]] == [(2, ["seed 0", "ood"]), (1, ["probe", "screen"]),
                                                                           (2, ["seed 0", "ood"])]
    assert all(len(call["load"]) == 3 for call in record["calls"])  # the machine's load at each part's start
    part(2)
    assert started == []  # every piece of the part done before: no test split played twice
    for number in (3, 4):
        record = part(number)
    assert len(record["phase2"]["pieces"]) == 9 + 9 and not record["phase2"]["untested"]
    assert all(piece["exit"] == 0 for phase in ("probe", "phase1", "phase2", "ood", "warm_starts")
               for piece in record[phase]["pieces"].values())
    assert json.loads((tmp_path / "study.json").read_text())["probe"]["done"]


def test_the_studys_tables_are_against_its_reference_folders_not_the_probe(tmp_path, monkeypatch):
    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.study import report

    monkeypatch.setattr(jobs, "all_figures", lambda runs, out=None: {})
    plan = read_plan("cpu-solve")

    def run(folder: str, name: str, split: str, value: float, **settings) -> None:
        path = RunDir(tmp_path / folder / name)
        path.start(apply_overrides(preset("cpu-solve"), {"name": name, **settings}))
        path.append_eval({"iteration": 0, "split": split, "return_mean": value, "success_rate": 0.0,
                          "per_variation": {"0": value, "1": value}, "per_variation_success": {"0": 0.0, "1": 0.0}})

    run("main", "grpo-s0", "test", 40.0, algo="grpo")
    run("main", "naive-s0", "test", 10.0, baseline="naive")
    run("reference-d0", "naive-s0", "test", 20.0, baseline="naive")
    run("probe", "probe-fnlt-10-d1", "dev", 30.0, baseline="naive")
    tables = report.collect(plan, tmp_path)["tables"]
    assert list(tables) == ["main", "reference-d0"]  # no table of the probe's dev-only runs


def test_the_cpu_solve_rehearsal_keeps_every_stage_on_the_tiny_model():
    rehearsal = read_plan("cpu-solve", rehearse=True)
    assert (rehearsal.preset, rehearsal.seeds, rehearsal.baselines) == ("cpu-smoke", [0],
                                                                        ["naive", "memory-only", "warm-start"])
    assert stages(rehearsal) == ["probe", "screen", "seed 0", "ood"] and len(rehearsal.parts) == 2
    found = estimate.estimate(rehearsal)
    estimate.check_budget(rehearsal, found)
    assert max(found.parts) <= rehearsal.part_limit_s


# -- the TextWorldExpress study (issue #39) --------------------------------------------------------
def test_the_cpu_twx_plan_probes_textworldexpress_games_by_solved_episodes_and_runs_in_four_parts():
    plan = read_plan("cpu-twx")
    assert (plan.preset, plan.algos, plan.seeds, plan.iterations, plan.ood) == ("cpu-twx", ["empo2", "gigpo", "grpo"],
                                                                                 [0, 1, 2], 4, None)
    assert [task for _, task, _ in probe.probe_candidates(plan)] == ["twx-coin-3", "twx-twc-1", "twx-mapreader-3"]
    assert plan.probe["rule"] == {"points": 100, "at_least": 1, "success_below": 0.5}  # these games score 0 or 100
    assert dict(phases.candidates(plan)) == {"paper": {}, "ws10": {"warm_start": 10},
                                             "ws10-lr3e4": {"warm_start": 10, "update.learning_rate": 3e-4}}
    assert stages(plan) == ["probe", "screen", "seed 0", "seed 1", "seed 2"]
    found = estimate.estimate(plan)
    estimate.check_budget(plan, found)
    assert len(found.parts) == 4 and max(found.parts) <= plan.part_limit_s and found.iteration_s == 142.0


def test_the_cpu_twx_rehearsal_plays_textworldexpress_on_the_tiny_model():
    rehearsal = read_plan("cpu-twx", rehearse=True)
    assert rehearsal.preset == "cpu-smoke" and rehearsal.overrides["env.name"] == "textworldexpress"
    assert stages(rehearsal) == ["probe", "screen", "seed 0"]
    estimate.check_budget(rehearsal, estimate.estimate(rehearsal))

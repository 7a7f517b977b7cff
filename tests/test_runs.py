"""The run folder: status without side effects, reads that change nothing, an exact rewind, the
results files, and the refusal to resume a folder of an older config format. No Java needed: the
files are written by hand or through RunDir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from empo2_lite.config import FORMAT_VERSION, ConfigError, apply_overrides, preset
from empo2_lite.errors import DamagedRunFileError, NotARunError
from empo2_lite.experiments import run_status
from empo2_lite.runs import RunDir


def config_for(name: str, iterations: int = 3):
    return apply_overrides(preset("cpu-smoke"), {"name": name, "iterations": iterations})


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``folder`` with its bytes and modification time."""
    return {str(path.relative_to(folder)): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file()}


def checkpoint(run: RunDir, iteration: int) -> Path:
    """A checkpoint of a four-number 'adapter' and the state of an optimizer that took one step."""
    weight = torch.nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.AdamW([weight])
    weight.sum().backward()
    optimizer.step()
    return run.save_checkpoint(iteration, {"w": torch.arange(4.0)}, optimizer.state_dict(), {"novelty": {"seen": 1}})


@pytest.fixture()
def run_with_an_interrupted_iteration(tmp_path) -> tuple[RunDir, dict[str, bytes]]:
    """A run checkpointed after iteration 1 that then wrote part of iteration 2; also returns the
    bytes of each append-only file at the checkpoint."""
    run = RunDir(tmp_path / "run")
    run.start(config_for("run"))
    run.append_metrics({"iteration": 0, "charts/return_mean": 1.5})
    run.append_eval({"iteration": 1, "return_mean": 2.0})
    run.memory_path.write_text('{"tip": "first"}\n')
    checkpoint(run, 1)
    at_checkpoint = {name: (run.path / name).read_bytes() for name in ("metrics.jsonl", "eval.jsonl", "memory.jsonl")}
    run.append_metrics({"iteration": 1, "charts/return_mean": 3.0})
    with open(run.memory_path, "a") as memory:
        memory.write('{"tip": "second"}\n{"tip": "thi')  # killed mid-write
    return run, at_checkpoint


def test_status_of_a_missing_folder_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path / "runs"))
    run = RunDir.named("never-trained")
    assert run_status(run, config_for("never-trained")) == "new"
    assert not run.exists() and run.iterations_done() == 0 and run.latest_checkpoint() is None
    assert run.read_metrics() == [] and run.read_evals() == [] and run.read_ood() == {}
    with pytest.raises(NotARunError, match="has no config.json: it is not a run folder"):
        run.config()
    assert not (tmp_path / "runs").exists()


def test_status_follows_the_latest_checkpoint(tmp_path):
    run = RunDir(tmp_path / "run")
    checkpoint(run, 1)
    assert run.iterations_done() == 1 and run_status(run, config_for("run", iterations=3)) == "partial"
    checkpoint(run, 3)
    assert run.iterations_done() == 3 and run_status(run, config_for("run", iterations=3)) == "done"


def test_read_checkpoint_changes_no_file(run_with_an_interrupted_iteration):
    run, _ = run_with_an_interrupted_iteration
    before = snapshot(run.path)
    adapter, optimizer_state, state = run.read_checkpoint(run.latest_checkpoint())
    assert snapshot(run.path) == before
    assert set(adapter) == {"w"} and torch.equal(adapter["w"], torch.arange(4.0))
    assert optimizer_state["state"][0]["step"] == 1
    assert state["iteration"] == 1 and state["novelty"] == {"seen": 1}
    assert set(state["file_sizes"]) == {"metrics.jsonl", "eval.jsonl", "memory.jsonl", "steps.jsonl"}


def test_rewind_cuts_each_file_back_to_its_size_at_the_checkpoint(run_with_an_interrupted_iteration):
    run, at_checkpoint = run_with_an_interrupted_iteration
    run.rewind_to(run.latest_checkpoint())
    for name, content in at_checkpoint.items():
        assert (run.path / name).read_bytes() == content, name
    assert [row["iteration"] for row in run.read_metrics()] == [0]


def test_rewind_empties_a_file_begun_after_the_checkpoint_and_never_grows_one(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start(config_for("run"))
    run.append_metrics({"iteration": 0})
    checkpoint(run, 1)
    run.append_eval({"iteration": 1})                       # eval.jsonl did not exist at the checkpoint
    (run.path / "metrics.jsonl").write_text("")            # shorter than at the checkpoint
    run.rewind_to(run.latest_checkpoint())
    assert (run.path / "eval.jsonl").read_bytes() == b""
    assert (run.path / "metrics.jsonl").read_bytes() == b""


def test_a_run_stopped_by_a_time_budget_ends_at_its_latest_checkpoint(run_with_an_interrupted_iteration):
    """Its files are those of the checkpoint and its config says how far it trained, so that its
    evaluation (keyed on that length), tables and figures tell the truth, and it counts as done."""
    run, at_checkpoint = run_with_an_interrupted_iteration
    assert run.end_early() == 1
    for name, content in at_checkpoint.items():
        assert (run.path / name).read_bytes() == content, name
    assert run.config().iterations == 1 and run_status(run, run.config()) == "done"
    assert run.config().name == "run"  # nothing else changed


def test_a_run_without_a_checkpoint_cannot_end_early_and_is_left_as_it_is(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start(config_for("run"))
    run.append_metrics({"iteration": 0})
    before = snapshot(run.path)
    assert run.end_early() == 0 and snapshot(run.path) == before


def test_results_files_round_trip_and_an_ood_adaptation_is_replaced_whole(tmp_path):
    run = RunDir(tmp_path / "run")
    run.start(apply_overrides(preset("cpu-smoke"), {"task": "find-animal"}))
    run.append_metrics({"iteration": 0, "mode": "plain"})
    run.append_eval({"iteration": 1, "return_mean": -20.0})
    run.write_ood("find-plant", [{"iteration": 0, "return_mean": 1.0}, {"iteration": 1, "return_mean": 2.0}])
    run.write_ood("find-plant", [{"iteration": 0, "return_mean": 5.0}])
    run.write_ood("boil", [{"iteration": 0, "return_mean": 0.0}])
    assert run.read_metrics() == [{"iteration": 0, "mode": "plain"}]
    assert run.read_evals() == [{"iteration": 1, "return_mean": -20.0}]
    assert run.read_ood() == {"boil": [{"trained_on": "find-animal", "task": "boil", "iteration": 0, "return_mean": 0.0}],
                              "find-plant": [{"trained_on": "find-animal", "task": "find-plant", "iteration": 0,
                                              "return_mean": 5.0}]}
    assert run.config().task == "find-animal" and run.config().format_version == FORMAT_VERSION


def test_a_damaged_results_line_is_a_one_line_error(tmp_path):
    run = RunDir(tmp_path / "run")
    run.append_metrics({"iteration": 0})
    with open(run.path / "metrics.jsonl", "a") as metrics:
        metrics.write("{not json\n")
    with pytest.raises(DamagedRunFileError, match=r"metrics.jsonl: line 2 is not a JSON record .*fix or delete that line"):
        run.read_metrics()



@pytest.mark.parametrize("flag", ["--run", "--resume"])
def test_a_name_with_no_run_is_one_line_naming_the_flag_the_name_and_the_root(tmp_path, monkeypatch, flag):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    with pytest.raises(ConfigError) as error:
        RunDir.existing("nope", flag)
    assert str(error.value) == f"{flag}: no run named 'nope' under {tmp_path}"
    assert not (tmp_path / "nope").exists()
    RunDir.named("there").start(config_for("there"))
    assert RunDir.existing("there", flag).path == tmp_path / "there"


def test_start_drops_the_files_of_a_start_that_never_reached_a_checkpoint(tmp_path):
    run = RunDir(tmp_path / "run")
    run.append_metrics({"iteration": 0})
    run.memory_path.write_text('{"tip": "stale"}\n')
    run.start(config_for("run"))
    assert run.read_metrics() == [] and not run.memory_path.exists() and run.config().name == "run"


def write_format_1_run(folder: Path, iteration: int, iterations: int) -> None:
    """A run folder as an older kit wrote it (config format 1), with one checkpoint's state."""
    config = config_for(folder.name, iterations=iterations).to_dict()
    config.pop("format_version")
    config.pop("write_tips")
    config.pop("eval_episodes_per_variation")
    config["update"]["temperature"] = 1.0
    (folder / "checkpoints" / f"iter-{iteration:06d}").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.jsonl").write_text('{"iteration": 0}\n{"iteration": 1}\n')
    (folder / "checkpoints" / f"iter-{iteration:06d}" / "state.json").write_text(
        json.dumps({"iteration": iteration, "file_sizes": {"metrics.jsonl": 17}}))
    (folder / "checkpoints" / "latest").write_text(f"iter-{iteration:06d}")


def refused(folder: Path) -> str:
    return (f"empo2-lite: error: {folder}: written by an older empo2-lite (config format 1, now {FORMAT_VERSION}) "
            "whose settings meant something else; its results can still be plotted, but to train, delete the folder "
            "or choose another run name")


@pytest.fixture()
def no_model_loads(monkeypatch):
    """A refusal must come before the policy loads (minutes for a real model)."""
    from empo2_lite import trainer

    def fail(*args, **kwargs):
        raise AssertionError("the policy was loaded for a run that cannot be resumed")

    monkeypatch.setattr(trainer, "load_policy", fail)


def test_resuming_a_format_1_folder_is_refused_in_one_line(tmp_path, monkeypatch, capsys, no_model_loads):
    from empo2_lite import results
    from empo2_lite.__main__ import main

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    folder = tmp_path / "old"
    write_format_1_run(folder, iteration=1, iterations=3)
    before = snapshot(folder)
    assert main(["train", "--resume", "old"]) == 2
    assert capsys.readouterr().err.splitlines() == [refused(folder)]
    assert snapshot(folder) == before  # not even rewound
    assert len(results.load_metrics([folder])) == 2  # its results still load


def test_make_demo_on_a_stale_demo_folder_says_what_to_do_in_one_line(tmp_path, monkeypatch, capsys, no_model_loads):
    from empo2_lite.__main__ import main

    import torch

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    monkeypatch.delenv("EMPO2_SMOKE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the GPU demo trains a run of its own
    folder = tmp_path / "demo"
    write_format_1_run(folder, iteration=2, iterations=2)
    assert main(["demo"]) == 2
    assert capsys.readouterr().err.splitlines() == [refused(folder)]

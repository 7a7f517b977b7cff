"""scripts/ship_study.py: what a study keeps in the repository between parts (a session's ``runs/``
does not outlive it), and that a study with no finished compared run yet (after part 1) ships
without an agent instead of failing."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ship_script():
    spec = importlib.util.spec_from_file_location("ship_study", ROOT / "scripts" / "ship_study.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, text: str = "{}\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_a_study_after_part_one_ships_its_folders_and_no_agent(tmp_path, monkeypatch, capsys):
    work = tmp_path / "runs" / "study-x"
    write(work / "study.json")
    write(work / "probe" / "coin-3" / "eval.jsonl", '{"split": "dev"}\n')
    write(work / "screen" / "paper" / "checkpoints" / "iter_3" / "adapter.safetensors", "weights")
    write(work / "screen" / "paper" / "steps.jsonl", "{}\n")
    write(work / "screen" / "paper" / "run.pid", "123")
    write(work / "warm-start" / "warm-start-v10" / "checkpoints" / "iter_0" / "adapter.safetensors", "warm")
    write(work / "figures" / "curve.pdf", "pdf")
    write(work / "figures" / "curve.png", "png")
    parts, out = tmp_path / "data" / "study-x-parts" / "study", tmp_path / "data" / "sample_runs" / "study-x"
    monkeypatch.setattr(sys, "argv", ["ship_study.py", "--study", "study-x", "--work", str(work),
                                      "--parts", str(parts), "--out", str(out)])

    ship_script().main()

    said = json.loads(capsys.readouterr().out)
    assert said["agent"].startswith("not packed: ") and "no compared run" in said["agent"]
    assert (parts / "probe" / "coin-3" / "eval.jsonl").is_file() and (out / "probe" / "coin-3" / "eval.jsonl").is_file()
    # the next part starts from the warm start's adapter: the parts keep it, the shipped runs do not
    assert (parts / "warm-start" / "warm-start-v10" / "checkpoints" / "iter_0" / "adapter.safetensors").read_text() == "warm"
    assert not (out / "warm-start" / "warm-start-v10" / "checkpoints").exists()
    for kept in (parts, out):
        assert not (kept / "screen" / "paper" / "checkpoints").exists()
        assert not (kept / "screen" / "paper" / "steps.jsonl").exists()
        assert not (kept / "screen" / "paper" / "run.pid").exists()
        assert not (kept / "figures" / "curve.pdf").exists() and (kept / "figures" / "curve.png").is_file()
    assert not (out / "agent").exists()


def test_a_missing_study_folder_is_named_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ship_study.py", "--study", "none", "--work", str(tmp_path / "absent"),
                                      "--parts", str(tmp_path / "parts"), "--out", str(tmp_path / "out")])
    try:
        ship_script().main()
    except SystemExit as stop:
        assert str(stop).startswith("--work: no study folder at ")
    else:
        raise AssertionError("a missing study folder must stop the script")
    assert not (tmp_path / "parts").exists() and not (tmp_path / "out").exists()

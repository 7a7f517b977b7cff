"""The TextWorldExpress study as shipped so far (data/sample_runs/cpu-twx, issue #39): what
docs/results-cpu-twx.md states of part 1 (the probe and the screening) is what the study recorded,
and the parts' folder holds what the next part starts from."""

from __future__ import annotations

import json
from pathlib import Path

from empo2_lite.results import sample_runs_dir
from empo2_lite.runs import RunDir

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sample_runs_dir("cpu-twx")
DOCUMENT = ROOT / "docs" / "results-cpu-twx.md"


def study_record() -> dict:
    return json.loads((SHIPPED / "study.json").read_text())


def test_the_probe_chose_coin_collector_as_the_document_says():
    choice = study_record()["probe"]["choice"]
    solved = {name: outcome["at_points"] for name, outcome in choice["outcomes"].items()}
    assert (choice["task"], choice["rule_met"], solved) == ("twx-coin-3", True, {"coin-3": 4, "twc-1": 2, "mapreader-3": 0})
    document = DOCUMENT.read_text()
    for name, task in (("coin-3", "twx-coin-3"), ("twc-1", "twx-twc-1"), ("mapreader-3", "twx-mapreader-3")):
        [row] = RunDir(SHIPPED / "probe" / f"probe-{name}").read_evals()
        assert (row["split"], row["temperature"], row["episodes"]) == ("dev", 1.0, 20)
        line = next(line for line in document.splitlines() if f"(`{task}`)" in line)
        assert f"| {solved[name]} | {row['return_mean']:.1f} |" in line


def test_the_screening_chose_the_warm_start_at_3e_4_for_every_algorithm():
    choices = study_record()["choices"]
    assert {algo: choice["value"] for algo, choice in choices.items()} == dict.fromkeys(("empo2", "gigpo", "grpo"), "ws10-lr3e4")
    document = DOCUMENT.read_text()
    for candidate, success in choices["grpo"]["dev_success"].items():
        [row] = [row for row in RunDir(SHIPPED / "screen" / f"grpo-{candidate}").read_evals() if row["split"] == "dev"]
        assert row["success_rate"] == success
        line = next(line for line in document.splitlines() if line.startswith(f"| `{candidate}` |"))
        assert f"| {success:.0%} |" in line or f"| **{success:.0%}** |" in line


def test_the_parts_folder_keeps_the_warm_start_that_the_next_part_starts_from():
    parts = ROOT / "data" / "cpu-twx-parts" / "study"
    adapters = list((parts / "warm-start").glob("warm-start-v10/checkpoints/*/adapter.safetensors"))
    assert len(adapters) == 1 and adapters[0].stat().st_size > 1_000_000
    assert not list(parts.glob("screen/*/checkpoints")) and not list(parts.glob("main/*/checkpoints"))
    # the shipped runs keep no checkpoint; only the demo's agent, packed apart, holds weights
    assert {path.relative_to(SHIPPED).parts[0] for path in SHIPPED.rglob("checkpoints")} <= {"agent"}
    assert json.loads((parts / "study.json").read_text())["probe"] == study_record()["probe"]


def test_the_document_shows_the_numbers_scripts_tables_for_the_seeds_played():
    """Part 2's tables are what scripts/cpu_solve_numbers.py prints from the shipped study folder."""
    import subprocess
    import sys

    printed = subprocess.run([sys.executable, str(ROOT / "scripts" / "cpu_solve_numbers.py"), "--work", str(SHIPPED),
                              "--markdown"], capture_output=True, text=True, check=True).stdout
    assert printed.strip() in DOCUMENT.read_text()

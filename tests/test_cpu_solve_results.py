"""The CPU solve study as shipped (data/sample_runs/cpu-solve, issue #36): the numbers README "Results
today" and docs/results-cpu-solve.md state are the ones in the runs' files, and the demo's agent is
the run the shipping rule picks, loadable as a policy on the CPU."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest

from empo2_lite.results import sample_runs_dir
from empo2_lite.runs import RunDir
from empo2_lite.shipped_agent import install_agent, read_agent

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sample_runs_dir("cpu-solve")

# docs/results-cpu-solve.md, "Test results, seed 0": folder -> (solved of 20, test return).
SEED_0 = {"main/naive-s0": (0, 16.6), "reference-d0/naive-s0": (0, 11.85), "main/memory-only-s0": (0, 17.55),
          "main/warm-start-s0": (1, 26.35), "main/grpo-s0": (7, 80.15), "main/empo2-s0": (6, 78.5),
          "main/gigpo-s0": (5, 77.25)}
# Its paired gains in success points (mean, se) over the untrained model and over the warm start alone.
PAIRED = {("grpo", "naive"): (35, 11), ("empo2", "naive"): (30, 11), ("gigpo", "naive"): (25, 10),
          ("grpo", "warm-start"): (30, 11), ("empo2", "warm-start"): (25, 12), ("gigpo", "warm-start"): (20, 12),
          ("empo2", "grpo"): (-5, 14)}
FOLDER = {"naive": "main/naive-s0", "warm-start": "main/warm-start-s0", "grpo": "main/grpo-s0",
          "empo2": "main/empo2-s0", "gigpo": "main/gigpo-s0"}


def shipped_test_row(folder: str) -> dict:
    [row] = [row for row in RunDir(SHIPPED / folder).read_evals() if row.get("split") == "test"]
    return row


@pytest.mark.parametrize("folder", sorted(SEED_0))
def test_each_shipped_test_row_is_what_the_results_state(folder):
    row = shipped_test_row(folder)
    assert (round(row["success_rate"] * row["episodes"]), row["return_mean"]) == SEED_0[folder]
    assert row["episodes"] == 20 and row["temperature"] == 0.4


@pytest.mark.parametrize("pair", sorted(PAIRED))
def test_the_paired_gains_are_computed_from_the_rows(pair):
    better, worse = (shipped_test_row(FOLDER[name])["per_variation_success"] for name in pair)
    differences = [100 * (better[variation] - worse[variation]) for variation in better]
    assert len(differences) == 20
    mean, se = statistics.mean(differences), statistics.stdev(differences) / math.sqrt(len(differences))
    assert (round(mean), round(se)) == PAIRED[pair]


def test_readme_and_the_results_document_state_the_seed_0_result():
    readme = (ROOT / "README.md").read_text()
    assert "test success: GRPO 7 of 20, EMPO² 6, GiGPO 5" in " ".join(readme.split())
    document = (ROOT / "docs" / "results-cpu-solve.md").read_text()
    assert "| **GRPO** | **7 of 20** | 11 | **80.2 (3.4)**" in document


def test_the_agent_is_the_best_compared_run_by_test_success_then_return():
    agent = read_agent(SHIPPED / "agent")
    compared = {name: shipped_test_row(folder) for name, folder in FOLDER.items() if name in ("grpo", "empo2", "gigpo")}
    best = max(compared, key=lambda name: (compared[name]["success_rate"], compared[name]["return_mean"]))
    assert (agent["algo"], agent["seed"], agent["run"]) == (best, 0, f"{best}-s0")
    trained = json.loads((SHIPPED / "agent" / "trained" / "config.json").read_text())
    shipped_run = json.loads((SHIPPED / "main" / f"{best}-s0" / "config.json").read_text())
    assert trained["policy"]["init_adapter"] == "../warm-start"
    assert {**trained, "policy": None} == {**shipped_run, "policy": None}
    assert (SHIPPED / "agent" / "trained" / "eval.jsonl").read_text() == (SHIPPED / "main" / f"{best}-s0" / "eval.jsonl").read_text()


def test_the_shipped_agent_loads_as_the_trained_policy_on_the_cpu(tmp_path, monkeypatch):
    """Install it as `make demo` does and load it as evaluation does: the warm start merged into the
    base weights, the RL adapter on top."""
    from empo2_lite.evaluation import load_trained_policy

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    warm, trained = install_agent(SHIPPED / "agent", "demo-solve")
    policy, config = load_trained_policy(trained.path)
    assert config.policy.init_adapter == str(warm.path.resolve()) and config.task == "find-non-living-thing"
    adapter = trained.read_adapter(trained.latest_checkpoint())
    loaded = {name: tensor for name, tensor in policy.model.state_dict().items() if "lora_" in name}
    assert len(adapter) == len(loaded) > 0
    some = next(iter(adapter))
    match = [name for name in loaded if name.replace(".default", "").endswith(some.split("base_model.model.")[-1])]
    assert match and loaded[match[0]].equal(adapter[some].to(loaded[match[0]].dtype))

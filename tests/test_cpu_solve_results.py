"""The CPU solve study as shipped (data/sample_runs/cpu-solve, issue #36): the numbers README "Results
today" and docs/results-cpu-solve.md state are the ones in the runs' files, and the demo's agent is
the run the shipping rule picks, loadable as a policy on the CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from empo2_lite.comparison import paired_gain
from empo2_lite.results import sample_runs_dir
from empo2_lite.runs import RunDir
from empo2_lite.shipped_agent import install_agent, read_agent

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sample_runs_dir("cpu-solve")

# docs/results-cpu-solve.md, "Test results over 3 seeds": folder -> (solved of 20, test return) per seed.
ROWS = {"main/naive": [(0, 16.6), (0, 13.6), (0, 15.45)], "reference-d0/naive": [(0, 11.85), (0, 11.85), (0, 9.35)],
        "main/memory-only": [(0, 17.55), (0, 19.2), (0, 17.2)], "main/warm-start": [(1, 26.35), (1, 28.05), (1, 30.55)],
        "main/grpo": [(7, 80.15), (5, 77.25), (8, 82.2)], "main/empo2": [(6, 78.5), (2, 35.5), (8, 82.2)],
        "main/gigpo": [(5, 77.25), (0, 23.5), (6, 78.5)]}
# Its paired gains (each variation averaged over the seeds): success points and return, each (mean, se).
PAIRED = {("grpo", "naive"): ((33.3, 8.7), (64.7, 3.3)), ("empo2", "naive"): ((26.7, 6.7), (50.2, 3.3)),
          ("gigpo", "naive"): ((18.3, 5.7), (44.5, 2.6)), ("grpo", "warm-start"): ((28.3, 7.4), (51.5, 2.2)),
          ("empo2", "warm-start"): ((21.7, 5.6), (37.1, 2.3)), ("gigpo", "warm-start"): ((13.3, 6.1), (31.4, 2.7)),
          ("empo2", "grpo"): ((-6.7, 5.2), (-14.5, 2.1))}
COMPARED = ("grpo", "empo2", "gigpo")


def shipped_test_row(folder: str) -> dict:
    [row] = [row for row in RunDir(SHIPPED / folder).read_evals() if row.get("split") == "test"]
    return row


def seed_rows(name: str) -> list[dict]:
    folder = "main/naive" if name == "naive" else f"main/{name}"
    return [shipped_test_row(f"{folder}-s{seed}") for seed in (0, 1, 2)]


@pytest.mark.parametrize("folder", sorted(ROWS))
def test_each_shipped_test_row_is_what_the_results_state(folder):
    rows = [shipped_test_row(f"{folder}-s{seed}") for seed in (0, 1, 2)]
    assert [(round(row["success_rate"] * row["episodes"]), round(row["return_mean"], 2)) for row in rows] == ROWS[folder]
    assert all(row["episodes"] == 20 and row["temperature"] == 0.4 for row in rows)


@pytest.mark.parametrize("pair", sorted(PAIRED))
def test_the_paired_gains_are_computed_from_the_rows(pair):
    better, worse = (seed_rows(name) for name in pair)
    success = paired_gain([row["per_variation_success"] for row in better], [row["per_variation_success"] for row in worse])
    value = paired_gain([row["per_variation"] for row in better], [row["per_variation"] for row in worse])
    assert tuple(round(100 * number, 1) for number in success) == PAIRED[pair][0]
    assert tuple(round(number, 1) for number in value) == PAIRED[pair][1]


def test_the_targets_as_the_results_judge_them():
    """(a) +25 points of success over the untrained model and above twice the paired se; (b) above
    the warm start alone by more than twice the paired se."""
    def success_gain(algo: str, reference: str) -> tuple[float, float]:
        gain, error = paired_gain([row["per_variation_success"] for row in seed_rows(algo)],
                                  [row["per_variation_success"] for row in seed_rows(reference)])
        return 100 * gain, 100 * error

    met_a = [algo for algo in COMPARED if success_gain(algo, "naive")[0] >= 25
             and success_gain(algo, "naive")[0] > 2 * success_gain(algo, "naive")[1]]
    met_b = [algo for algo in COMPARED if success_gain(algo, "warm-start")[0] > 2 * success_gain(algo, "warm-start")[1]]
    assert (met_a, met_b) == (["grpo", "empo2"], ["grpo", "empo2", "gigpo"])


def test_empo2_without_a_memory_iteration_played_what_grpo_played():
    """Seed 2: EMPO² drew no memory iteration, and its training and test episodes are GRPO's."""
    runs = {algo: RunDir(SHIPPED / "main" / f"{algo}-s2") for algo in ("empo2", "grpo")}
    metrics = {algo: run.read_metrics() for algo, run in runs.items()}
    assert [row["mode"] for row in metrics["empo2"]] == ["plain"] * 4
    assert [row["charts/return_mean"] for row in metrics["empo2"]] == [row["charts/return_mean"] for row in metrics["grpo"]]
    assert shipped_test_row("main/empo2-s2")["per_variation"] == shipped_test_row("main/grpo-s2")["per_variation"]


def test_readme_and_the_results_document_state_the_result():
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "test success: GRPO 33% (7, 5 and 8 of 20 over 3 seeds), EMPO² 27% (6, 2, 8), GiGPO 18% (5, 0, 6)" in readme
    document = (ROOT / "docs" / "results-cpu-solve.md").read_text()
    assert "| **GRPO** | **7, 5, 8** | **33.3 (7.6)** | 57 | 80.2, 77.2, 82.2 | **79.9 (2.5)** | 0.81 |" in document
    assert "| EMPO² over GRPO | -6.7 (5.2) | -14.5 (2.1) |" in document


def test_the_agent_is_the_best_compared_run_by_test_success_then_return():
    """The first by name among the best: EMPO² s2 and GRPO s2 tie (they played the same episodes)."""
    agent = read_agent(SHIPPED / "agent")
    compared = {f"{algo}-s{seed}": shipped_test_row(f"main/{algo}-s{seed}") for algo in COMPARED for seed in (0, 1, 2)}
    best = max(sorted(compared), key=lambda name: (compared[name]["success_rate"], compared[name]["return_mean"]))
    assert (agent["run"], best) == ("empo2-s2", "empo2-s2") and (agent["algo"], agent["seed"]) == ("empo2", 2)
    assert "tied with grpo-s2" in agent["why"]
    trained = json.loads((SHIPPED / "agent" / "trained" / "config.json").read_text())
    shipped_run = json.loads((SHIPPED / "main" / best / "config.json").read_text())
    assert trained["policy"]["init_adapter"] == "../warm-start"
    assert {**trained, "policy": None} == {**shipped_run, "policy": None}
    assert (SHIPPED / "agent" / "trained" / "eval.jsonl").read_text() == (SHIPPED / "main" / best / "eval.jsonl").read_text()


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


# docs/results-cpu-solve.md, "The paper's other baselines" (issue #38): arm -> (solved of 20, return) per seed.
REFLEXION_ROWS = {(): [(0, 19.65), (0, 21.3), (0, 16.75)], ("trial_1",): [(0, 14.2), (0, 16.2), (0, 14.15)],
                  ("control", "best_of_k"): [(0, 18.9), (0, 26.75), (0, 17.15)]}


@pytest.mark.parametrize("path", sorted(REFLEXION_ROWS), ids=lambda path: "/".join(path) or "best_of_k")
def test_each_shipped_reflexion_row_is_what_the_results_state(path):
    for seed, (solved, returned) in enumerate(REFLEXION_ROWS[path]):
        [row] = [row for row in RunDir(SHIPPED / "baselines" / f"reflexion-s{seed}").read_evals()
                 if row.get("split") == "test"]
        assert (row["baseline"], row["task"], row["seed"], row["temperature"]) == (
            "reflexion", "find-non-living-thing", seed, 0.4)
        for key in path:
            row = row[key]
        assert (round(row["success_rate"] * row["episodes"]), row["return_mean"]) == (solved, pytest.approx(returned))


# The same section's Retrospex rows: folder -> (solved of 20, return, distinct candidates a step) per seed.
RETROSPEX_ROWS = {"retrospex-s0": (0, 18.05, 5.69), "retrospex-s1": (0, 18.05, 5.69), "retrospex-s2": (0, 18.05, 5.69),
                  "retrospex-sampled/retrospex-s0": (0, 15.85, 1.325),
                  "retrospex-sampled/retrospex-s1": (0, 15.4, 1.37), "retrospex-sampled/retrospex-s2": (0, 15.4, 1.315)}


@pytest.mark.parametrize("folder", sorted(RETROSPEX_ROWS))
def test_each_shipped_retrospex_row_is_what_the_results_state(folder):
    """Both arms of every shipped Retrospex piece: nothing solved, the critic never changed a choice,
    so the critic arm played the actor-only arm's episodes; the beam's candidates are distinct."""
    solved, returned, distinct = RETROSPEX_ROWS[folder]
    [row] = [row for row in RunDir(SHIPPED / "baselines" / folder).read_evals() if row.get("split") == "test"]
    assert (row["baseline"], row["task"], row["temperature"], row["retrospex_candidates"]) == (
        "retrospex", "find-non-living-thing", 0.4, 6)
    assert row.get("retrospex_search", "sample") == ("sample" if "sampled" in folder else "beam")
    for arm in (row, row["actor_only"]):
        assert (round(arm["success_rate"] * arm["episodes"]), arm["return_mean"]) == (solved, pytest.approx(returned))
        assert arm["reranking"]["changed_by_critic_share"] == 0.0 and arm["reranking"]["steps"] == 200
    assert row["per_variation"] == row["actor_only"]["per_variation"]
    assert row["reranking"]["distinct_candidates_mean"] == pytest.approx(distinct)


def test_the_beams_three_seeds_played_the_same_episodes():
    """A beam draws no random number: the three measured seeds are one set of episodes, move for
    move (the results state it; tests/test_retrospex.py checks the choice ignores the seed)."""
    rows = [next(iter(RunDir(SHIPPED / "baselines" / f"retrospex-s{seed}").read_evals())) for seed in (0, 1, 2)]
    assert [row["seed"] for row in rows] == [0, 1, 2]
    for field in ("per_variation", "end_reasons", "reranking", "actor_only"):
        assert rows[0][field] == rows[1][field] == rows[2][field]


def test_the_results_document_shows_the_baselines_script_tables():
    """The Reflexion and cost tables of the document are what scripts/cpu_solve_baselines.py prints
    from the shipped folders (the study's untrained rows as Naive)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("cpu_solve_baselines", ROOT / "scripts" / "cpu_solve_baselines.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    printed = script.markdown(script.collect(SHIPPED / "baselines", SHIPPED))
    document = (ROOT / "docs" / "results-cpu-solve.md").read_text()
    arms, costs = printed.split("\n\n")
    assert arms in document and costs in document
    untrained = [shipped_test_row(f"main/naive-s{seed}") for seed in (0, 1, 2)]
    best = [next(row for row in RunDir(SHIPPED / "baselines" / f"reflexion-s{seed}").read_evals()) for seed in (0, 1, 2)]
    gain, error = paired_gain([row["per_variation"] for row in best], [row["per_variation"] for row in untrained])
    assert f"+{gain:.1f} ({error:.1f})" in arms.splitlines()[2]

"""The jobs shared by the command line, ``make demo`` and the notebooks (``empo2_lite/jobs.py``).

Training is driven through a fake trainer that writes what the real one writes (config, checkpoints);
evaluation, baselines and OOD adaptation play recorded ScienceWorld transitions (the replay pool, no
Java) with a scripted policy; figures come from the shipped sample runs. The end-to-end run on real
JVMs is the smoke demo (test_cli.py), which chains train, final evaluation and all figures.
"""

from __future__ import annotations

import json
import math

import pytest

from empo2_lite import evaluation, jobs, results
from empo2_lite.config import ConfigError, apply_overrides, preset
from empo2_lite.experiments import expand_grid
from empo2_lite.runs import RunDir
from replay_pool import ReplayPool
from scripted import ScriptedSampler

TASK = "identify-life-stages-2"  # test variations 6..9, recorded with "look around" at every step


def replay(size: int, env_config=None) -> ReplayPool:
    """The pool factory the jobs are given instead of EnvPool."""
    return ReplayPool(size)


@pytest.fixture(autouse=True)
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    return tmp_path


class FakeTrainer:
    """Starts or resumes a run and writes checkpoints the way the real trainer does, with no model."""

    built: list[tuple[str, bool]] = []
    pools: list = []

    def __init__(self, config, run: RunDir, resume: bool = False) -> None:
        self.config, self.run, self.policy = config, run, None
        FakeTrainer.built.append((config.name, resume))
        if not resume:
            run.start(config)

    def train(self, progress: bool = True, pool=None) -> list[dict]:
        import torch

        FakeTrainer.pools.append(pool)
        history = []
        for iteration in range(self.run.iterations_done(), self.config.iterations):
            history.append({"iteration": iteration, "charts/return_mean": 0.0})
            self.run.append_metrics(history[-1])
            self.run.save_checkpoint(iteration + 1, {"w": torch.zeros(1)}, {}, {})
        return history


@pytest.fixture()
def fake_trainer():
    FakeTrainer.built, FakeTrainer.pools = [], []
    return FakeTrainer


def smoke(**overrides):
    return apply_overrides(preset("cpu-smoke"), {"task": TASK, **overrides})


def test_train_starts_resumes_and_skips_a_run_by_name(fake_trainer):
    config = smoke(name="a", iterations=2)
    first = jobs.train(config, trainer_class=fake_trainer)
    assert (first.outcome, len(first.history)) == ("trained", 2)
    assert jobs.train(config, trainer_class=fake_trainer).outcome == "skipped (done)"
    longer = jobs.train(smoke(name="a", iterations=3), trainer_class=fake_trainer)
    assert (longer.outcome, [row["iteration"] for row in longer.history]) == ("resumed", [2])
    assert fake_trainer.built == [("a", False), ("a", True)]  # a finished run builds no trainer


def test_an_unscreened_preset_warns_that_it_has_never_run_and_the_others_do_not(fake_trainer, monkeypatch):
    import warnings

    class Stop(Exception):
        pass

    def no_model(*args, **kwargs):
        raise Stop

    never_run = r"preset='gpu-learn' has never been run \(no GPU run of the kit so far\); check its results"
    with pytest.warns(UserWarning, match=never_run):
        jobs.train(apply_overrides(preset("gpu-learn"), {"name": "g", "iterations": 1}), trainer_class=fake_trainer)
    monkeypatch.setattr("empo2_lite.policy.load_policy", no_model)
    with pytest.warns(UserWarning, match=never_run), pytest.raises(Stop):
        jobs.baseline("naive", TASK, "gpu-learn", make_pool=replay)
    # a CPU preset says why in its own words, not the GPU's
    with pytest.warns(UserWarning, match=r"preset='cpu-twx' has never been run \(its study, `study --plan cpu-twx`, "
                                         r"has not finished\)"), pytest.raises(Stop):
        jobs.baseline("naive", "twx-coin-3", "cpu-twx", make_pool=replay)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jobs.train(smoke(name="s", iterations=1), trainer_class=fake_trainer)


def test_train_plays_on_the_pool_it_is_given(fake_trainer):
    jobs.train(smoke(name="a", iterations=1), make_pool=replay, trainer_class=fake_trainer)
    [pool] = fake_trainer.pools
    assert isinstance(pool, ReplayPool) and pool.size == smoke().n_envs


def test_train_refuses_to_continue_a_run_under_other_settings(fake_trainer):
    jobs.train(smoke(name="a", iterations=1), trainer_class=fake_trainer)
    with pytest.raises(ConfigError, match=r"name: run 'a' .* was started with other settings \(p: 0.5 -> 0.25\)"):
        jobs.train(smoke(name="a", iterations=1, p=0.25), trainer_class=fake_trainer)
    assert fake_trainer.built == [("a", False)]


def test_resume_continues_a_run_with_its_own_settings(fake_trainer):
    with pytest.raises(ConfigError, match="--resume: no run named 'nope'"):
        jobs.resume("nope", trainer_class=fake_trainer)
    jobs.train(smoke(name="a", iterations=1, seed=7), trainer_class=fake_trainer)
    resumed = jobs.resume("a", iterations=3, trainer_class=fake_trainer)
    assert resumed.outcome == "resumed" and resumed.run.config().seed == 7
    assert [row["iteration"] for row in resumed.run.read_metrics()] == [0, 1, 2]


def test_train_runs_reports_what_it_did_with_each_run(fake_trainer):
    configs = expand_grid(smoke(name="g", iterations=3), {"seed": ["0", "1", "2"]})
    jobs.train(configs[0], trainer_class=fake_trainer)                                    # finished
    jobs.train(apply_overrides(configs[1], {"iterations": 1}), trainer_class=fake_trainer)  # interrupted
    outcome = jobs.train_runs(configs, trainer_class=fake_trainer, progress=False)
    assert outcome == {"g-seed0": "skipped (done)", "g-seed1": "resumed", "g-seed2": "trained"}
    assert jobs.train_runs(configs, trainer_class=fake_trainer) == dict.fromkeys(outcome, "skipped (done)")


@pytest.fixture()
def played(monkeypatch):
    """Every collect_rollouts call of the evaluation module, answered by a scripted "look around"."""
    calls = []
    real = evaluation.collect_rollouts

    def scripted(policy, pool, specs, config=None, retrieve=None, **kwargs):
        calls.append({"episodes": len(specs), "temperature": config.temperature, "memory": retrieve is not None,
                      "variations": sorted({spec.variation for spec in specs})})
        sampler = ScriptedSampler(policy, {"life stages": ["look around"] * len(specs) * config.max_steps})
        return real(policy, pool, specs, config, retrieve=retrieve, sampler=sampler, **kwargs)

    monkeypatch.setattr(evaluation, "collect_rollouts", scripted)
    return calls


@pytest.fixture()
def trained_run():
    """A run of the tiny byte model with a checkpoint holding its (untrained) adapter."""
    from peft import get_peft_model_state_dict

    from empo2_lite.policy import load_policy

    config = smoke(name="trained", iterations=1, eval_episodes_per_variation=1)
    run = RunDir.named("trained")
    run.start(config)
    run.save_checkpoint(1, get_peft_model_state_dict(load_policy(config.policy).model), {}, {})
    return run


def test_final_evaluation_plays_once_per_setting_then_reads_back(trained_run, played):
    first = jobs.final_evaluation(trained_run.path, make_pool=replay)
    assert first == jobs.final_evaluation(trained_run.path, make_pool=replay) and len(played) == 1
    assert (first["iteration"], first["kind"], first["temperature"], first["episodes"]) == (1, "final", 0.4, 4)
    with pytest.raises(ConfigError, match="played once"):  # the test split: once per run
        jobs.final_evaluation(trained_run.path, temperature=1.0, make_pool=replay)
    hotter = jobs.final_evaluation(trained_run.path, temperature=1.0, split="dev", make_pool=replay)
    assert (hotter["temperature"], hotter["split"], first["split"]) == (1.0, "dev", "test")
    assert [call["temperature"] for call in played] == [0.4, 1.0] and [call["variations"] for call in played][1] == [4, 5]
    assert trained_run.read_evals() == [first, hotter]


@pytest.mark.parametrize("kind", jobs.BASELINES)
def test_baselines_play_the_base_model_into_their_own_folder(played, kind):
    result = jobs.baseline(kind, TASK, "cpu-smoke", trials=2, episodes_per_variation=1, make_pool=replay,
                           progress=False)
    run = RunDir.named(f"baseline-{kind}-{TASK}")
    [row] = run.read_evals()
    assert (row["iteration"], row["kind"], row["baseline"], row["preset"]) == (0, "final", kind, "cpu-smoke")
    assert row.keys() == {"iteration", "kind", *result}
    assert (run.config().baseline, run.config().task, run.config().preset) == (kind, TASK, "cpu-smoke")
    [read] = results.load_evals(results.find_runs(run.path.parent)).to_dict("records")
    assert (read["algo"], read["return_mean"]) == (kind, row["return_mean"])
    if kind == "memory-only":
        assert [trial["used_memory"] for trial in result["trials"]] == [False, True] == [c["memory"] for c in played]
        assert result["return_mean"] == result["trials"][-1]["return_mean"]
    else:
        assert result["episodes"] == 4 and [c["memory"] for c in played] == [False]


def test_a_baseline_of_another_seed_gets_its_own_folder_and_says_its_seed(played):
    row = jobs.baseline("naive", TASK, "cpu-smoke", seed=2, episodes_per_variation=1, make_pool=replay, progress=False)
    run = RunDir.named(f"baseline-naive-{TASK}-s2")
    assert row["seed"] == 2 and run.config().seed == 2 and run.read_evals()[0]["seed"] == 2
    with pytest.raises(ConfigError, match="not a naive baseline of seed 3; choose another name"):
        jobs.baseline("naive", TASK, "cpu-smoke", seed=3, name=run.path.name, make_pool=replay)


def test_a_baseline_of_an_unknown_kind_is_refused():
    with pytest.raises(ConfigError, match="baseline: 'retro' is not allowed"):
        jobs.baseline("retro", TASK, "cpu-smoke")


def test_ood_adaptation_is_saved_with_the_run_and_read_back(trained_run, played):
    rows = jobs.adapt_ood("trained", TASK, 2, make_pool=replay, progress=False)
    assert [row["used_memory"] for row in rows] == [False, True] and rows[0]["trained_on"] == TASK
    assert trained_run.read_ood()[TASK] == rows and len(played) == 2
    assert jobs.adapt_ood("trained", TASK, 2, make_pool=replay) == rows and len(played) == 2
    assert list(results.load_ood([trained_run.path])["iteration"]) == [1, 2]  # shown 1-based
    with pytest.raises(ConfigError, match="--run: no run named 'nope'"):
        jobs.adapt_ood("nope", TASK, 2, make_pool=replay)
    for other, differs in (({"split": "dev"}, "split: 'test' -> 'dev'"), ({"temperature": 1.0}, "temperature: 0.4 -> 1.0"),
                           ({"iterations": 3}, "iterations: 2 -> 3")):
        settings = {"iterations": 2, **other}
        with pytest.raises(ConfigError, match=rf"--task: .*trained holds an adaptation to {TASK} under other settings "
                                              rf"\({differs}\); an adaptation is its split's one evaluation"):
            jobs.adapt_ood("trained", TASK, settings.pop("iterations"), make_pool=replay, **settings)
    assert trained_run.read_ood()[TASK] == rows and len(played) == 2  # the test adaptation stays, played once


def test_a_baseline_reads_back_what_it_played_and_plays_its_test_split_once(played):
    first = jobs.baseline("naive", TASK, "cpu-smoke", episodes_per_variation=1, make_pool=replay, progress=False)
    again = jobs.baseline("naive", TASK, "cpu-smoke", episodes_per_variation=1, make_pool=replay, progress=False)
    assert again == first and len(played) == 1
    run = RunDir.named(f"baseline-naive-{TASK}")
    with pytest.raises(ConfigError, match=rf"name: .*{run.path.name} holds this baseline under other settings "
                                          r"\(rollout.max_steps: 4 -> 2\); choose another name"):
        jobs.baseline("naive", TASK, "cpu-smoke", episodes_per_variation=1, make_pool=replay,
                      overrides={"rollout.max_steps": 2})
    with pytest.raises(ConfigError, match=r"split: .* played the test split already under other settings "
                                          r"\(temperature: 0.4 -> 1.0\); a test split is played once"):
        jobs.baseline("naive", TASK, "cpu-smoke", episodes_per_variation=1, temperature=1.0, make_pool=replay)
    dev = jobs.baseline("naive", TASK, "cpu-smoke", episodes_per_variation=1, temperature=1.0, split="dev",
                        make_pool=replay, progress=False)
    assert dev["split"] == "dev" and len(played) == 2 and len(run.read_evals()) == 2


def test_all_figures_of_the_sample_runs_are_drawn_and_saved(tmp_path):
    figures = jobs.all_figures(results.find_runs(results.sample_runs_dir("cpu-smoke")), out=tmp_path / "figures")
    assert {"curve_return_mean", "curve_success_rate", "phase_breakdown", "memory_growth", "paper_comparison",
            "ablation_algo", "ood_curves"} <= set(figures)
    assert all(figure.axes[0].has_data() for figure in figures.values())
    saved = {path.name for path in (tmp_path / "figures").iterdir()}
    assert saved == {f"{name}.{ext}" for name in figures for ext in ("png", "pdf")}


def test_all_figures_leave_out_what_the_runs_cannot_support(fake_trainer):
    jobs.train(smoke(name="a", iterations=1), trainer_class=fake_trainer)
    figures = jobs.all_figures([RunDir.named("a").path])
    assert "curve_return_mean" in figures and "paper_comparison" in figures
    assert not {"ablation_algo", "ood_curves", "curve_success_rate"} & set(figures)


class ScriptedTrainer:
    """The real trainer, its training actions scripted ("look around") so replayed episodes exist."""

    def __new__(cls, config, run, resume=False):
        from empo2_lite.trainer import Trainer

        trainer = Trainer(config, run, resume=resume)
        trainer.sampler = ScriptedSampler(trainer.policy, {"life stages": ["look around"] * 500})
        return trainer


def test_the_comparison_plays_each_piece_once_and_tabulates_algorithms_and_baselines(played, tmp_path, monkeypatch):
    from empo2_lite import comparison
    from empo2_lite.study import compare

    # One iteration of one variation per run: the comparison's bookkeeping is under test, not training.
    monkeypatch.setattr(comparison, "preset", lambda name: apply_overrides(
        preset(name), {"iterations": 1, "variations_per_iteration": 1}))

    root = tmp_path / "compare"
    settings = {"task": TASK, "trials": 2, "progress": False, "make_pool": replay, "trainer_class": ScriptedTrainer}
    with pytest.raises(ConfigError, match="--only: grpo-s7 is not a piece of this experiment; choose from naive-s0"):
        compare.run_comparison(root, "cpu-smoke", [0, 1], only=["grpo-s7"], **settings)
    compare.run_comparison(root, "cpu-smoke", [0, 1], only=["grpo-s1"], **settings)
    assert [path.name for path in results.find_runs(root)] == ["grpo-s1"]
    table = compare.run_comparison(root, "cpu-smoke", [0, 1], **settings)
    assert sorted(path.name for path in results.find_runs(root)) == sorted(compare.pieces([0, 1]))
    logs = {path.stem: json.loads(path.read_text()) for path in (root / "logs").glob("*.json")}
    assert sorted(logs) == sorted(compare.pieces([0, 1]))  # each piece's times, for what it cost
    assert all(log["started"] <= log["evaluated"] for log in logs.values())
    assert list(table.columns) == list(comparison.TABLE_COLUMNS)
    assert list(table["algo"]) == ["naive", "memory-only", "empo2", "grpo"]
    rows = table.set_index("algo")
    assert list(rows["runs"]) == [2, 2, 2, 2] and rows.loc["grpo", "training_minutes"] > 0
    # Every piece played the same test variations once each, so the paired gain is the difference of the means.
    assert rows.loc["empo2", "gain_over_naive"] == pytest.approx(rows.loc["empo2", "test_return"]
                                                                 - rows.loc["naive", "test_return"])
    assert rows.loc["grpo", "gain_se"] >= 0 and rows.loc["naive", "gain_over_naive"] == 0
    assert RunDir(root / "grpo-s0").config().algo == "grpo" and RunDir(root / "empo2-s1").config().seed == 1
    for kind in jobs.BASELINES:  # the baselines are played once per seed too, and say so
        [row] = RunDir(root / f"{kind}-s1").read_evals()
        assert (row["baseline"], row["seed"], RunDir(root / f"{kind}-s1").config().seed) == (kind, 1, 1)
    evaluations = len(played)
    compare.run_comparison(root, "cpu-smoke", [0, 1], **settings)  # everything done: nothing is played again
    assert len(played) == evaluations
    # "look around" scores 0 at every recorded step of variations 6..9: every piece returns 0, so no gain.
    assert rows["test_return"].tolist() == [0.0] * 4 and rows["test_return_std"].tolist() == [0.0] * 4
    assert rows["gain_over_naive"].tolist() == [0.0] * 4 and rows["gain_se"].tolist() == [0.0] * 4
    # Each run counts with its last test evaluation: an earlier test row and a later dev row change nothing.
    RunDir(root / "grpo-s0").append_eval({"iteration": 0, "split": "test", "kind": "final", "return_mean": -100.0,
                                          "per_variation": dict.fromkeys(["6", "7", "8", "9"], -100.0)})
    RunDir(root / "grpo-s1").append_eval({"iteration": 99, "split": "dev", "kind": "periodic", "return_mean": 50.0,
                                          "per_variation": dict.fromkeys(["4", "5"], 50.0)})
    again = comparison.comparison_table(root).set_index("algo")
    assert again.loc["grpo", ["runs", "test_return", "gain_over_naive", "gain_se"]].tolist() == [2, 0.0, 0.0, 0.0]


def test_the_comparison_refuses_a_repeated_seed_and_no_trials():
    from empo2_lite.study.compare import check_comparison

    with pytest.raises(ConfigError, match="--seeds: 1 given twice"):
        check_comparison("cpu-smoke", [0, 1, 1])
    with pytest.raises(ConfigError, match="--trials: 0 is not allowed"):
        check_comparison("cpu-smoke", [0], trials=0)
    assert sorted(check_comparison("cpu-smoke", [3], task=TASK)) == ["empo2-s3", "grpo-s3"]


def test_the_comparison_trains_the_algorithms_it_is_given():
    from empo2_lite.study.compare import check_comparison, pieces

    configs = check_comparison("cpu-smoke", [0, 1], algos=["grpo", "gigpo", "empo2+gigpo"])
    assert {name: config.algo for name, config in configs.items() if name.endswith("-s0")} == {
        "grpo-s0": "grpo", "gigpo-s0": "gigpo", "empo2+gigpo-s0": "empo2+gigpo"}
    assert pieces([0], ["gigpo"]) == ["naive-s0", "memory-only-s0", "gigpo-s0"]
    with pytest.raises(ConfigError, match="--algos: 'ppo' is not allowed; choose one of: empo2, grpo"):
        check_comparison("cpu-smoke", [0], algos=["gigpo", "ppo"])
    with pytest.raises(ConfigError, match="^--algos: gigpo given twice; give each algorithm once$"):
        check_comparison("cpu-smoke", [0], algos=["gigpo", "gigpo"])
    with pytest.raises(ConfigError, match="--only: gigpo-s0 is not a piece of this experiment"):
        check_comparison("cpu-smoke", [0], only=["gigpo-s0"])


def test_the_paired_gain_and_its_standard_error_golden_values():
    from empo2_lite.comparison import paired_gain

    trained = [{"1": 10, "2": 20, "3": 30}, {"1": 20, "2": 20, "3": 50}]   # per variation over seeds: 15, 20, 40
    naive = [{"1": 0, "2": 10, "3": 10}, {"1": 0, "2": 20, "3": 10}]       # 0, 15, 10
    gain, error = paired_gain(trained, naive)                               # differences 15, 5, 30
    assert gain == pytest.approx(50 / 3)
    assert error == pytest.approx((((15 - 50 / 3) ** 2 + (5 - 50 / 3) ** 2 + (30 - 50 / 3) ** 2) / 2) ** 0.5 / 3 ** 0.5)
    assert error == pytest.approx(7.264832)
    # Variation ids as ints (hand-made) or strings (read from JSON) pair alike; only shared variations count.
    shared = paired_gain([{1: 10, 2: 20, 9: 99}], [{"1": 0, "2": 0}])
    assert shared == (15.0, pytest.approx(5.0))  # std(10, 20) / sqrt(2)
    one = paired_gain([{"1": 10}], [{"1": 4}])
    assert one[0] == 6 and math.isnan(one[1])  # one variation: no standard error
    assert all(map(math.isnan, paired_gain([{"1": 10}], [{"2": 4}])))  # no variation in common


def test_the_table_pairs_eval_rows_by_variation_over_both_sides_seeds():
    import pandas as pd

    from empo2_lite.comparison import tabulate

    def row(run, algo, iteration, per_variation, **extra):
        return {"run": run, "algo": algo, "iteration": iteration, "per_variation": per_variation,
                "return_mean": sum(per_variation.values()) / len(per_variation), **extra}

    def solved(first, second):  # success shares of variations 1 and 2, and the success rate they make
        return {"per_variation_success": {"1": first, "2": second}, "success_rate": (first + second) / 2}

    evals = pd.DataFrame([
        row("naive-s0", "naive", 0, {"1": -100, "2": 8}, **solved(0, 0)),
        row("naive-s1", "naive", 0, {"1": 8, "2": 8}, **solved(0, 0.5)),
        row("grpo-s0", "grpo", 4, {"1": -100, "2": -100}),                      # an earlier evaluation: not counted
        row("grpo-s0", "grpo", 8, {"1": 17, "2": 8}, **solved(1, 0)), row("grpo-s1", "grpo", 8, {"1": 25, "2": 17}, **solved(1, 1)),
        row("grpo-s1", "grpo", 8, {"1": 99, "2": 99}, split="dev"),            # dev scores choices, not results
        {"run": "memory-only", "algo": "memory-only", "iteration": 0, "return_mean": -30.0},  # an older row
    ])
    metrics = pd.DataFrame({"run": ["grpo-s0"], "algo": ["grpo"], "iteration": [1], "mode": ["plain"],
                            "time/rollout": [120.0]})
    table = tabulate(evals, metrics).set_index("algo")
    # grpo per variation over seeds: 21, 12.5; naive: -46, 8; differences 67 and 4.5
    assert table.loc["grpo", "gain_over_naive"] == pytest.approx(35.75)
    assert table.loc["grpo", "gain_se"] == pytest.approx(31.25)                    # std(67, 4.5) / sqrt(2)
    assert table.loc["grpo", "test_return"] == pytest.approx(16.75)
    # success shares over seeds: grpo 1, 0.5 by variation; naive 0, 0.25: differences 1 and 0.25
    assert table.loc["grpo", ["success_rate", "success_gain"]].tolist() == pytest.approx([0.75, 0.625])
    assert table.loc["grpo", "success_rate_std"] == pytest.approx(0.5 ** 0.5 / 2)     # std(0.5, 1)
    assert table.loc["grpo", "success_gain_se"] == pytest.approx(0.375)              # std(1, 0.25) / sqrt(2)
    assert math.isnan(table.loc["memory-only", "success_gain"])                      # no per-variation successes
    assert table.loc["naive", ["runs", "gain_over_naive", "gain_se"]].tolist() == [2, 0, 0]
    assert table.loc["memory-only", "gain_over_naive"] == pytest.approx(-30 + 19)  # no per_variation: means, no SE
    assert math.isnan(table.loc["memory-only", "gain_se"])
    assert table.loc["grpo", ["memory_iterations", "memory_iterations_with_tips", "training_minutes"]].tolist() == [
        0, 0, 2.0]


def test_the_learning_target_needs_the_gain_beyond_both_spreads():
    import pandas as pd

    from empo2_lite.comparison import meets_target

    nan = math.nan
    table = pd.DataFrame({"algo": ["naive", "grpo", "empo2", "lone", "noisy", "unpaired"], "runs": [3, 3, 3, 1, 3, 3],
                          "test_return": [-50.0, -20.0, -25.0, 0.0, -20.0, -20.0],
                          "test_return_std": [nan, 10.0, 14.0, 0.0, 10.0, 10.0],
                          "gain_over_naive": [0.0, 30.0, 25.0, 50.0, 30.0, 30.0],
                          "gain_se": [0.0, 12.0, 5.0, 1.0, 16.0, nan]})
    assert meets_target(table, "grpo")          # 30 >= 20, 30 > 2 x 10 and 30 > 2 x 12
    assert not meets_target(table, "empo2")     # 25 < 2 x 14 (the spread over seeds)
    assert not meets_target(table, "noisy")     # 30 > 2 x 10 over seeds, but 30 < 2 x 16 (the paired standard error)
    assert not meets_target(table, "unpaired")  # no standard error: no verdict
    assert not meets_target(table, "lone")      # one seed has no spread to compare with
    assert not meets_target(table, "absent")
    assert not meets_target(table, "grpo", gain=31.0)
    edges = pd.DataFrame({"algo": ["two", "at-gain", "at-std", "at-se"], "runs": [2, 3, 3, 3],
                          "test_return_std": [1.0, 1.0, 15.0, 1.0], "gain_over_naive": [30.0, 20.0, 30.0, 30.0],
                          "gain_se": [1.0, 1.0, 1.0, 15.0]})
    assert meets_target(edges, "two")           # two seeds are enough
    assert meets_target(edges, "at-gain")       # the target gain itself passes
    assert not meets_target(edges, "at-std")    # a gain of exactly twice the spread over seeds does not
    assert not meets_target(edges, "at-se")     # nor one of exactly twice the paired standard error


def test_the_cpu_learn_table_still_reads_the_single_unseeded_baselines():
    from empo2_lite import comparison

    table = comparison.comparison_table(results.sample_runs_dir("cpu-learn")).set_index("algo")
    assert list(table.index) == ["naive", "memory-only", "empo2", "grpo"] and list(table["runs"]) == [1, 1, 3, 3]
    assert table.loc["empo2", "gain_over_naive"] == pytest.approx(-6.033333 + 45.55)
    assert table.loc["grpo", "gain_over_naive"] == pytest.approx(13.383333 + 45.55)
    assert table["gain_se"].tolist()[2:] == pytest.approx([12.711290, 12.752126])
    # README "Results today": GRPO 13.4 +- 6.6, EMPO2 -6.0 +- 34.5 over 3 seeds (each run's last evaluation, after
    # iteration 8; the first ones, after iteration 4, would give 10.0 and -3.3), naive -45.5, memory-only -61.8;
    # gains over naive +58.9 (se 12.8) and +39.5 (se 12.7).
    assert table["test_return"].tolist() == pytest.approx([-45.55, -61.75, -6.033333, 13.383333])
    assert table["test_return_std"].tolist()[2:] == pytest.approx([34.500954, 6.600063])
    assert all(map(math.isnan, table["test_return_std"].tolist()[:2]))  # one run: no spread
    assert [f"{value:+.1f} (se {se:.1f})" for value, se in zip(table["gain_over_naive"][2:], table["gain_se"][2:])] == [
        "+39.5 (se 12.7)", "+58.9 (se 12.8)"]
    assert table.loc["naive", "gain_over_naive"] == 0 and math.isnan(table.loc["memory-only", "gain_se"])
    assert table.loc["memory-only", "gain_over_naive"] == pytest.approx(-61.75 + 45.55)
    assert table.loc["empo2", ["memory_iterations", "memory_iterations_with_tips"]].tolist() == [5, 2]
    assert table.loc["grpo", ["memory_iterations", "memory_iterations_with_tips"]].tolist() == [0, 0]
    assert comparison.tips_lines(table.reset_index()) == ["empo2: tips reached a prompt in 2 of 5 memory iterations"]
    verdicts = {algo: comparison.meets_target(table.reset_index(), algo) for algo in ("empo2", "grpo")}
    assert verdicts == {"empo2": False, "grpo": True}  # empo2: 39.5 < 2 x 34.5, its std over seeds


def test_a_studys_tables_pair_the_compared_runs_with_each_reference_folder(tmp_path):
    from empo2_lite import comparison

    def run(folder, name, values, **overrides):
        directory = RunDir(tmp_path / folder / name)
        directory.start(apply_overrides(preset("cpu-smoke"), {"name": name, **overrides}))
        directory.append_eval({"iteration": 3, "split": "test", "return_mean": sum(values) / 2,
                               "per_variation": {"1": values[0], "2": values[1]}, "success_rate": 0.0})

    run("main", "grpo-s0", (10, 20), algo="grpo")
    run("main", "naive-s0", (0, 0), baseline="naive")
    run("reference-d0", "naive-s0", (10, 10), baseline="naive", **{"rollout.demonstrations": 0})
    run("screen", "grpo-preset", (99, 99), algo="grpo")  # a screening run: in no table
    (tmp_path / "logs").mkdir()
    tables = comparison.study_tables(tmp_path)
    assert list(tables) == ["main", "reference-d0"]  # main first
    assert [table.set_index("algo").loc["grpo", "gain_over_naive"] for table in tables.values()] == [15, 5]
    assert all(list(table["algo"]) == ["naive", "grpo"] for table in tables.values())


def test_the_success_target_needs_the_gain_over_every_reference():
    import pandas as pd

    from empo2_lite.comparison import meets_success_target

    def table(gain, error, runs=3):
        return pd.DataFrame({"algo": ["naive", "grpo"], "runs": [3, runs], "success_gain": [0.0, gain],
                             "success_gain_se": [0.0, error]})

    assert meets_success_target({"main": table(0.30, 0.10), "reference-d0": table(0.25, 0.05)}, "grpo")
    assert not meets_success_target({"main": table(0.30, 0.10), "reference-d0": table(0.20, 0.05)}, "grpo")  # < 25
    assert not meets_success_target({"main": table(0.30, 0.15)}, "grpo")        # 30 = 2 x 15: not above it
    assert not meets_success_target({"main": table(0.30, math.nan)}, "grpo")    # no standard error, no verdict
    assert not meets_success_target({"main": table(0.30, 0.01, runs=1)}, "grpo")
    assert not meets_success_target({"main": table(0.30, 0.01)}, "empo2") and not meets_success_target({}, "grpo")


def test_the_shipped_study_states_the_results_documents_numbers():
    from empo2_lite import comparison

    study = results.sample_runs_dir("cpu-study")
    tables = {folder: table.set_index("algo") for folder, table in comparison.study_tables(study).items()}
    assert list(tables) == ["main", "reference-d0"]
    # docs/results-cpu-study.md, "The result": gains paired by variation (se) against each reference
    assert [f"{tables['main'].loc[algo, 'gain_over_naive']:+.1f} ({tables['main'].loc[algo, 'gain_se']:.1f})"
            for algo in ("grpo", "gigpo", "empo2")] == ["+64.2 (6.0)", "+65.8 (5.9)", "+40.5 (8.4)"]
    assert [f"{tables['reference-d0'].loc[algo, 'gain_over_naive']:+.1f}" for algo in ("grpo", "gigpo", "empo2")] == [
        "+3.8", "+5.4", "-19.9"]
    assert tables["reference-d0"].loc["naive", "test_return"] == pytest.approx(5.9)
    assert (tables["main"]["success_rate"] == 0).all() and (tables["main"]["runs"] == 3).all()
    plain = {folder: table.reset_index() for folder, table in tables.items()}
    assert [comparison.meets_target(plain["main"], algo) for algo in ("grpo", "gigpo", "empo2")] == [True, True, False]
    assert not any(comparison.meets_target(plain["reference-d0"], algo) for algo in ("grpo", "gigpo", "empo2"))
    assert not any(comparison.meets_success_target(plain, algo) for algo in ("grpo", "gigpo", "empo2"))
    use = results.memory_use(results.load_metrics(results.find_runs(study / "main"))).loc["empo2"]
    assert (use["memory_iterations"], use["with_tips"], use["off_policy_updates"]) == (4, 3, 3)
    assert use["tips_per_step"] == pytest.approx(6.45, abs=0.01)

"""The jobs shared by the command line, ``make demo`` and the notebooks (``empo2_lite/jobs.py``).

Training is driven through a fake trainer that writes what the real one writes (config, checkpoints);
evaluation, baselines and OOD adaptation play recorded ScienceWorld transitions (the replay pool, no
Java) with a scripted policy; figures come from the shipped sample runs. The end-to-end run on real
JVMs is the smoke demo (test_cli.py), which chains train, final evaluation and all figures.
"""

from __future__ import annotations

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
        calls.append({"episodes": len(specs), "temperature": config.temperature, "memory": retrieve is not None})
        sampler = ScriptedSampler(policy.tokenizer, {"life stages": ["look around"] * len(specs) * config.max_steps})
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
    hotter = jobs.final_evaluation(trained_run.path, temperature=1.0, make_pool=replay)
    assert hotter["temperature"] == 1.0 and [call["temperature"] for call in played] == [0.4, 1.0]
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


def test_a_baseline_of_an_unknown_kind_is_refused():
    with pytest.raises(ConfigError, match="baseline: 'reflexion' is not allowed"):
        jobs.baseline("reflexion", TASK, "cpu-smoke")


def test_ood_adaptation_is_saved_with_the_run_and_read_back(trained_run, played):
    rows = jobs.adapt_ood("trained", TASK, 2, make_pool=replay, progress=False)
    assert [row["used_memory"] for row in rows] == [False, True] and rows[0]["trained_on"] == TASK
    assert trained_run.read_ood()[TASK] == rows and len(played) == 2
    assert jobs.adapt_ood("trained", TASK, 2, make_pool=replay) == rows and len(played) == 2
    assert list(results.load_ood([trained_run.path])["iteration"]) == [1, 2]  # shown 1-based
    with pytest.raises(ConfigError, match="--run: no run named 'nope'"):
        jobs.adapt_ood("nope", TASK, 2, make_pool=replay)


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
        trainer.sampler = ScriptedSampler(trainer.policy.tokenizer, {"life stages": ["look around"] * 500})
        return trainer


def test_the_comparison_plays_each_piece_once_and_tabulates_algorithms_and_baselines(played, tmp_path):
    from empo2_lite import comparison

    root = tmp_path / "compare"
    settings = {"task": TASK, "trials": 2, "progress": False, "make_pool": replay, "trainer_class": ScriptedTrainer}
    with pytest.raises(ConfigError, match="--only: grpo-s7 is not a piece of this experiment; choose from naive"):
        comparison.run_comparison(root, "cpu-smoke", [0, 1], only=["grpo-s7"], **settings)
    comparison.run_comparison(root, "cpu-smoke", [0, 1], only=["grpo-s1"], **settings)
    assert [path.name for path in results.find_runs(root)] == ["grpo-s1"]
    table = comparison.run_comparison(root, "cpu-smoke", [0, 1], **settings)
    assert sorted(path.name for path in results.find_runs(root)) == sorted(comparison.pieces([0, 1]))
    assert list(table["algo"]) == ["naive", "memory-only", "empo2", "grpo"]
    rows = table.set_index("algo")
    assert list(rows["runs"]) == [1, 1, 2, 2] and rows.loc["grpo", "training_minutes"] > 0
    assert rows.loc["empo2", "gain_over_naive"] == pytest.approx(rows.loc["empo2", "test_return"]
                                                                 - rows.loc["naive", "test_return"])
    assert RunDir(root / "grpo-s0").config().algo == "grpo" and RunDir(root / "empo2-s1").config().seed == 1
    evaluations = len(played)
    comparison.run_comparison(root, "cpu-smoke", [0, 1], **settings)  # everything done: nothing is played again
    assert len(played) == evaluations


def test_the_learning_target_needs_the_gain_and_a_small_spread_over_seeds():
    import pandas as pd

    from empo2_lite.comparison import meets_target

    table = pd.DataFrame({"algo": ["naive", "grpo", "empo2", "lone"], "runs": [1, 3, 3, 1],
                          "test_return": [-50.0, -20.0, -25.0, 0.0], "test_return_std": [float("nan"), 10.0, 14.0, 0.0],
                          "gain_over_naive": [0.0, 30.0, 25.0, 50.0]})
    assert meets_target(table, "grpo")          # 30 >= 20 and 30 > 2 x 10
    assert not meets_target(table, "empo2")     # 25 < 2 x 14
    assert not meets_target(table, "lone")      # one seed has no spread to compare with
    assert not meets_target(table, "absent")

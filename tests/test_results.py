"""The results layer and figures, from the shipped sample runs (cpu-smoke preset) and the paper."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from empo2_lite import plots, results


@pytest.fixture(scope="module")
def sample():
    runs = results.find_runs(results.sample_runs_dir("cpu-smoke"))
    return runs, results.load_metrics(runs), results.load_evals(runs)


def test_paper_table_matches_the_papers_printed_averages():
    table = results.paper_table()
    assert table["task"].nunique() == 18 and set(table["method"]) == {"Naive", "Reflexion", "Retrospex", "GRPO", "EMPO2"}
    printed = results.paper_results()["scienceworld"]["average"]
    for method, average in printed.items():
        assert table[table.method == method]["mean"].mean() == pytest.approx(average, abs=0.1), method
    empo2 = table[(table.method == "EMPO2")].set_index("task")
    assert empo2.at["find-animal", "mean"] == 100.0 and empo2.at["chemistry-mix", "std"] == 12.4


def test_sample_runs_load_as_tidy_frames(sample):
    runs, metrics, evals = sample
    assert len(runs) == 4 and set(metrics["algo"]) == {"empo2", "grpo"} and set(metrics["seed"]) == {0, 1}
    assert metrics.groupby("run")["iteration"].apply(list).map(lambda its: its == list(range(1, 7))).all()  # shown 1-based
    assert set(metrics.loc[metrics.algo == "grpo", "mode"]) == {"plain"}
    assert {"run", "task", "algo", "seed", "preset_model", "iteration", "return_mean"} <= set(evals.columns)
    assert set(evals["preset_model"]) == {"tiny:byte"}


FIGURES = ("learning_curves", "phase_breakdown", "memory_growth", "paper_comparison", "ablation_algo", "ood_curves")


@pytest.mark.parametrize("name", FIGURES)
def test_every_figure_renders_from_the_sample_runs(sample, tmp_path, name):
    runs, metrics, evals = sample
    figure = {"learning_curves": lambda: plots.learning_curves(metrics),
              "phase_breakdown": lambda: plots.phase_breakdown(metrics),
              "memory_growth": lambda: plots.memory_growth(metrics),
              "paper_comparison": lambda: plots.paper_comparison(results.paper_table(), evals),
              "ablation_algo": lambda: plots.ablation_bars(evals, "algo"),
              "ood_curves": lambda: plots.ood_curves(results.load_ood(runs))}[name]()
    assert figure.axes and figure.axes[0].has_data()
    paths = plots.save_figure(figure, tmp_path / name)
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 1000 for p in paths)


def test_learning_curves_draw_one_band_per_algorithm(sample):
    _, metrics, _ = sample
    axes = plots.learning_curves(metrics).axes[0]
    assert [line.get_label() for line in axes.get_lines()] == ["EMPO² (2 runs)", "GRPO (2 runs)"]
    assert len(axes.collections) == 2
    assert axes.get_ylabel() == "training return (mean per iteration)"
    one_run = metrics[metrics["run"] == metrics["run"].iloc[0]]
    assert [line.get_label() for line in plots.learning_curves(one_run).axes[0].get_lines()] == [
        f"{plots.display_name(one_run['algo'].iloc[0])} (1 run)"]


def test_ood_rows_load_with_the_trained_task(sample):
    runs, _, _ = sample
    ood = results.load_ood(runs)
    assert list(ood["iteration"]) == [1, 2, 3, 4] and set(ood["trained_on"]) == {"find-animal"}
    assert set(ood["task"]) == {"find-plant"} and list(ood["used_memory"]) == [False, True, True, True]


def test_report_cites_the_paper_numbers_and_names_the_model(sample):
    _, _, evals = sample
    report = results.report_markdown(evals, results.paper_table())
    rows = [line for line in report.splitlines() if line.startswith("| find-animal")]
    assert len(rows) == 2 and all("| cpu-smoke | tiny:byte |" in row and "| 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |" in row for row in rows)


# README "Results today": test return (mean over seeds) of the shipped cpu-learn runs, each run's LAST evaluation
# (their first, after iteration 4, would give GRPO 10.0 and EMPO2 -3.3).
CPU_LEARN_REPORT = [
    "| find-animal | empo2 | cpu-learn | embedded:smollm2-135m-instruct | 3 | -6.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
    "| find-animal | grpo | cpu-learn | embedded:smollm2-135m-instruct | 3 | 13.4 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
    "| find-animal | memory-only | cpu-learn | embedded:smollm2-135m-instruct | 1 | -61.8 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
    "| find-animal | naive | cpu-learn | embedded:smollm2-135m-instruct | 1 | -45.5 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
]

# README "Results today" and docs/results-cpu-study.md: the protocol study's compared runs and their untrained
# reference (one demonstration), each over 3 seeds; what `report` prints by default.
CPU_STUDY_REPORT = [
    "| find-animal | empo2 | cpu-learn | embedded:smollm2-135m-instruct | 3 | -14.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
    "| find-animal | gigpo | cpu-learn | embedded:smollm2-135m-instruct | 3 | 11.3 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
    "| find-animal | grpo | cpu-learn | embedded:smollm2-135m-instruct | 3 | 9.7 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
    "| find-animal | naive | cpu-learn | embedded:smollm2-135m-instruct | 3 | -54.6 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
]


def test_the_report_of_the_cpu_learn_runs_states_the_readmes_numbers():
    evals = results.load_evals(results.find_runs(results.sample_runs_dir("cpu-learn")))
    report = results.report_markdown(evals, results.paper_table()).splitlines()
    assert report[2:6] == CPU_LEARN_REPORT and report[6] == ""


def test_the_report_averages_each_runs_latest_evaluation_over_runs():
    def row(run, algo, iteration, value, task="find-animal"):
        return {"run": run, "task": task, "algo": algo, "preset": "p", "preset_model": "m", "iteration": iteration,
                "return_mean": value}

    evals = pd.DataFrame([row("a", "grpo", 8, 30.0), row("a", "grpo", 4, -100.0), row("b", "grpo", 2, 50.0),
                          row("b", "grpo", 6, 10.0), row("c", "empo2", 3, -7.25), row("d", "grpo", 1, 1.0, "made-up")])
    report = results.report_markdown(evals, results.paper_table())
    assert report.splitlines()[2:5] == ["| find-animal | empo2 | p | m | 1 | -7.2 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
                                        "| find-animal | grpo | p | m | 2 | 20.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
                                        "| made-up | grpo | p | m | 1 | 1.0 | nan | - | nan | nan | nan | nan |"]
    empty = results.report_markdown(pd.DataFrame(columns=["run", "iteration", "return_mean"]), results.paper_table())
    assert empty.splitlines()[2] == ""  # a header and the note, no row


def test_the_report_shows_the_test_return_not_a_later_dev_evaluation():
    evals = pd.DataFrame([
        {"run": "a", "task": "find-animal", "algo": "grpo", "preset": "p", "preset_model": "m", "iteration": 8,
         "split": "test", "kind": "final", "return_mean": 12.0},
        {"run": "a", "task": "find-animal", "algo": "grpo", "preset": "p", "preset_model": "m", "iteration": 12,
         "split": "dev", "kind": "periodic", "return_mean": 99.0}])
    assert "| find-animal | grpo | p | m | 1 | 12.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |" in results.report_markdown(evals, results.paper_table())


def test_plot_and_report_commands(tmp_path):
    smoke = str(results.sample_runs_dir("cpu-smoke"))
    out = subprocess.run([sys.executable, "-m", "empo2_lite", "plot", "--runs", smoke, "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    names = {p.stem for p in tmp_path.iterdir()}
    assert names >= {"curve_return_mean", *FIGURES[1:]} and f"{len(names)} figures (PNG + PDF) in {tmp_path}" in out.stdout
    report = subprocess.run([sys.executable, "-m", "empo2_lite", "report", "--runs", smoke], capture_output=True,
                            text=True, timeout=120)
    assert report.returncode == 0 and "| find-animal | empo2 | cpu-smoke | tiny:byte | 2 |" in report.stdout
    default = subprocess.run([sys.executable, "-m", "empo2_lite", "report"], capture_output=True, text=True, timeout=120)
    assert default.returncode == 0  # the protocol study: three algorithms and the untrained model over 3 seeds
    assert default.stdout.splitlines()[2:7] == [*CPU_STUDY_REPORT, ""]  # the README's numbers, each run's last eval
    missing = subprocess.run([sys.executable, "-m", "empo2_lite", "report", "--runs", str(tmp_path / "nope")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "no runs folder" in missing.stderr


def test_ablation_labels_round_settings_like_two_thirds():
    evals = pd.DataFrame({"run": ["a", "b"], "iteration": [1, 1], "q": [2 / 3, 0.85], "return_mean": [1.0, 2.0]})
    figure = plots.ablation_bars(evals, "q")
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert labels == ["0.667\n(1 run)", "0.85\n(1 run)"]


def test_iteration_axes_have_whole_ticks_even_for_a_lone_point(sample):
    _, metrics, _ = sample
    first = metrics[(metrics["run"] == metrics["run"].iloc[0]) & (metrics["iteration"] == 1)]
    for figure in (plots.learning_curves(first), plots.memory_growth(first)):
        axes = figure.axes[0]
        low, high = axes.get_xlim()
        assert [tick for tick in axes.get_xticks() if low <= tick <= high] == [1.0]


def test_counts_are_pluralised():
    assert (results.counted(1, "iteration"), results.counted(3, "iteration"), results.counted(0, "run")) == (
        "1 iteration", "3 iterations", "0 runs")


def test_the_metrics_table_is_narrow_and_counts_from_one(sample):
    _, metrics, _ = sample
    one = results.metrics_table(metrics[metrics["run"] == "smoke-empo2-s0"])
    assert list(one.index) == list(range(1, 7)) and one.index.name == "iteration"
    assert list(one.columns) == ["mode", "return", "success", "novelty", "loss", "masked", "tips stored", "rollout s",
                                 "update s"]
    assert results.metrics_table(metrics).index.names == ["run", "iteration"]


def test_runs_are_found_at_any_depth_but_not_inside_a_run(tmp_path):
    for folder in ("a", "group/b", "group/b/inside", "group/deeper/c"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "config.json").write_text("{}")
    (tmp_path / "empty" / "nothing").mkdir(parents=True)
    found = [path.relative_to(tmp_path).as_posix() for path in results.find_runs(tmp_path)]
    assert found == ["a", "group/b", "group/deeper/c"]
    assert results.find_runs(tmp_path / "group" / "b") == [tmp_path / "group" / "b"]


def test_the_learning_comparison_figure_shows_curves_baselines_and_diagnostics():
    metrics = pd.DataFrame([{"run": f"{algo}-s{seed}", "algo": algo, "iteration": it, "charts/return_mean": -50.0 + 10 * it,
                             "diagnostics/equal_return_groups": 0.0, "diagnostics/wrong_focus_share": 0.5 / it,
                             "diagnostics/response_tokens_mean": 10.0, "diagnostics/length_limit_share": 0.3,
                             **({"diagnostics/step_group_share": 0.4} if algo == "gigpo" else {})}
                            for algo in ("empo2", "grpo", "gigpo") for seed in (0, 1) for it in (1, 2, 3)])
    evals = pd.DataFrame([{"run": "naive", "algo": "naive", "iteration": 0, "return_mean": -50.0},
                          {"run": "memory-only", "algo": "memory-only", "iteration": 0, "return_mean": -40.0},
                          *({"run": f"grpo-s{seed}", "algo": "grpo", "iteration": 3, "return_mean": 5.0 * seed}
                            for seed in (0, 1))])
    figure = plots.learning_comparison(metrics, evals)
    assert len(figure.axes) == 2 + 5
    assert figure.get_suptitle() == "EMPO², GRPO and GiGPO: training and test, against the untrained model"
    train, test = figure.axes[:2]
    assert {text.get_text() for text in train.get_legend().get_texts()} == {"EMPO² (2 runs)", "GRPO (2 runs)",
                                                                           "GiGPO (2 runs)"}
    # tested once at the end: one column per algorithm, mean +- std over seeds, not a lone point on an iteration axis
    assert {text.get_text() for text in test.get_legend().get_texts()} == {
        "GRPO (2 runs): 2.5 ± 3.5", "untrained (1 run): -50.0", "untrained + memory (1 run): -40.0"}
    assert [label.get_text() for label in test.get_xticklabels()] == ["GRPO"]
    assert [axes.get_title() for axes in figure.axes[2:]] == [  # every diagnostic the runs logged
        title for column, title in plots.DIAGNOSTICS.items() if column != "diagnostics/actions_as_written"]
    share = figure.axes[-1]  # GiGPO's step-group share: a line for the runs that logged it, none for the others
    assert [list(line.get_ydata()) for line in share.get_lines() if line.get_linewidth() == 2] == [
        [0.4, 0.4, 0.4]] and not plots.learning_comparison(metrics[metrics["algo"] != "gigpo"].drop(
            columns="diagnostics/step_group_share"), evals).axes[6:]


def test_the_learning_comparison_puts_success_first_once_an_episode_is_solved():
    """Success first: with a solved episode anywhere, training and test success (in %) come before
    the returns; the diagnostics row gains the share of actions run as the model wrote them."""
    metrics = pd.DataFrame([{"run": f"grpo-s{seed}", "algo": "grpo", "iteration": it, "charts/return_mean": 10.0 * it,
                             "charts/success_rate": 0.25 * (it - 1), "diagnostics/actions_as_written": 0.5 + 0.1 * it}
                            for seed in (0, 1) for it in (1, 2, 3)])
    evals = pd.DataFrame([{"run": "naive-s0", "algo": "naive", "iteration": 0, "return_mean": 10.0, "success_rate": 0.0},
                          *({"run": f"grpo-s{seed}", "algo": "grpo", "iteration": 3, "return_mean": 70.0,
                             "success_rate": 0.3 + 0.1 * seed} for seed in (0, 1))])
    figure = plots.learning_comparison(metrics, evals)
    assert len(figure.axes) == 4 + 1
    train_success, train_return, test_success, test_return = figure.axes[:4]
    assert [axes.get_title() for axes in figure.axes[:4]] == [
        "training: success rate", "training: return", "test, once, no memory: success rate",
        "test, once, no memory: return"]
    assert [axes.get_ylabel() for axes in figure.axes[:4]] == [
        "success rate (% solved), mean per iteration", "return, mean per iteration",
        "success rate (% solved), mean ± std over runs", "return, mean ± std over runs"]
    [mean] = [line for line in train_success.get_lines() if line.get_linewidth() == 2]
    assert list(mean.get_ydata()) == [0.0, 25.0, 50.0]
    assert {text.get_text() for text in test_success.get_legend().get_texts()} == {
        "GRPO (2 runs): 35.0 ± 7.1", "untrained (1 run): 0.0"}
    assert figure.axes[4].get_title() == plots.DIAGNOSTICS["diagnostics/actions_as_written"]
    headline = plots.final_results(evals).axes
    assert [axes.get_ylabel() for axes in headline] == ["test success rate (% of episodes solved)",
                                                        "test return (score: -100 failed, 100 solved)"]


def test_every_baseline_kind_shows_as_its_own_series_beside_the_trained_runs():
    """Adding names to the baselines must not drop one from a figure: each kind is its own reference
    line, named by the palette, with a colour of its own."""
    from empo2_lite.config import BASELINE_KINDS

    evals = pd.DataFrame([*({"run": f"{kind}-s0", "algo": kind, "iteration": 0, "return_mean": -10.0 * index}
                            for index, kind in enumerate(BASELINE_KINDS)),
                          {"run": "grpo-s0", "algo": "grpo", "iteration": 3, "return_mean": 5.0}])
    metrics = pd.DataFrame([{"run": "grpo-s0", "algo": "grpo", "iteration": it, "charts/return_mean": 1.0 * it}
                            for it in (1, 2, 3)])
    test = plots.learning_comparison(metrics, evals).axes[1]
    labels = [text.get_text() for text in test.get_legend().get_texts()]
    for kind in BASELINE_KINDS:
        assert sum(label.startswith(f"{plots.display_name(kind)} (1 run)") for label in labels) == 1, (kind, labels)
    references = [line for line in test.get_lines() if line.get_label().split(" (")[0] in
                  {plots.display_name(kind) for kind in BASELINE_KINDS}]
    assert len({line.get_color() for line in references}) == len(BASELINE_KINDS)
    periodic = pd.concat([evals, pd.DataFrame([{"run": "grpo-s0", "algo": "grpo", "iteration": 1, "split": "dev",
                                                  "return_mean": 2.0}])])  # curves of evaluations: the other branch
    labels = [text.get_text() for text in plots.learning_comparison(metrics, periodic).axes[1].get_legend().get_texts()]
    assert all(any(label.startswith(plots.display_name(kind)) for label in labels) for kind in BASELINE_KINDS), labels
    final = plots.final_results(evals).axes[0]
    assert {line.get_label().split(" (")[0] for line in final.get_lines()} >= {plots.display_name(kind)
                                                                              for kind in BASELINE_KINDS}


def test_the_learning_comparison_tells_periodic_dev_from_final_test_evaluations():
    metrics = pd.DataFrame([{"run": "grpo-s0", "algo": "grpo", "iteration": it, "charts/return_mean": 0.0}
                            for it in (1, 2)])
    evals = pd.DataFrame([{"run": "grpo-s0", "algo": "grpo", "iteration": 1, "split": "dev", "return_mean": 1.0},
                          {"run": "grpo-s0", "algo": "grpo", "iteration": 2, "split": "dev", "return_mean": 2.0},
                          {"run": "grpo-s0", "algo": "grpo", "iteration": 2, "split": "test", "return_mean": 3.0},
                          {"run": "naive-s0", "algo": "naive", "iteration": 0, "split": "test", "return_mean": -5.0}])
    test = plots.learning_comparison(metrics, evals).axes[1]
    assert [text.get_text() for text in test.get_legend().get_texts()] == [
        "GRPO on dev (1 run)", "GRPO on test (1 run)", "untrained (1 run): -5.0"]
    assert test.get_ylabel() == "evaluation return (no memory)"


# Counted by hand from data/sample_runs/cpu-learn/empo2-s*/metrics.jsonl (mode, charts/tips_shown_mean per iteration):
# s0: iteration 1 on_policy_with_tips (3 tips shown); s1: 0 on_policy_with_tips (0), 3 off_policy (2.575), 7 off_policy
# (0); s2: 1 off_policy (0); every other iteration, and every GRPO iteration, plain.
CPU_LEARN_MEMORY = {"empo2": (5, 2), "grpo": (0, 0)}


def test_memory_usage_counts_the_memory_iterations_that_showed_tips():
    metrics = results.load_metrics(results.find_runs(results.sample_runs_dir("cpu-learn")))
    usage = results.memory_usage(metrics)
    assert {algo: tuple(row) for algo, row in usage.iterrows()} == CPU_LEARN_MEMORY
    assert list(usage.columns) == list(results.MEMORY_COLUMNS)
    assert (metrics["algo"] == "empo2").sum() == 24  # "tips reached a prompt in 2 of the 24 EMPO2 iterations"
    flags = results.memory_flags(metrics)
    shown = metrics.loc[flags["memory_iterations_with_tips"], ["run", "iteration"]]
    assert [tuple(row) for row in shown.itertuples(index=False)] == [("empo2-s0", 2), ("empo2-s1", 4)]  # 1-based
    assert results.memory_usage(metrics.drop(columns="mode")).sum().sum() == 0  # no mode logged: no memory iteration


def test_the_learning_comparison_marks_memory_iterations_with_and_without_tips():
    runs = results.find_runs(results.sample_runs_dir("cpu-learn"))
    train = plots.learning_comparison(results.load_metrics(runs), results.load_evals(runs)).axes[0]
    labels = [text.get_text() for text in train.get_legend().get_texts()]
    assert labels == ["EMPO² (3 runs)", "GRPO (3 runs)", "memory iteration, tips shown: 2 of 5",
                      "memory iteration, no tip shown: 3 of 5"]
    stars, circles = train.collections
    assert sorted(map(tuple, stars.get_offsets().tolist())) == [(2.0, -56.125), (4.0, 15.75)]
    assert len(circles.get_offsets()) == 3


def _grpo_ablation_runs(root):
    """Four hand-made run folders: GRPO and GRPO + novelty, two seeds each; one "grpo+novelty" run was
    stored as "grpo" with the novelty reward on, as kits before the algorithm table wrote it."""
    from empo2_lite.config import apply_overrides, config_json, preset
    from empo2_lite.runs import RunDir

    paths = []
    for algo, seed, offset in (("grpo", 0, 0.0), ("grpo", 1, 2.0), ("grpo+novelty", 0, 20.0), ("grpo+novelty", 1, 22.0)):
        config = apply_overrides(preset("cpu-smoke"), {"algo": algo, "seed": seed, "name": f"{algo}-s{seed}"})
        run = RunDir(root / config.name)
        run.start(config)
        if (algo, seed) == ("grpo+novelty", 1):
            stored = json.loads(config_json(config))
            (run.path / "config.json").write_text(json.dumps({**stored, "algo": "grpo"}))
        for iteration in range(2):
            run.append_metrics({"iteration": iteration, "mode": "plain", "charts/return_mean": offset + iteration})
        run.append_eval({"iteration": 2, "split": "test", "kind": "final", "return_mean": offset + 10.0})
        paths.append(run.path)
    return paths


def test_an_ablation_is_grouped_apart_from_the_algorithm_it_ablates(tmp_path):
    runs = _grpo_ablation_runs(tmp_path)
    metrics, evals = results.load_metrics(runs), results.load_evals(runs)
    assert metrics.groupby("algo")["run"].nunique().to_dict() == {"grpo": 2, "grpo+novelty": 2}
    report = results.report_markdown(evals, results.paper_table()).splitlines()
    assert report[2:4] == ["| find-animal | grpo | cpu-smoke | tiny:byte | 2 | 11.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
                           "| find-animal | grpo+novelty | cpu-smoke | tiny:byte | 2 | 31.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |"]
    curves = plots.learning_curves(metrics).axes[0]
    assert [line.get_label() for line in curves.get_lines()] == ["GRPO (2 runs)", "GRPO + novelty (2 runs)"]
    assert len({line.get_color() for line in curves.get_lines()}) == 2
    bars = plots.ablation_bars(evals, "algo").axes[0]
    assert [label.get_text() for label in bars.get_xticklabels()] == ["GRPO\n(2 runs)", "GRPO + novelty\n(2 runs)"]


def test_each_algorithm_keeps_its_colour_whichever_others_a_figure_holds():
    from empo2_lite.config import ALGOS

    alone = plots.colours(["grpo+novelty"])
    together = plots.colours([*ALGOS, "naive", "memory-only", "made-up"])
    assert alone["grpo+novelty"] == together["grpo+novelty"] == plots.STYLES["grpo+novelty"].colour
    assert len(set(together.values())) == len(together)
    # settings of one algorithm (p of EMPO²): shades of its colour, in the settings' order, never another's colour
    empo2 = plots.shades(plots.STYLES["empo2"].colour, 2)
    assert plots.colours([0.25, 0.1], by="p", algo="empo2") == {0.1: empo2[0], 0.25: empo2[1]}
    assert not set(empo2) & {entry.colour for name, entry in plots.STYLES.items() if name != "empo2"}


def test_the_report_and_the_paper_comparison_know_gigpo_has_no_scienceworld_number():
    evals = pd.DataFrame([{"run": f"{algo}-s0", "task": "find-animal", "algo": algo, "preset": "p", "preset_model": "m",
                           "iteration": 4, "split": "test", "return_mean": value}
                          for algo, value in (("gigpo", 3.0), ("empo2+gigpo", -2.0))])
    report = results.report_markdown(evals, results.paper_table()).splitlines()
    assert report[0].endswith("| paper GRPO | paper GiGPO | paper EMPO2 | paper Naive | paper Reflexion | paper Retrospex |")
    assert report[2:4] == ["| find-animal | empo2+gigpo | p | m | 1 | -2.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |",
                           "| find-animal | gigpo | p | m | 1 | 3.0 | 72.4 | - | 100.0 | -58.2 | 39.5 | 25.9 |"]
    assert "GiGPO on WebShop only (score 86.2; GRPO 79.3, EMPO² 88.3)" in report[-1]
    axes = plots.paper_comparison(results.paper_table(), evals, tasks=["find-animal"]).axes[0]
    assert axes.get_xlabel().endswith("the paper reports GiGPO on WebShop only: no paper bar for it here")
    colours = plots.colours(["gigpo", "empo2+gigpo", "grpo"])
    assert len(set(colours.values())) == 3 and colours["grpo"] == plots.STYLES["grpo"].colour


def test_the_screening_figure_marks_the_chosen_setting_and_its_dev_return():
    import pandas as pd

    from empo2_lite import plots

    metrics = pd.DataFrame({"run": ["grpo-preset"] * 2 + ["grpo-d0"] * 2, "iteration": [1, 2, 1, 2],
                            "charts/return_mean": [-50.0, -20.0, 0.0, 5.0]})
    evals = pd.DataFrame({"run": ["grpo-preset", "grpo-d0", "grpo-d0"], "iteration": [2, 1, 2],
                          "split": ["dev", "dev", "dev"], "return_mean": [3.0, -9.0, 7.0], "return_se": [1.0, 1.0, 2.0]})
    figure = plots.screening(metrics, evals, chosen="grpo-d0")
    curves, bars = figure.axes
    assert [line.get_label() for line in curves.get_lines()] == ["grpo-d0 (chosen)", "grpo-preset"]
    heights = {label.get_text(): patch.get_height() for label, patch in zip(bars.get_xticklabels(), bars.patches)}
    assert heights == {"grpo-d0": 7.0, "grpo-preset": 3.0}  # each run's last dev evaluation
    assert [tuple(patch.get_edgecolor()) == (0, 0, 0, 1) for patch in bars.patches] == [True, False]  # chosen: outlined
    assert len(plots.screening(metrics, evals.drop(columns="split")).axes[1].patches) == 0  # no dev rows: no bars


def test_memory_use_counts_the_updates_that_saw_tips():
    metrics = pd.DataFrame({"algo": ["empo2"] * 5 + ["grpo"],
                            "mode": ["plain", "off_policy", "off_policy", "on_policy_with_tips", "off_policy", "plain"],
                            "charts/tips_shown_mean": [0.0, 4.0, 0.0, 2.0, 6.0, 0.0]})
    use = results.memory_use(metrics)
    assert list(use.index) == ["empo2"]  # GRPO had no memory iteration
    assert use.loc["empo2"].to_dict() == {"memory_iterations": 4, "with_tips": 3, "tips_per_step": 4.0,
                                          "off_policy_updates": 2, "on_policy_updates": 1}

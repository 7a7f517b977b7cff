"""Figures from saved run files: learning curves, the paper comparison, phase times, memory growth.

Every function takes DataFrames from ``results.py`` (iterations counted from 1) and returns a matplotlib ``Figure`` built
without pyplot, so it renders headless (CI, servers) and still shows inline in Jupyter.
``save_figure`` writes PNG and PDF. Colours are the Okabe-Ito palette, readable with the common
forms of colour blindness. Each algorithm of the algorithm table (and each untrained baseline) keeps
one colour in every figure (``colours``): an ablation such as "grpo+novelty" is a label of its own,
never drawn in the colour of "grpo" and never pooled with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from empo2_lite.config import ALGOS, BASELINES
from empo2_lite.results import counted, memory_flags

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
GREY = "#999999"
"""The colour of labels beyond the palette's eight (``colours``)."""
PAPER_METHODS = ("Naive", "Reflexion", "GRPO", "EMPO2")
PHASES = ("rollout", "tips", "memory", "update")


def _label(value) -> str:
    """A setting as a legend or axis label: 2/3 as 0.667, not 0.6666666666666666."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def colours(labels: Iterable, by: str = "algo") -> dict:
    """A colour per label. By ``algo``: the table's algorithms, then the baselines, each at its own
    place in the palette whichever of them a figure holds; other labels (and other settings, in
    their sorted order) take the colours left, in turn, then grey (the table and the baselines fill
    the palette's eight)."""
    labels = set(labels)
    try:
        labels = sorted(labels)
    except TypeError:  # mixed types: an order all the same
        labels = sorted(labels, key=str)
    fixed = {name: colour for name, colour in zip([*ALGOS, *BASELINES], OKABE_ITO)} if by == "algo" else {}
    spare = [colour for colour in (*OKABE_ITO, GREY) if colour not in fixed.values()]
    others = [label for label in labels if label not in fixed]
    return {**{label: fixed[label] for label in labels if label in fixed},
            **{label: spare[index % len(spare)] for index, label in enumerate(others)}}


def _runs(count: int) -> str:
    """'1 run', '3 runs': legends count the seeds behind each line or bar."""
    return counted(count, "run")


def _iteration_axis(axes, iterations: pd.Series, label: str = "iteration") -> None:
    """An x axis of whole iterations (1-based, as ``results`` loads them): integer ticks, and
    room around a lone point, which would otherwise get ticks like 0.96, 0.98, 1.00."""
    axes.set_xlabel(label)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if len(iterations):
        low, high = float(iterations.min()), float(iterations.max())
        pad = max(0.5, 0.05 * (high - low))
        axes.set_xlim(low - pad, high + pad)


METRIC_LABELS = {
    "charts/return_mean": "training return (mean per iteration)",
    "charts/success_rate": "training success rate",
}
"""Axis labels for the metrics people plot most; any other metric is labelled by its name."""


def save_figure(figure: Figure, path: str | Path) -> list[Path]:
    """Write ``path`` as .png and .pdf (whatever suffix it has); return both paths."""
    base = Path(path).with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix in (".png", ".pdf"):
        target = base.with_suffix(suffix)
        figure.savefig(target, dpi=150, bbox_inches="tight")
        written.append(target)
    return written


def learning_curves(metrics: pd.DataFrame, metric: str = "charts/return_mean", hue: str = "algo",
                    title: str | None = None) -> Figure:
    """Mean of ``metric`` over runs (seeds) per iteration, one line per ``hue`` value, with a
    band of +-1 std across runs; runs that did not log ``metric`` get no line (GRPO has no
    step-group share)."""
    if len(metrics) and metric in metrics:
        metrics = metrics[metrics[metric].notna()]
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    palette = colours(metrics[hue], hue) if len(metrics) else {}
    for name, group in metrics.groupby(hue, sort=True):
        colour = palette[name]
        stats = group.groupby("iteration")[metric].agg(["mean", "std", "count"]).reset_index()
        axes.plot(stats["iteration"], stats["mean"], color=colour, marker="o", markersize=3,
                  label=f"{_label(name)} ({_runs(group['run'].nunique())})")
        spread = stats["std"].fillna(0.0)
        axes.fill_between(stats["iteration"], stats["mean"] - spread, stats["mean"] + spread, color=colour, alpha=0.2)
    _iteration_axis(axes, metrics["iteration"])
    axes.set_ylabel(METRIC_LABELS.get(metric, metric.split("/")[-1].replace("_", " ")))
    axes.set_title(title or f"{metric.split('/')[-1].replace('_', ' ')} by {hue}")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False)
    return figure


def paper_comparison(paper: pd.DataFrame, kit_evals: pd.DataFrame | None = None, tasks: list[str] | None = None) -> Figure:
    """Per-task bars of the paper's Naive, Reflexion, GRPO and EMPO² returns, with the kit's latest
    evaluation per algorithm beside them (labelled with the model that produced them)."""
    tasks = tasks or sorted(paper["task"].unique())
    series: list[tuple[str, dict]] = []
    for method in PAPER_METHODS:
        rows = paper[paper["method"] == method].set_index("task")
        series.append((f"paper: {method}", {t: (rows.at[t, "mean"], rows.at[t, "std"]) for t in tasks if t in rows.index}))
    if kit_evals is not None and len(kit_evals):
        latest = kit_evals.sort_values("iteration").groupby("run").tail(1)
        for (algo, model), group in latest.groupby(["algo", "preset_model"]):
            by_task = group.groupby("task")["return_mean"].agg(["mean", "std"])
            series.append((f"kit: {algo} ({model})", {t: (row["mean"], row["std"]) for t, row in by_task.iterrows()}))
    figure = Figure(figsize=(7.5, 0.45 * len(tasks) * len(series) / 3 + 1.8))
    axes = figure.subplots()
    height = 0.8 / len(series)
    for index, (colour, (label, values)) in enumerate(zip(OKABE_ITO, series)):
        positions = [i + index * height for i, task in enumerate(tasks) if task in values]
        means = [values[task][0] for task in tasks if task in values]
        errors = [0.0 if pd.isna(values[task][1]) else values[task][1] for task in tasks if task in values]
        axes.barh(positions, means, height=height, xerr=errors, color=colour, label=label,
                  hatch="//" if label.startswith("kit") else None, error_kw={"elinewidth": 0.8})
    axes.set_yticks([i + 0.4 - height / 2 for i in range(len(tasks))], tasks, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(0, color="black", linewidth=0.6)
    axes.set_xlim(-100, 100)
    axes.set_xlabel("mean test return (score, -100..100)")
    axes.set_title("ScienceWorld: the paper's Table 1 and the kit's runs")
    axes.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if any(label.startswith("kit: ") and "gigpo" in label for label, _ in series):
        axes.text(0.0, -0.12, "paper: GiGPO -, reported on WebShop only", transform=axes.transAxes, fontsize=8)
    return figure


def phase_breakdown(metrics: pd.DataFrame) -> Figure:
    """Mean seconds per iteration spent in each phase, one stacked bar per run."""
    columns = [f"time/{phase}" for phase in PHASES if f"time/{phase}" in metrics]
    means = metrics.groupby("run")[columns].mean()
    figure = Figure(figsize=(6.4, 0.5 * len(means) + 1.5))
    axes = figure.subplots()
    left = pd.Series(0.0, index=means.index)
    for colour, column in zip(OKABE_ITO, columns):
        axes.barh(means.index, means[column], left=left, color=colour, label=column.split("/")[1])
        left += means[column]
    axes.set_xlabel("seconds per iteration")
    axes.set_title("where an iteration's time goes")
    axes.legend(frameon=False, ncols=len(columns), loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return figure


def memory_growth(metrics: pd.DataFrame) -> Figure:
    """Tip-memory entries after each iteration, one line per run."""
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    for colour, (run, group) in zip(OKABE_ITO * 4, metrics.groupby("run")):
        axes.plot(group["iteration"], group["memory/entries"], color=colour, label=run, marker="o", markersize=3)
    _iteration_axis(axes, metrics["iteration"])
    axes.set_ylabel("entries in the tip memory")
    axes.set_title("memory growth")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False, fontsize=8)
    return figure


def ood_curves(ood: pd.DataFrame) -> Figure:
    """Return per adaptation iteration on the new task, one line per (trained run, new task);
    iteration 1 plays without memory."""
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    for colour, ((run, task), group) in zip(OKABE_ITO * 4, ood.groupby(["run", "task"])):
        group = group.sort_values("iteration")
        axes.plot(group["iteration"], group["return_mean"], color=colour, marker="o", markersize=3,
                  label=f"{group['trained_on'].iloc[0]} -> {task} ({run})")
    axes.axvline(1.5, color="grey", linewidth=0.8, linestyle=":")
    axes.text(1.55, 0.02, "memory on", transform=axes.get_xaxis_transform(), fontsize=8, color="grey")
    _iteration_axis(axes, ood["iteration"], "adaptation iteration (weights frozen)")
    axes.set_ylabel("mean return on the new task")
    axes.set_title("OOD adaptation with memory only")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False, fontsize=8)
    return figure


def ablation_bars(evals: pd.DataFrame, by: str) -> Figure:
    """Latest test return per run, averaged over runs (seeds) that share the setting ``by``,
    with +-1 std across them."""
    latest = evals.sort_values("iteration").groupby("run").tail(1)
    stats = latest.groupby(by)["return_mean"].agg(["mean", "std", "count"]).reset_index()
    figure = Figure(figsize=(6.4, 4.0))
    axes = figure.subplots()
    labels = [f"{_label(value)}\n({_runs(count)})" for value, count in zip(stats[by], stats["count"])]
    palette = colours(stats[by], by)
    axes.bar(labels, stats["mean"], yerr=stats["std"].fillna(0.0), color=[palette[value] for value in stats[by]],
             capsize=4)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xlabel(by)
    axes.set_ylabel("latest test return")
    axes.set_title(f"ablation: {by}")
    return figure


DIAGNOSTICS = {
    "diagnostics/equal_return_groups": "groups with all-equal returns\n(no gradient)",
    "diagnostics/wrong_focus_share": "episodes ended by a\nwrong 'focus on'",
    "diagnostics/response_tokens_mean": "tokens per response",
    "diagnostics/length_limit_share": "responses cut at the\ntoken limit",
    "diagnostics/step_group_share": "actions in step groups > 1\n(GiGPO; at its floor: GRPO)",
}
"""The per-iteration diagnostics that explain a flat learning curve, with their panel labels (the
step-group share where runs of a GiGPO algorithm log it: near its floor, episodes / actions, only
the first actions were compared and GiGPO did little beyond GRPO)."""


def learning_comparison(metrics: pd.DataFrame, evals: pd.DataFrame) -> Figure:
    """Algorithms side by side over seeds: training return per iteration and evaluation return at
    each evaluation (thin lines: seeds; thick: their mean; dashed: the dev split of periodic
    evaluations, solid: the test split), the untrained baselines as horizontal lines, and below them
    the diagnostics of every iteration (``DIAGNOSTICS``), so a flat curve comes with its reason: no
    gradient (equal-return groups), the agent still ends episodes with a wrong ``focus on``, it
    rambles into the token limit, or (GiGPO) few actions shared a state with another episode's, so
    its step term had little to compare. On the training curves, EMPO²'s memory iterations are marked
    (``memory_markers``): a curve says something about tips only where they reached a prompt."""
    trained = metrics[~metrics["algo"].isin(("naive", "memory-only"))] if len(metrics) else metrics
    diagnostics = [column for column in DIAGNOSTICS if column in trained]
    figure = Figure(figsize=(11, 7.2 if diagnostics else 4.0))
    grid = figure.add_gridspec(2 if diagnostics else 1, max(len(diagnostics), 2), height_ratios=[1.6, 1] if diagnostics else None)
    palette = colours(trained["algo"]) if len(trained) else {}

    def per_algo(axes, frame: pd.DataFrame, column: str, note: str = "", style: str = "-") -> None:
        for algo, group in frame.groupby("algo", sort=True):
            for _, run in group.groupby("run"):
                run = run.sort_values("iteration")
                axes.plot(run["iteration"], run[column], color=palette[algo], alpha=0.3, linewidth=0.8, linestyle=style)
            mean = group.groupby("iteration")[column].mean()
            axes.plot(mean.index, mean.values, color=palette[algo], linewidth=2, linestyle=style, marker="o",
                      markersize=3, label=f"{algo}{note} ({_runs(group['run'].nunique())})")

    top_width = grid.ncols // 2
    train_axes = figure.add_subplot(grid[0, :top_width])
    if len(trained):
        per_algo(train_axes, trained, "charts/return_mean")
        memory_markers(train_axes, trained)
        _iteration_axis(train_axes, trained["iteration"])
    train_axes.set_ylabel("training return (mean per iteration)")
    train_axes.set_title("training episodes")
    test_axes = figure.add_subplot(grid[0, top_width:], sharey=train_axes)
    trained_evals = evals[~evals["algo"].isin(("naive", "memory-only"))] if len(evals) else evals
    split = (trained_evals["split"].fillna("test") if "split" in trained_evals
             else pd.Series("test", index=trained_evals.index))
    dev = trained_evals[split == "dev"]
    if len(dev):
        per_algo(test_axes, dev, "return_mean", " on dev", "--")
    if len(trained_evals[split == "test"]):
        per_algo(test_axes, trained_evals[split == "test"], "return_mean", " on test" if len(dev) else "")
    if len(trained_evals):
        _iteration_axis(test_axes, trained_evals["iteration"], "iteration (evaluated after it)")
    baselines = evals[evals["algo"].isin(("naive", "memory-only"))] if len(evals) else evals
    for (algo, group), style in zip(baselines.groupby("algo", sort=False), ("--", ":")):
        value = group["return_mean"].mean()
        test_axes.axhline(value, color="black", linestyle=style, linewidth=1,
                          label=f"{algo} (untrained, {_runs(group['run'].nunique())}): {value:.1f}")
    test_axes.set_ylabel("evaluation return (no memory)" if len(dev) else "test return (test split, no memory)")
    test_axes.set_title("evaluation episodes" if len(dev) else "test episodes")
    for axes in (train_axes, test_axes):
        axes.grid(alpha=0.3)
        axes.legend(frameon=False, fontsize=8)
    for index, column in enumerate(diagnostics):
        axes = figure.add_subplot(grid[1, index])
        per_algo(axes, trained[trained[column].notna()], column)  # GRPO logs no step-group share
        _iteration_axis(axes, trained["iteration"])
        axes.set_title(DIAGNOSTICS[column], fontsize=9)
        if not column.endswith("tokens_mean"):
            axes.set_ylim(-0.05, 1.05)
        axes.grid(alpha=0.3)
    present = set(trained["algo"]) if len(trained) else set()
    names = " vs ".join([*(name for name in ALGOS if name in present), *sorted(present - set(ALGOS))])
    figure.suptitle(f"{names or 'no trained run'} over seeds, with the untrained baselines")
    figure.tight_layout()
    return figure


def memory_markers(axes, metrics: pd.DataFrame, column: str = "charts/return_mean") -> None:
    """Mark the memory iterations of ``metrics`` on its curves of ``column``: a star where tips
    reached a prompt, an open circle where none did, each counted in the legend ("memory
    iteration, tips shown: 2 of 5"); nothing when the runs had no memory iteration (GRPO)."""
    flags = memory_flags(metrics)
    memory = flags["memory_iterations"]
    if not memory.any():
        return
    shown, total = flags["memory_iterations_with_tips"], int(memory.sum())
    for chosen, marker, size, face, what in ((shown, "*", 80, "black", "tips shown"),
                                             (memory & ~shown, "o", 30, "none", "no tip shown")):
        axes.scatter(metrics.loc[chosen, "iteration"], metrics.loc[chosen, column], marker=marker, s=size,
                     facecolors=face, edgecolors="black", zorder=3,
                     label=f"memory iteration, {what}: {int(chosen.sum())} of {total}")


def screening(metrics: pd.DataFrame, evals: pd.DataFrame, chosen: str | None = None) -> Figure:
    """A study's screening on the dev split (``benchmarks/gpu_study.py``): per screened setting (a
    run of ``metrics``), its training return per iteration on the left and the dev return it was
    chosen by on the right, the chosen one marked, so a reader sees whether the choice was clear or
    a coin toss between settings within one standard error."""
    figure = Figure(figsize=(11, 4.0))
    curves, bars = figure.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})
    palette = colours(metrics["run"], by="run") if len(metrics) else {}
    for run, group in metrics.groupby("run", sort=True):
        group = group.sort_values("iteration")
        curves.plot(group["iteration"], group["charts/return_mean"], marker="o", markersize=3, color=palette[run],
                    linewidth=2.5 if run == chosen else 1.2, label=f"{run}{' (chosen)' if run == chosen else ''}")
    if len(metrics):
        _iteration_axis(curves, metrics["iteration"])
    curves.set_ylabel(METRIC_LABELS["charts/return_mean"])
    curves.set_title("screening runs: training episodes")
    dev = evals[evals["split"] == "dev"] if "split" in evals else evals.iloc[:0]
    dev = dev.sort_values("iteration").groupby("run").tail(1).sort_values("run")
    if len(dev):
        bars.bar(range(len(dev)), dev["return_mean"], yerr=dev.get("return_se"), capsize=3,
                 color=[palette.get(run, GREY) for run in dev["run"]],
                 edgecolor=["black" if run == chosen else "none" for run in dev["run"]], linewidth=2)
        bars.set_xticks(range(len(dev)), dev["run"], rotation=20, fontsize=8)
    bars.axhline(0, color="black", linewidth=0.5)
    bars.set_ylabel("dev return after the last iteration (+- se)")
    bars.set_title("the choice (dev split)")
    for axes in (curves, bars):
        axes.grid(alpha=0.3)
    curves.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return figure

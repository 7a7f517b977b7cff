"""Figures from saved run files: learning curves, test results, the paper comparison, phase times,
memory growth.

Every function takes DataFrames from ``results.py`` (iterations counted from 1) and returns a
matplotlib ``Figure`` built without pyplot, so it renders headless (CI, servers) and still shows
inline in Jupyter. ``save_figure`` writes PNG and PDF.

Every figure takes its colours, markers, line styles, names and order of algorithms from one
table (``palette.py``: ``STYLES``), so an algorithm or baseline looks the same in all of them and
its seeds are shades of its colour.

What a figure cannot show, it says in a line under its title (``_note``): a curve of one iteration,
a share that stayed at 0, the algorithms a metric does not apply to (left out, never drawn as a
flat line at 0).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from itertools import cycle
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from empo2_lite.algo.algorithms import ALGORITHMS
from empo2_lite.config import ALGOS
from empo2_lite.palette import (GREY, OKABE_ITO, PAPER_METHODS, STYLES, UNTRAINED, Style, colours,  # noqa: F401
                                display_name, order, shades, style)  # (the palette's names read as plots.* too)
from empo2_lite.results import counted, memory_flags, model_name, test_rows

PHASES = {"rollout": "rollouts", "tips": "writing tips", "memory": "memory", "old_logprobs": "old log-probs",
          "update": "update"}
"""The timed phases of an iteration (``time/<phase>``) in the order they run, with their labels."""
PHASE_COLOURS = ("#3B3B3B", "#7A7A7A", "#A8A8A8", "#CFCFCF", "#EDEDED")
"""Greys for phases: a phase is not an algorithm, so it takes none of the algorithms' colours."""


REFERENCE_LINESTYLES = ("--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 3)))
"""Line styles of the reference lines, in turn (repeated when a figure has more references: every
reference is drawn, each in its own colour)."""


def _label(value) -> str:
    """A setting as a legend or axis label: 2/3 as 0.667, not 0.6666666666666666."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _runs(count: int) -> str:
    """'1 run', '3 runs': legends count the seeds behind each line or bar."""
    return counted(count, "run")


def _names(names: Iterable[str]) -> str:
    """'GRPO and GiGPO', 'GRPO, GiGPO and EMPO²'."""
    names = [display_name(name) for name in order(names)]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _size(index: int) -> float:
    """Marker size of the ``index``-th line of a panel: each smaller than the one before, so that lines
    lying exactly on top of each other (GRPO's and GiGPO's clip fraction at 0) still show every marker."""
    return max(3.0, 8.0 - 1.6 * index)


def _note(axes, lines: list[str]) -> None:
    """Say under a single-panel figure's title what it cannot show (the figure's own title is its
    suptitle then): set as the axes' title, so the layout keeps it clear of everything else."""
    if lines:
        axes.set_title("\n".join(lines), fontsize=8, color="dimgrey")


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
    "charts/success_rate": "training success rate (share of episodes solved)",
    "charts/novelty_mean": "novelty reward (mean per step)",
    "charts/steps_mean": "steps per episode",
    "charts/tips_shown_mean": "tips shown per step",
    "losses/masked_fraction": "share of tokens masked in the update",
    "losses/clip_fraction": "share of tokens clipped (PPO ratio)",
    "diagnostics/step_group_share": "share of actions in step groups > 1",
    "memory/entries": "entries in the tip memory",
}
"""Axis labels for the metrics people plot; any other metric is labelled by its name."""
SHARES = ("_rate", "_share", "_fraction")
"""Metric names ending so are shares: drawn on [0, 1], bands clipped to it."""
APPLIES = {
    "charts/novelty_mean": ("no novelty reward", lambda entry: entry.novelty),
    "charts/tips_shown_mean": ("no memory rollouts", lambda entry: entry.memory_rollouts),
    "memory/entries": ("no tip memory", lambda entry: entry.write_tips),
    "diagnostics/step_group_share": ("no step groups", lambda entry: entry.advantage == "gigpo"),
}
"""Metrics that mean something only for some algorithms of the table (why not, and which): the
others are left out of the figure and named under its title, not drawn as a flat line at 0."""
BY_LABELS = {"algo": "algorithm", "p": "p (share of memory rollouts)", "q": "q (share of off-policy updates)",
             "novelty_coef": "novelty coefficient", "mask_granularity": "masking granularity"}
"""Settings named in words on axes and titles."""


def metric_label(metric: str) -> str:
    """A metric in words (``METRIC_LABELS``, else its name without prefix and underscores)."""
    return METRIC_LABELS.get(metric, metric.split("/")[-1].replace("_", " "))


def _applies(metric: str, algo: str) -> bool:
    """Whether ``metric`` means something for ``algo`` (``APPLIES``; names outside the table: yes)."""
    if metric not in APPLIES or algo not in ALGORITHMS:
        return True
    return bool(APPLIES[metric][1](ALGORITHMS[algo]))


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
    band of +-1 std across runs (clipped to [0, 1] for a share, at 0 for a metric that cannot be
    negative). Runs that did not log ``metric`` get no line (GRPO has no step-group share), nor do
    algorithms it does not apply to (``APPLIES``: named under the title). A curve of one iteration,
    or a metric with one value throughout (success at 0, steps at the cap), says so under the title."""
    if len(metrics) and metric in metrics:
        metrics = metrics[metrics[metric].notna()]
    left_out = sorted({algo for algo in metrics.get("algo", []) if not _applies(metric, algo)})
    if left_out:
        metrics = metrics[~metrics["algo"].isin(left_out)]
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    share = metric.endswith(SHARES)
    palette = colours(metrics[hue], hue, _one_algo(metrics)) if len(metrics) else {}
    names = order(metrics[hue]) if hue == "algo" else sorted(set(metrics[hue]), key=str)
    for index, name in enumerate(names):
        group = metrics[metrics[hue] == name]
        look = style(name) if hue == "algo" else Style(palette[name], "osD^vP*X"[index % 8], "-", _label(name))
        stats = group.groupby("iteration")[metric].agg(["mean", "std"]).reset_index()
        axes.plot(stats["iteration"], stats["mean"], color=look.colour, marker=look.marker, markersize=_size(index),
                  linestyle=look.linestyle, label=f"{look.label} ({_runs(group['run'].nunique())})")
        spread = stats["std"].fillna(0.0)
        low, high = stats["mean"] - spread, stats["mean"] + spread
        if share or group[metric].min() >= 0:
            low = low.clip(lower=0.0)
        if share:
            high = high.clip(upper=1.0)
        axes.fill_between(stats["iteration"], low, high, color=look.colour, alpha=0.15)
    _iteration_axis(axes, metrics["iteration"])
    if share:
        axes.set_ylim(-0.03, 1.03)
    axes.set_ylabel(metric_label(metric))
    figure.suptitle(title or f"{metric_label(metric)}, by {BY_LABELS.get(hue, hue)}")
    notes = []
    if len(metrics) and metrics["iteration"].nunique() == 1:
        notes.append("one iteration so far: a single point per line, no curve yet")
    if len(metrics) and metrics[metric].nunique() == 1 and metrics["iteration"].nunique() > 1:
        notes.append(f"{metrics[metric].iloc[0]:g} in every iteration of every run")
    if left_out:
        notes.append(f"not drawn: {_names(left_out)} ({APPLIES[metric][0]})")
    _note(axes, notes)
    axes.grid(alpha=0.3)
    if len(metrics):
        axes.legend(frameon=False, fontsize=8, loc="best")
    return figure


def paper_comparison(paper: pd.DataFrame, kit_evals: pd.DataFrame | None = None, tasks: list[str] | None = None) -> Figure:
    """Per-task bars of the paper's Naive, Reflexion, Retrospex, GRPO and EMPO² returns, with the kit's latest
    test evaluation per algorithm beside them (hatched, labelled with the model that produced
    them); each in the colour of its algorithm (``PAPER_METHODS``)."""
    tasks = tasks or sorted(paper["task"].unique())
    series: list[tuple[str, str, dict]] = []
    for method, kit_name in PAPER_METHODS.items():
        rows = paper[paper["method"] == method].set_index("task")
        series.append((f"paper: {display_name(kit_name) if kit_name in ALGOS else method}", kit_name,
                       {t: (rows.at[t, "mean"], rows.at[t, "std"]) for t in tasks if t in rows.index}))
    kit_evals = test_rows(kit_evals) if kit_evals is not None and len(kit_evals) else None
    if kit_evals is not None and len(kit_evals):
        latest = kit_evals.sort_values("iteration").groupby("run").tail(1)
        for algo in order(latest["algo"]):
            for model, group in latest[latest["algo"] == algo].groupby("preset_model"):
                by_task = group.groupby("task")["return_mean"].agg(["mean", "std"])
                series.append((f"kit: {display_name(algo)} ({model_name(model)})", algo,
                               {t: (row["mean"], row["std"]) for t, row in by_task.iterrows()}))
    figure = Figure(figsize=(7.5, 0.45 * len(tasks) * len(series) / 3 + 2.0 + 0.18 * len(series)), layout="constrained")
    axes = figure.subplots()
    height = 0.8 / len(series)
    for index, (label, name, values) in enumerate(series):
        positions = [i + index * height for i, task in enumerate(tasks) if task in values]
        means = [values[task][0] for task in tasks if task in values]
        errors = [0.0 if pd.isna(values[task][1]) else values[task][1] for task in tasks if task in values]
        kit = label.startswith("kit")
        axes.barh(positions, means, height=height, xerr=errors, color=style(name).colour, label=label,
                  alpha=1.0 if kit else 0.55, hatch="//" if kit else None, edgecolor="white" if kit else None,
                  error_kw={"elinewidth": 0.8})
    axes.set_yticks([i + 0.4 - height / 2 for i in range(len(tasks))], tasks, fontsize=8)
    axes.invert_yaxis()
    axes.axvline(0, color="black", linewidth=0.6)
    axes.set_xlim(-100, 100)
    footnote = ""
    if any(name in ("gigpo", "empo2+gigpo") for _, name, _ in series[len(PAPER_METHODS):]):
        footnote = "\nthe paper reports GiGPO on WebShop only: no paper bar for it here"
    axes.set_xlabel("mean test return (score, -100 to 100)" + footnote)
    figure.suptitle("ScienceWorld: the paper's Table 1 (light bars) and the kit's runs (hatched)")
    figure.legend(frameon=False, fontsize=8, loc="outside lower center", ncols=2)
    return figure


def phase_breakdown(metrics: pd.DataFrame) -> Figure:
    """Mean seconds per iteration spent in each phase, one stacked bar per run (runs in the palette's
    order, labelled in their algorithm's colour). Phases under 1% of the time are left out and named."""
    columns = [f"time/{phase}" for phase in PHASES if f"time/{phase}" in metrics]
    runs = metrics.drop_duplicates("run").set_index("run")
    names = sorted(runs.index, key=lambda run: (order(runs["algo"]).index(runs.at[run, "algo"]), run))[::-1]
    means = metrics.groupby("run")[columns].mean().reindex(names).fillna(0.0)
    total = means.to_numpy().sum()
    small = [column for column in columns if total and means[column].sum() < 0.01 * total]
    columns = [column for column in columns if column not in small]
    figure = Figure(figsize=(6.4, 0.38 * len(means) + 2.0), layout="constrained")
    axes = figure.subplots()
    left = pd.Series(0.0, index=means.index)
    for colour, column in zip(PHASE_COLOURS, columns):
        axes.barh(means.index, means[column], left=left, color=colour, edgecolor="black", linewidth=0.5,
                  label=PHASES[column.split("/")[1]])
        left += means[column]
    for label in axes.get_yticklabels():
        label.set_color(style(runs.at[label.get_text(), "algo"]).colour if label.get_text() in runs.index else "black")
    axes.set_xlabel("seconds per iteration (mean over the run's iterations)")
    figure.suptitle("where an iteration's time goes")
    _note(axes, [f"left out (under 1% of the time): {', '.join(PHASES[c.split('/')[1]] for c in small)}"] if small else [])
    if columns:
        figure.legend(frameon=False, ncols=len(columns), loc="outside lower center", fontsize=8)
    return figure


def _one_algo(frame: pd.DataFrame) -> str | None:
    """The algorithm of every run of ``frame``, or None when they are of several (or unnamed)."""
    algos = set(frame["algo"]) if "algo" in frame else set()
    return next(iter(algos)) if len(algos) == 1 else None


def _run_colours(frame: pd.DataFrame) -> dict[str, str]:
    """A colour per run: the shades of its algorithm's colour, one per run of that algorithm."""
    found = {}
    for algo, group in frame.groupby("algo"):
        runs = sorted(group["run"].unique())
        found.update(zip(runs, shades(style(algo).colour, len(runs))))
    return found


def memory_growth(metrics: pd.DataFrame) -> Figure:
    """Tip-memory entries after each iteration, one line per run of an algorithm that writes tips
    (its seeds in shades of its colour); algorithms without a tip memory are named, not drawn."""
    left_out = sorted({algo for algo in metrics.get("algo", []) if not _applies("memory/entries", algo)})
    metrics = metrics[~metrics["algo"].isin(left_out)] if left_out else metrics
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    palette = _run_colours(metrics) if len(metrics) else {}
    for algo in order(metrics["algo"]) if len(metrics) else []:
        for run, group in metrics[metrics["algo"] == algo].groupby("run"):
            look = style(algo)
            axes.plot(group["iteration"], group["memory/entries"], color=palette[run], marker=look.marker,
                      markersize=4, linestyle=look.linestyle, label=f"{look.label}: {run}")
    _iteration_axis(axes, metrics["iteration"])
    axes.set_ylabel(metric_label("memory/entries"))
    figure.suptitle("how the tip memory grows")
    notes = [f"not drawn: {_names(left_out)} ({APPLIES['memory/entries'][0]})"] if left_out else []
    if not len(metrics):
        notes.append("no run here keeps a tip memory")
    _note(axes, notes)
    axes.grid(alpha=0.3)
    if len(metrics):
        axes.legend(frameon=False, fontsize=8, loc="upper left")
    return figure


def ood_curves(ood: pd.DataFrame) -> Figure:
    """Return per adaptation iteration on the new task, one line per (trained run, new task), in the
    shades of the run's algorithm; iteration 1 plays without memory."""
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    palette = _run_colours(ood) if len(ood) and "algo" in ood else {}
    for (run, task), group in ood.groupby(["run", "task"]):
        group = group.sort_values("iteration")
        look = style(group["algo"].iloc[0]) if "algo" in group else style(run)
        axes.plot(group["iteration"], group["return_mean"], color=palette.get(run, look.colour), marker=look.marker,
                  markersize=4, label=f"{group['trained_on'].iloc[0]} -> {task} ({look.label}: {run})")
    axes.axvline(1.5, color="grey", linewidth=0.8, linestyle=":")
    axes.text(1.55, 0.02, "memory on", transform=axes.get_xaxis_transform(), fontsize=8, color="grey")
    _iteration_axis(axes, ood["iteration"], "adaptation iteration (weights frozen)")
    axes.set_ylabel("mean return on the new task")
    figure.suptitle("adapting to a new task with memory only")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False, fontsize=8)
    return figure


def critic_curve(record: Mapping) -> Figure:
    """The Retrospex critic's IQL losses over its updates (``baselines/critic_job.py``'s record):
    the Q regression error and V's expectile loss, on a log scale, with what the critic saw."""
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.subplots()
    curve = pd.DataFrame(record["curve"])
    for column, look, label in (("q_loss", OKABE_ITO[0], "Q: (r + gamma V(s') - Q)^2"),
                                ("v_loss", OKABE_ITO[1], f"V: expectile loss (tau {record['settings']['expectile']})")):
        axes.plot(curve["update"], curve[column], color=look, label=label)
    axes.set_yscale("log")
    axes.set_xlabel("update (batch of transitions)")
    axes.set_ylabel("mean loss (rewards / 100)")
    axes.grid(alpha=0.3)
    axes.legend(frameon=False, fontsize=8)
    data = ", ".join(f"{source} {row['episodes']} episodes" for source, row in record["data"].items())
    _note(axes, [f"{record['task']}: {data}", f"{record['minutes']['training']:.1f} min of training"])
    figure.suptitle("Retrospex critic (IQL) training")
    return figure


def ablation_bars(evals: pd.DataFrame, by: str) -> Figure:
    """Latest test return per run, averaged over runs (seeds) that share the setting ``by``,
    with +-1 std across them (error bars) and each run as a dot."""
    evals = test_rows(evals)
    latest = evals.sort_values("iteration").groupby("run").tail(1)
    values = order(latest[by]) if by == "algo" else sorted(set(latest[by]), key=lambda v: (str(type(v)), v))
    stats = latest.groupby(by)["return_mean"].agg(["mean", "std", "count"]).reindex(values)
    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    names = [display_name(value) if by == "algo" else _label(value) for value in values]
    labels = [f"{name}\n({_runs(count)})" for name, count in zip(names, stats["count"])]
    palette = colours(values, by, _one_algo(latest))
    axes.bar(labels, stats["mean"], yerr=stats["std"].fillna(0.0), color=[palette[value] for value in values],
             capsize=4, alpha=0.85)
    for position, value in enumerate(values):
        points = latest.loc[latest[by] == value, "return_mean"]
        axes.scatter([position] * len(points), points, color="black", s=10, zorder=3)
    axes.axhline(0, color="black", linewidth=0.6)
    axes.set_xlabel(BY_LABELS.get(by, by))
    axes.set_ylabel("test return after the last iteration")
    figure.suptitle(f"test return by {BY_LABELS.get(by, by)} (mean over runs, +- std; dots: runs)")
    return figure


def final_test_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """Each trained run's last test-split evaluation (references left out)."""
    rows = test_rows(evals)
    rows = rows[~rows["algo"].isin(UNTRAINED)] if len(rows) else rows
    return rows.sort_values("iteration", kind="stable").groupby("run").tail(1) if len(rows) else rows


def reference_rows(evals: pd.DataFrame, references: Mapping[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """The untrained references by label: ``references`` as given (label -> its evaluation rows,
    e.g. a study's references with and without the demonstration), else the baselines found in
    ``evals`` under their display names; test rows only."""
    if references is not None:
        return {label: test_rows(rows) for label, rows in references.items() if len(test_rows(rows))}
    rows = test_rows(evals)
    rows = rows[rows["algo"].isin(UNTRAINED)] if len(rows) else rows
    return {display_name(algo): rows[rows["algo"] == algo] for algo in order(rows["algo"])} if len(rows) else {}


def _test_panel(axes, finals: pd.DataFrame, references: Mapping[str, pd.DataFrame], column: str = "return_mean",
                scale: float = 1.0) -> None:
    """One column per algorithm: its runs as dots (shades of its colour), their mean with +-1 std over
    runs as an error bar; each reference as a horizontal line (its mean over runs)."""
    algos = order(finals["algo"]) if len(finals) else []
    for position, algo in enumerate(algos):
        values = finals.loc[finals["algo"] == algo, column].astype(float) * scale
        look = style(algo)
        spread = np.linspace(-0.1, 0.1, len(values)) if len(values) > 1 else np.zeros(1)
        axes.scatter(position + 0.22 + spread, values, color=shades(look.colour, len(values)), s=16, marker=look.marker,
                     zorder=3)
        mean, std = statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0
        axes.errorbar([position], [mean], yerr=[std], color=look.colour, marker=look.marker, markersize=9,
                      capsize=6, linewidth=2, zorder=4, label=f"{look.label} ({_runs(len(values))}): {mean:.1f} ± {std:.1f}")
    for (label, rows), linestyle in zip(references.items(), cycle(REFERENCE_LINESTYLES)):
        value = statistics.mean(rows[column].astype(float)) * scale
        colour = style(rows["algo"].iloc[0]).colour
        axes.axhline(value, color=colour, linestyle=linestyle, linewidth=1.3,
                     label=f"{label} ({_runs(rows['run'].nunique())}): {value:.1f}")
        axes.annotate(label, (1.0, value), xycoords=("axes fraction", "data"), xytext=(-3, -3), textcoords="offset points",
                      ha="right", va="top", fontsize=7, color=colour)
    axes.set_xticks(range(len(algos)), [display_name(algo) for algo in algos])
    axes.set_xlim(-0.6, max(len(algos), 1) - 0.3)
    axes.grid(alpha=0.3, axis="y")


def final_results(evals: pd.DataFrame, references: Mapping[str, pd.DataFrame] | None = None) -> Figure:
    """The headline: each trained algorithm's test success rate, when any episode succeeded, then its
    test return (runs as dots, mean +- std over runs), against every untrained reference (lines;
    ``reference_rows``). When nothing was solved, the return panel alone says so instead of a panel
    at 0."""
    finals, refs = final_test_rows(evals), reference_rows(evals, references)
    successes = [frame["success_rate"] for frame in (finals, *refs.values()) if "success_rate" in frame]
    solved = any(series.fillna(0).gt(0).any() for series in successes)
    figure = Figure(figsize=(10 if solved else 7.0, 4.8), layout="constrained")
    panels = figure.subplots(1, 2 if solved else 1, squeeze=False)[0]
    returns = panels[-1]  # success first when there is any
    _test_panel(returns, finals, refs)
    returns.set_ylabel("test return (score: -100 failed, 100 solved)")
    if solved:
        _test_panel(panels[0], finals, refs, "success_rate", 100.0)
        panels[0].set_ylabel("test success rate (% of episodes solved)")
        panels[0].set_ylim(-3, 103)
    elif successes:
        _note(returns, ["success rate 0 for every run and reference: no test episode was solved"])
    figure.suptitle("the test split: trained runs against the untrained model")
    handles, labels = panels[0].get_legend_handles_labels()
    if labels:
        figure.legend(handles, labels, frameon=False, fontsize=8, loc="outside lower center", ncols=2)
    return figure


DIAGNOSTICS = {
    "diagnostics/equal_return_groups": "groups with all-equal returns\n(no gradient)",
    "diagnostics/wrong_focus_share": "episodes ended by a\nwrong 'focus on'",
    "diagnostics/response_tokens_mean": "tokens per response",
    "diagnostics/length_limit_share": "responses cut at the\ntoken limit",
    "diagnostics/step_group_share": "actions in step groups > 1\n(GiGPO; at its floor: GRPO)",
    "diagnostics/actions_as_written": "actions run as the model\nwrote them (not corrected)",
}
"""The per-iteration diagnostics that explain a flat learning curve, with their panel labels (the
step-group share where runs of a GiGPO algorithm log it: near its floor, episodes / actions, only
the first actions were compared and GiGPO did little beyond GRPO)."""


def learning_comparison(metrics: pd.DataFrame, evals: pd.DataFrame,
                        references: Mapping[str, pd.DataFrame] | None = None) -> Figure:
    """Algorithms side by side over seeds: training success rate (when any episode anywhere was
    solved: success first) and return per iteration (thin lines: seeds; thick: their mean) and the
    evaluation's, the untrained references as horizontal lines
    (``reference_rows``), and below them the diagnostics of every iteration (``DIAGNOSTICS``), so a
    flat curve comes with its reason: no gradient (equal-return groups), the agent still ends
    episodes with a wrong ``focus on``, it rambles into the token limit, (GiGPO) few actions shared
    a state with another episode's, or the action correction, not the model, chose the actions.
    Evaluations played once, on the test split at the end,
    are drawn per algorithm with +-1 std over seeds (``final_results``'s panel); periodic ones as
    curves (dashed: dev, solid: test). On the training curves, EMPO²'s memory iterations are marked
    (``memory_markers``): a curve says something about tips only where they reached a prompt."""
    trained = metrics[~metrics["algo"].isin(UNTRAINED)] if len(metrics) else metrics
    diagnostics = [column for column in DIAGNOSTICS if column in trained]
    figure = Figure(figsize=(max(11, 2.2 * len(diagnostics)), 7.6 if diagnostics else 4.4), layout="constrained")
    grid = figure.add_gridspec(2 if diagnostics else 1, max(len(diagnostics), 2), height_ratios=[1.6, 1] if diagnostics else None)

    def per_algo(axes, frame: pd.DataFrame, column: str, note: str = "", dashed: bool = False) -> None:
        for index, algo in enumerate(order(frame["algo"])):
            group, look = frame[frame["algo"] == algo], style(algo)
            linestyle = "--" if dashed else look.linestyle
            for _, run in group.groupby("run"):
                run = run.sort_values("iteration")
                axes.plot(run["iteration"], run[column], color=look.colour, alpha=0.3, linewidth=0.8, linestyle=linestyle)
            mean = group.groupby("iteration")[column].mean()
            axes.plot(mean.index, mean.values, color=look.colour, linewidth=2, linestyle=linestyle, marker=look.marker,
                      markersize=_size(index), label=f"{look.label}{note} ({_runs(group['run'].nunique())})")

    refs = reference_rows(evals, references)
    trained_evals = evals[~evals["algo"].isin(UNTRAINED)] if len(evals) else evals
    split = (trained_evals["split"].fillna("test") if "split" in trained_evals
             else pd.Series("test", index=trained_evals.index))
    dev, test = trained_evals[split == "dev"], trained_evals[split == "test"]
    solved = _any_success(trained, trained_evals, refs)
    measures = [("success_rate", 100.0, "success rate (% solved)"), ("return_mean", 1.0, "return")] if solved else \
        [("return_mean", 1.0, "return")]
    top = grid[0, :].subgridspec(1, 2 * len(measures))
    train_panels = [figure.add_subplot(top[0, index]) for index in range(len(measures))]
    test_panels = [figure.add_subplot(top[0, len(measures) + index], sharey=train_panels[index])
                   for index in range(len(measures))]
    once = not len(dev) and (not len(test) or test.groupby("run").size().max() == 1)
    for (column, scale, what), train_axes, test_axes in zip(measures, train_panels, test_panels):
        if len(trained) and f"charts/{column}" in trained:
            scaled = trained.assign(**{f"charts/{column}": trained[f"charts/{column}"] * scale})
            per_algo(train_axes, scaled, f"charts/{column}")
            memory_markers(train_axes, scaled, f"charts/{column}")
            _iteration_axis(train_axes, trained["iteration"])
        if solved:  # four panels in a row: short titles, the measure in each
            train_axes.set_ylabel(f"{what}, mean per iteration")
            train_axes.set_title(f"training: {what.split(' (')[0]}", fontsize=10)
        else:
            train_axes.set_ylabel(f"training {what} (mean per iteration)")
            train_axes.set_title("training episodes")
        if once:
            _test_panel(test_axes, final_test_rows(evals), refs, column, scale)
            if solved:
                test_axes.set_ylabel(f"{what}, mean ± std over runs")
                test_axes.set_title(f"test, once, no memory: {what.split(' (')[0]}", fontsize=10)
            else:
                test_axes.set_ylabel(f"test {what} (no memory; mean ± std over runs)")
                test_axes.set_title("test episodes, played once after training")
        else:
            if len(dev):
                per_algo(test_axes, dev.assign(**{column: dev[column] * scale}), column, " on dev", dashed=True)
            if len(test):
                per_algo(test_axes, test.assign(**{column: test[column] * scale}), column, " on test" if len(dev) else "")
            _iteration_axis(test_axes, trained_evals["iteration"], "iteration (evaluated after it)")
            for (label, rows), linestyle in zip(refs.items(), cycle(REFERENCE_LINESTYLES)):
                value = rows[column].mean() * scale
                test_axes.axhline(value, color=style(rows["algo"].iloc[0]).colour, linestyle=linestyle, linewidth=1,
                                  label=f"{label} ({_runs(rows['run'].nunique())}): {value:.1f}")
            test_axes.set_ylabel(f"evaluation {what} (no memory)")
            test_axes.set_title("evaluation episodes")
        if column == "success_rate":
            train_axes.set_ylim(-3, 103)
    for axes in (*train_panels, *test_panels):
        axes.grid(alpha=0.3)
        if axes.get_legend_handles_labels()[1]:
            axes.legend(frameon=False, fontsize=7 if not solved else 6, loc="best")
    for index, column in enumerate(diagnostics):
        axes = figure.add_subplot(grid[1, index])
        per_algo(axes, trained[trained[column].notna()], column)  # GRPO logs no step-group share
        _iteration_axis(axes, trained["iteration"])
        axes.set_title(DIAGNOSTICS[column], fontsize=9)
        if not column.endswith("tokens_mean"):
            axes.set_ylim(-0.05, 1.05)
        axes.grid(alpha=0.3)
    present = set(trained["algo"]) if len(trained) else set()
    figure.suptitle(f"{_names(present) if present else 'no trained run'}: training and test, "
                    "against the untrained model")
    return figure


def _any_success(metrics: pd.DataFrame, evals: pd.DataFrame, references: Mapping[str, pd.DataFrame]) -> bool:
    """Whether any training iteration, evaluation or reference solved an episode: only then does a
    success-rate panel say more than a line at 0."""
    frames = [metrics.get("charts/success_rate"), evals.get("success_rate"),
              *(rows.get("success_rate") for rows in references.values())]
    return any(frame is not None and frame.fillna(0).gt(0).any() for frame in frames)


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
    """A study's screening on the dev split: per screened setting (a run of ``metrics``), its
    training return per iteration on the left and the dev return it was chosen by on the right,
    the chosen one marked, so a reader sees whether the choice was clear or a coin toss between
    settings within one standard error. Settings take the settings' colours, not an algorithm's."""
    figure = Figure(figsize=(11, 4.4), layout="constrained")
    curves, bars = figure.subplots(1, 2, width_ratios=[1.6, 1])
    palette = colours(metrics["run"], "run", _one_algo(metrics)) if len(metrics) else {}
    markers = dict(zip(sorted(palette), cycle("osD^vP*X")))  # more settings than markers: repeat, drop none
    for run, group in metrics.groupby("run", sort=True):
        group = group.sort_values("iteration")
        curves.plot(group["iteration"], group["charts/return_mean"], marker=markers[run], markersize=5,
                    color=palette[run], linewidth=2.8 if run == chosen else 1.2,
                    label=f"{run}{' (chosen)' if run == chosen else ''}")
    if len(metrics):
        _iteration_axis(curves, metrics["iteration"])
    curves.set_ylabel(METRIC_LABELS["charts/return_mean"])
    curves.set_title("screened settings: training episodes")
    dev = evals[evals["split"] == "dev"] if "split" in evals else evals.iloc[:0]
    dev = dev.sort_values("iteration").groupby("run").tail(1).sort_values("run")
    if len(dev):
        bars.bar(range(len(dev)), dev["return_mean"], yerr=dev.get("return_se"), capsize=3,
                 color=[palette.get(run, GREY) for run in dev["run"]],
                 edgecolor=["black" if run == chosen else "none" for run in dev["run"]], linewidth=2)
        bars.set_xticks(range(len(dev)), dev["run"], rotation=20, fontsize=8)
    bars.axhline(0, color="black", linewidth=0.5)
    bars.set_ylabel("dev return after the last iteration (± se)")
    bars.set_title("the choice: dev return (outlined: chosen)")
    for axes in (curves, bars):
        axes.grid(alpha=0.3)
    if len(metrics):
        curves.legend(frameon=False, fontsize=8)
    figure.suptitle("screening on the dev split: which setting the compared runs use")
    return figure


def demo_figure(policies: list[tuple[str, str, Mapping]], study_metrics: list[Mapping], iteration: Mapping,
                origin: str) -> Figure:
    """``make demo``'s picture: on the left each policy's success rate on the dev variations
    (``policies``: label, palette name, evaluation row), annotated with its count and return; on the
    right the training success rate per iteration of the run that made the agent, with the demo's
    own iteration (from the same warm start) as a star beside the study's first one; ``origin`` says
    under the title how the agent was made."""
    figure = Figure(figsize=(11, 4.4), layout="constrained")
    bars, curve = figure.subplots(1, 2, width_ratios=[1.2, 1])
    for index, (label, kind, row) in enumerate(policies):
        rate = 100 * row["success_rate"]
        bars.bar(index, rate, color=style(kind).colour, alpha=0.85)
        bars.annotate(f"{round(row['success_rate'] * row['episodes'])} of {row['episodes']}\n"
                      f"return {row['return_mean']:.1f}", (index, rate), xytext=(0, 4), textcoords="offset points",
                      ha="center", va="bottom", fontsize=9)
    bars.set_xticks(range(len(policies)), [label.replace(" (", "\n(", 1) for label, _, _ in policies], fontsize=9)
    bars.set_ylim(0, 115)
    bars.set_ylabel("dev episodes solved (%)")
    bars.set_title("the same dev variations and episode seeds")
    algo = policies[-1][1]
    steps = np.arange(1, len(study_metrics) + 1)
    curve.plot(steps, [100 * row["charts/success_rate"] for row in study_metrics], marker=style(algo).marker,
               color=style(algo).colour, label=f"the study's {style(algo).label} run")
    curve.plot([1], [100 * iteration["charts/success_rate"]], marker="*", markersize=16, linestyle="none",
               color="black", label="this demo's iteration")
    _iteration_axis(curve, pd.Series(steps))
    curve.set_ylim(-5, 105)
    curve.set_ylabel("training episodes solved (%)")
    curve.set_title("how the agent was trained (from its warm start)")
    curve.legend(frameon=False, fontsize=8)
    for axes in (bars, curve):
        axes.grid(alpha=0.3, axis="y")
    figure.suptitle(f"an agent trained by RL on a 2-core CPU, against the untrained model\n{origin}", fontsize=11)
    return figure

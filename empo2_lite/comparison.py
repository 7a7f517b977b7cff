"""The tables of an experiment: algorithms over seeds beside the untrained baselines, with their
gains paired by test variation (what says whether training helps, and which algorithm helps more).

The experiments themselves run in ``empo2_lite.study``: ``python -m empo2_lite study --plan`` (a
screening on dev, algorithms x seeds, references, the test split once) and ``compare`` (the same
pieces without a screening, ``study/compare.py``). They lay their runs out as::

    <algo>-s<seed>/         a trained run: metrics.jsonl per iteration, eval.jsonl (periodic + final)
    naive-s<seed>/          the preset's base model, untrained, on the test split
    memory-only-s<seed>/    the base model with EMPO²'s growing tip memory, ``trials`` times, no training (not Reflexion)

each a run folder with its own ``config.json``, so ``results``, ``plot`` and ``report`` read them
like any runs. The baselines are played with the same seeds as the trained runs, so a gain carries
the sampling noise of both sides. (``data/sample_runs/cpu-learn`` was made before: its single
``naive/`` and ``memory-only/`` folders are read as one seed each.) All test returns are measured
the same way: the test split, no memory (but for ``memory-only``), the preset's evaluation
temperature and episodes per variation.

Verdicts pair by variation (``paired_gain``): every piece plays the same test variations, so the
gain over the untrained model is taken variation by variation, and its standard error comes from
the spread of those differences. ``meets_target`` passes only a gain beyond both that error and the
spread of the trained return over seeds.

This module imports no torch.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from empo2_lite.config import ALGOS, BASELINE_KINDS, TrainConfig, apply_overrides, preset
from empo2_lite.runs import RunDir

TABLE_COLUMNS = ("algo", "runs", "test_return", "test_return_std", "gain_over_naive", "gain_se", "success_rate",
                 "success_rate_std", "success_gain", "success_gain_se", "memory_iterations",
                 "memory_iterations_with_tips", "training_minutes")
"""The columns of ``comparison_table``, in order."""


def run_name(algo: str, seed: int) -> str:
    """The folder of one piece, trained run or baseline: ``grpo-s1``, ``naive-s1``."""
    return f"{algo}-s{seed}"


def training_config(preset_name: str, algo: str, seed: int, task: str | None = None) -> TrainConfig:
    """The preset with ``algo`` and ``seed`` (and ``task`` when given), named after both."""
    overrides: dict = {"algo": algo, "seed": seed, "name": run_name(algo, seed)}
    if task:
        overrides["task"] = task
    return apply_overrides(preset(preset_name), overrides)


def paired_gain(trained: Sequence[Mapping], reference: Sequence[Mapping]) -> tuple[float, float]:
    """The gain of ``trained`` over ``reference`` and its paired standard error, from one mapping
    per seed on each side (an eval row's ``per_variation``: variation id -> mean return).

    Each variation's return is averaged over each side's seeds; the gain is the mean over the
    variations both sides played of (trained - reference), its standard error the std of those
    differences over sqrt(number of variations). Why: both sides play the same variations, some
    hard for both, so pairing takes that shared difficulty out of the error; and the error holds
    the reference's sampling noise too, which a single unseeded reference hides (NaN for a lone
    variation, and both NaN when the sides share none)."""
    def by_variation(side: Sequence[Mapping]) -> dict[str, float]:
        values: dict[str, list[float]] = {}
        for per_variation in side:
            for variation, value in per_variation.items():
                values.setdefault(str(variation), []).append(value)
        return {variation: statistics.mean(returns) for variation, returns in values.items()}

    ours, theirs = by_variation(trained), by_variation(reference)
    differences = [ours[variation] - theirs[variation] for variation in sorted(set(ours) & set(theirs))]
    if not differences:
        return math.nan, math.nan
    error = statistics.stdev(differences) / math.sqrt(len(differences)) if len(differences) > 1 else math.nan
    return statistics.mean(differences), error


def comparison_table(root: str | Path) -> pd.DataFrame:
    """``tabulate`` of the runs found under ``root`` (their final evaluations and metrics)."""
    from empo2_lite.results import find_runs, load_evals, load_metrics

    runs = find_runs(root)
    return tabulate(load_evals(runs, per_variation=True), load_metrics(runs))


def tabulate(evals: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per algorithm or baseline (``TABLE_COLUMNS``), from eval rows with their
    ``per_variation`` (``results.load_evals(..., per_variation=True)``) and metrics rows.

    Each run counts with its last evaluation on the test split (rows without a ``split`` are test:
    older kits evaluated nowhere else; dev rows score choices, not results). ``test_return``: the
    mean over runs (seeds), and ``test_return_std`` its std. ``gain_over_naive`` and ``gain_se``:
    ``paired_gain`` against the naive runs (where a side lacks ``per_variation``: the difference
    of test returns, with no standard error). ``success_rate`` (share of test episodes that
    succeeded, as a fraction), its std over seeds, and ``success_gain`` with ``success_gain_se``:
    the same pairing on each variation's success share (NaN where a row predates
    ``per_variation_success``). ``memory_iterations`` and
    ``memory_iterations_with_tips``: summed over the runs (``results.memory_usage``; 0 where
    none). ``training_minutes``: per run, the iterations' phases summed (evaluation not counted)."""
    from empo2_lite.results import MEMORY_COLUMNS, memory_usage, test_rows

    evals = test_rows(evals)
    if not len(evals):
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    final = evals.sort_values("iteration", kind="stable").groupby("run").tail(1)
    phases = [column for column in metrics if column.startswith("time/")]
    minutes = (metrics.groupby("run")[phases].sum().sum(axis=1) / 60) if phases else pd.Series(dtype=float)
    usage = memory_usage(metrics)
    naive = final.loc[final["algo"] == "naive"]
    rows = []
    for algo, group in final.groupby("algo", sort=False):
        returns = list(group["return_mean"])
        gain, error = _gain(group, naive)
        successes = list(group["success_rate"]) if "success_rate" in group else [math.nan]
        success_gain, success_error = _gain(group, naive, "per_variation_success")
        rows.append({"algo": algo, "runs": len(returns), "test_return": statistics.mean(returns),
                     "test_return_std": statistics.stdev(returns) if len(returns) > 1 else math.nan,
                     "gain_over_naive": gain, "gain_se": error, "success_rate": statistics.mean(successes),
                     "success_rate_std": statistics.stdev(successes) if len(successes) > 1 else math.nan,
                     "success_gain": success_gain, "success_gain_se": success_error,
                     **{column: int(usage[column].get(algo, 0)) for column in MEMORY_COLUMNS},
                     "training_minutes": float(minutes.reindex(group["run"]).mean()) if len(minutes) else math.nan})
    order = {name: index for index, name in enumerate([*BASELINE_KINDS, *ALGOS])}  # any ablation found: table order
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.sort_values("algo", key=lambda column: column.map(order)).reset_index(drop=True)


def _gain(group: pd.DataFrame, naive: pd.DataFrame, column: str = "per_variation") -> tuple[float, float]:
    """``paired_gain`` of one algorithm's final eval rows over the naive ones on ``column``
    (returns, or success shares with ``per_variation_success``), or, where a row lacks it: for
    returns (an older memory-only row) the difference of mean returns and NaN, for successes NaN."""
    if not len(naive):
        return math.nan, math.nan
    sides = [list(group.get(column, [])), list(naive.get(column, []))]
    if all(len(side) and all(isinstance(row, Mapping) for row in side) for side in sides):
        return paired_gain(*sides)
    if column != "per_variation":
        return math.nan, math.nan
    return float(group["return_mean"].mean() - naive["return_mean"].mean()), math.nan


def study_tables(root: str | Path, main: str = "main") -> dict[str, pd.DataFrame]:
    """A study's tables (``python -m empo2_lite study`` lays a study out as ``<root>/main/``, the
    compared runs beside their untrained reference, and ``<root>/<reference>/`` for each other
    reference): per reference folder, ``tabulate`` of the compared runs of ``main`` and that
    folder's untrained runs, so that every gain is paired against that reference."""
    from empo2_lite.results import find_runs, load_evals, load_metrics

    root = Path(root)
    trained = [run for run in find_runs(root / main) if not RunDir(run).config().baseline]
    tables = {}
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        references = [run for run in find_runs(folder) if RunDir(run).config().baseline]
        if references:
            runs = [*trained, *references]
            tables[folder.name] = tabulate(load_evals(runs, per_variation=True), load_metrics(runs))
    return dict(sorted(tables.items(), key=lambda item: item[0] != main))


def tips_lines(table: pd.DataFrame) -> list[str]:
    """'empo2: tips reached a prompt in 2 of 5 memory iterations', one line per algorithm that had
    memory iterations (printed under ``compare``'s table)."""
    from empo2_lite.results import counted

    return [f"{row.algo}: tips reached a prompt in {row.memory_iterations_with_tips} of "
            f"{counted(row.memory_iterations, 'memory iteration')}"
            for row in table.itertuples() if row.memory_iterations > 0]


def meets_target(table: pd.DataFrame, algo: str, gain: float = 20.0) -> bool:
    """The learning target of a CPU preset, over at least two seeds: the mean gain over the
    untrained model is at least ``gain`` points, more than twice the std of the trained test return
    over seeds, and more than twice its paired standard error (``paired_gain``), so that neither
    side's sampling noise could explain it. A missing standard error fails it."""
    row = table.loc[table["algo"] == algo]
    if row.empty or row.iloc[0]["runs"] < 2:
        return False
    row = row.iloc[0]
    value = row["gain_over_naive"]
    return bool(value >= gain and value > 2 * row["test_return_std"] and value > 2 * row["gain_se"])


def meets_success_target(tables: Mapping[str, pd.DataFrame], algo: str, points: float = 25.0) -> bool:
    """The learning target of the study (issue "a learning curve that shows the agent solving
    tasks"): against every untrained reference of ``tables`` (``study_tables``: with and without
    the demonstration, so against the better of them), the mean test success rate over seeds gains
    at least ``points`` percentage points, and more than twice its paired standard error. A missing
    reference, row or standard error fails it."""
    if not tables:
        return False
    for table in tables.values():
        row = table.loc[table["algo"] == algo]
        if row.empty or row.iloc[0]["runs"] < 2:
            return False
        gain, error = 100 * row.iloc[0]["success_gain"], 100 * row.iloc[0]["success_gain_se"]
        if not (gain >= points and gain > 2 * error):  # NaN fails both
            return False
    return True

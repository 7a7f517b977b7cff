"""EMPO² against GRPO over seeds at one preset, beside the untrained baselines: the experiment that
says whether training helps, and which algorithm helps more, at a scale one machine can run.

Layout under ``root`` (one folder per piece, each a run folder with its own ``config.json``, so
``results``, ``plot`` and ``report`` read them like any runs)::

    <algo>-s<seed>/   a trained run: metrics.jsonl per iteration, eval.jsonl (periodic + final)
    naive/            the preset's base model, untrained, on the test split
    memory-only/      the base model with a growing tip memory, ``trials`` times (Reflexion-style)

Every piece is skipped when it is already done, so the experiment can be stopped and rerun, or
split across processes (``pieces``: ``python -m empo2_lite compare --only grpo-s1`` in parallel,
then a plain ``compare`` to collect). All test returns are measured the same way: the test split,
no memory (but for ``memory-only``), the preset's evaluation temperature and episodes per variation.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from empo2_lite.config import ALGOS, BASELINES, ConfigError, TrainConfig, apply_overrides, preset
from empo2_lite.evaluation import PoolFactory
from empo2_lite.runs import RunDir, runs_under


def run_name(algo: str, seed: int) -> str:
    """The folder of one trained run: ``grpo-s1``."""
    return f"{algo}-s{seed}"


def pieces(seeds: Sequence[int]) -> list[str]:
    """Every piece of the experiment by name: the baselines first, then each algorithm's seeds."""
    return [*BASELINES, *(run_name(algo, seed) for seed in seeds for algo in ALGOS)]


def training_config(preset_name: str, algo: str, seed: int, task: str | None = None) -> TrainConfig:
    """The preset with ``algo`` and ``seed`` (and ``task`` when given), named after both."""
    overrides: dict = {"algo": algo, "seed": seed, "name": run_name(algo, seed)}
    if task:
        overrides["task"] = task
    return apply_overrides(preset(preset_name), overrides)


def run_comparison(root: str | Path, preset_name: str, seeds: Sequence[int], *, task: str | None = None,
                   only: Sequence[str] | None = None, trials: int = 3, progress: bool = True,
                   make_pool: PoolFactory | None = None, trainer_class: type | None = None) -> pd.DataFrame:
    """Play every piece not yet done (or those in ``only``), then return ``comparison_table(root)``.

    Bad input (an unknown piece name, preset or task) is refused before any model loads.
    ``make_pool`` and ``trainer_class`` are passed to the jobs (tests replay recorded episodes).
    """
    from empo2_lite import jobs

    names = pieces(seeds)
    wanted = list(only) if only else names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ConfigError(f"--only: {', '.join(unknown)} is not a piece of this experiment; choose from {', '.join(names)}")
    configs = {run_name(algo, seed): training_config(preset_name, algo, seed, task) for algo in ALGOS for seed in seeds}
    for config in configs.values():
        config.validate()
    task_name = next(iter(configs.values())).task
    Path(root).mkdir(parents=True, exist_ok=True)
    with runs_under(root):
        for name in wanted:
            if name in BASELINES:
                if not RunDir.named(name).read_evals():
                    jobs.baseline(name, task_name, preset_name, trials=trials, name=name, progress=progress,
                                  make_pool=make_pool)
            else:
                trained = jobs.train(configs[name], progress=progress, make_pool=make_pool, trainer_class=trainer_class)
                jobs.final_evaluation(trained.run.path, trained.policy, progress=progress, make_pool=make_pool)
    return comparison_table(root)


def comparison_table(root: str | Path) -> pd.DataFrame:
    """One row per algorithm or baseline found under ``root``: runs (seeds), the mean final test
    return and its std over seeds, the gain over the untrained model, and the training time per run
    (minutes, the iterations' phases summed: evaluation not counted)."""
    from empo2_lite.results import find_runs, load_evals, load_metrics

    runs = find_runs(root)
    evals, metrics = load_evals(runs), load_metrics(runs)
    if not len(evals):
        return pd.DataFrame(columns=["algo", "runs", "test_return", "test_return_std", "gain_over_naive",
                                     "training_minutes"])
    final = evals.sort_values("iteration").groupby("run").tail(1)
    phases = [column for column in metrics if column.startswith("time/")]
    minutes = (metrics.groupby("run")[phases].sum().sum(axis=1) / 60) if phases else pd.Series(dtype=float)
    naive = final.loc[final["algo"] == "naive", "return_mean"]
    reference = float(naive.mean()) if len(naive) else math.nan
    rows = []
    for algo, group in final.groupby("algo", sort=False):
        returns = list(group["return_mean"])
        rows.append({"algo": algo, "runs": len(returns), "test_return": statistics.mean(returns),
                     "test_return_std": statistics.stdev(returns) if len(returns) > 1 else math.nan,
                     "gain_over_naive": statistics.mean(returns) - reference,
                     "training_minutes": float(minutes.reindex(group["run"]).mean()) if len(minutes) else math.nan})
    order = {name: index for index, name in enumerate([*BASELINES, *ALGOS])}
    return pd.DataFrame(rows).sort_values("algo", key=lambda column: column.map(order)).reset_index(drop=True)


def meets_target(table: pd.DataFrame, algo: str, gain: float = 20.0) -> bool:
    """The learning target of a CPU preset: over the seeds, the mean gain over the untrained model
    is at least ``gain`` points and more than twice the std of the trained test return."""
    row = table.loc[table["algo"] == algo]
    if row.empty or row.iloc[0]["runs"] < 2:
        return False
    row = row.iloc[0]
    return bool(row["gain_over_naive"] >= gain and row["gain_over_naive"] > 2 * row["test_return_std"])

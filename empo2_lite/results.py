"""Run files and the paper's numbers as tidy pandas DataFrames.

Plots, reports and notebooks read results only through these functions, and these read only the
files a run writes (``config.json``, ``metrics.jsonl``, ``eval.jsonl``, ``ood-<task>.jsonl``,
through ``RunDir``), so every figure can be regenerated anywhere, without a GPU. Reading works on
run folders of every config format (older ones are migrated to what ran) and changes no file.
``data/sample_runs/`` ships three groups of runs: ``cpu-study/`` (the protocol study: GRPO, GiGPO
and EMPO² over seeds, SmolLM2-135M on a 2-core CPU, its screening and untrained references:
docs/results-cpu-study.md), ``cpu-learn/`` (the earlier EMPO² vs GRPO comparison, settings chosen
on the test split: docs/results-cpu.md) and ``cpu-smoke/`` (a tiny random model: they show the
plumbing, not results).

Iterations count from 1 wherever a user sees them (tables, figures, printed lines): the first
iteration is iteration 1, an evaluation after it is labelled 1 (``eval.jsonl`` already counts so),
and the first OOD adaptation iteration, the one without memory, is 1. ``metrics.jsonl`` and
``ood-<task>.jsonl`` keep the trainer's 0-based index; ``load_metrics`` and ``load_ood`` convert.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from empo2_lite.runs import RunDir
from empo2_lite.tasks import data_dir

RUN_COLUMNS = ("run", "task", "algo", "seed", "preset", "preset_model")


def sample_runs_dir(group: str = "") -> Path:
    """The shipped sample runs: all of them, or one group ("cpu-study", "cpu-learn", "cpu-smoke")."""
    return data_dir() / "sample_runs" / group if group else data_dir() / "sample_runs"


def find_runs(root: str | Path) -> list[Path]:
    """Run folders (those with a config.json) under ``root``, at any depth, sorted by path.

    A run folder is not searched further; any other folder is, so experiments can be grouped
    (``data/sample_runs/cpu-learn/grpo-s0``) and still read like runs directly under the root."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no runs folder at {root}")
    if RunDir(root).exists():
        return [root]
    found = []
    for path in sorted(child for child in root.iterdir() if child.is_dir()):
        found += find_runs(path)
    return found


ABLATION_COLUMNS = ("p", "q", "novelty_coef", "mask_granularity", "off_policy_old_logprob", "use_off_policy",
                    "use_on_policy_with_tips", "gigpo_gamma", "gigpo_omega", "gigpo_normalisation")


def _run_identity(run: RunDir) -> dict:
    """The columns that say which run a row comes from, and its ablation settings (as they ran:
    an older config format is migrated, e.g. its GRPO runs show p = 0). ``algo`` is the algorithm
    table's name for what ran, so ablations group apart from the algorithm they ablate (a
    "grpo+novelty" run that an older kit stored as "grpo" reads as "grpo+novelty"); a baseline
    folder's ``algo`` is its kind ("naive", "memory-only")."""
    config = run.config()
    return {"run": run.path.name, "task": config.task, "algo": config.baseline or config.algo, "seed": config.seed,
            "preset": config.preset or "custom", "preset_model": config.policy.model, "p": config.p, "q": config.q,
            "novelty_coef": config.memory.novelty_coef, "mask_granularity": config.update.mask_granularity,
            "off_policy_old_logprob": config.off_policy_old_logprob, "use_off_policy": config.use_off_policy,
            "use_on_policy_with_tips": config.use_on_policy_with_tips, "gigpo_gamma": config.update.gigpo_gamma,
            "gigpo_omega": config.update.gigpo_omega, "gigpo_normalisation": config.update.gigpo_normalisation}


def load_metrics(runs: Iterable[str | Path]) -> pd.DataFrame:
    """One row per (run, iteration): the run's identity columns plus every metric (iterations
    counted from 1)."""
    frames = []
    for run in map(RunDir, runs):
        rows = run.read_metrics()
        if rows:
            frames.append(pd.DataFrame(rows).assign(**_run_identity(run)))
    if not frames:
        return pd.DataFrame(columns=[*RUN_COLUMNS, "iteration"])
    return _count_from_one(pd.concat(frames, ignore_index=True))


def load_evals(runs: Iterable[str | Path], *, per_variation: bool = False) -> pd.DataFrame:
    """One row per (run, evaluation); with ``per_variation``, the row's ``per_variation`` and
    ``per_variation_success`` dicts (variation id -> mean return, success share) are kept as
    columns, for differences paired by variation (``comparison.paired_gain``); otherwise they are
    left out, so the frame stays flat."""
    nested = {"per_variation", "per_variation_success"}
    frames = []
    for run in map(RunDir, runs):
        rows = [row if per_variation else {k: v for k, v in row.items() if k not in nested}
                for row in run.read_evals()]
        if rows:
            frames.append(pd.DataFrame(rows).assign(**_run_identity(run)))
    if not frames:
        return pd.DataFrame(columns=[*RUN_COLUMNS, "iteration", "return_mean"])
    return pd.concat(frames, ignore_index=True)


def load_ood(runs: Iterable[str | Path]) -> pd.DataFrame:
    """One row per (run, OOD task, iteration) from the runs' ``ood-<task>.jsonl`` files
    (iterations counted from 1; iteration 1 plays without memory)."""
    frames = []
    for run in map(RunDir, runs):
        for rows in run.read_ood().values():
            if rows:
                frames.append(pd.DataFrame(rows).assign(**{k: v for k, v in _run_identity(run).items() if k != "task"}))
    if not frames:
        return pd.DataFrame(columns=["run", "trained_on", "task", "iteration", "return_mean", "improvement_percent"])
    return _count_from_one(pd.concat(frames, ignore_index=True))


MEMORY_COLUMNS = ("memory_iterations", "memory_iterations_with_tips")
"""What ``memory_flags`` marks and ``memory_usage`` counts."""


def memory_flags(metrics: pd.DataFrame) -> pd.DataFrame:
    """For each row of ``metrics`` (a training iteration): whether it drew memory rollouts
    (``mode`` not "plain"), and whether tips then reached a prompt (``charts/tips_shown_mean`` > 0).
    Why: a memory iteration that found no tip to show trains as GRPO does, so an EMPO² curve says
    something about tips only in the iterations that showed some."""
    memory = (metrics["mode"].notna() & metrics["mode"].ne("plain") if "mode" in metrics
              else pd.Series(False, index=metrics.index))
    shown = metrics["charts/tips_shown_mean"].fillna(0.0).gt(0) if "charts/tips_shown_mean" in metrics else False
    return pd.DataFrame({MEMORY_COLUMNS[0]: memory, MEMORY_COLUMNS[1]: memory & shown}, index=metrics.index)


def memory_usage(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm (the index), summed over its runs: its memory iterations and those of them
    that showed tips (``memory_flags``)."""
    return memory_flags(metrics).groupby(metrics["algo"]).sum().astype(int)


def memory_use(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per algorithm with memory iterations (the index), summed over its runs: what EMPO²'s memory
    did. ``memory_iterations`` and ``with_tips`` (``memory_flags``); ``tips_per_step``: tips shown
    per step, averaged over the iterations that showed some; ``off_policy_updates`` and
    ``on_policy_updates``: updates made from rollouts that saw tips, tips stripped from the update's
    prompts or kept (a memory iteration without tips is a plain update in effect)."""
    counts = memory_usage(metrics)
    counts = counts[counts[MEMORY_COLUMNS[0]] > 0].rename(columns={MEMORY_COLUMNS[1]: "with_tips"})
    shown = metrics[memory_flags(metrics)[MEMORY_COLUMNS[1]]].groupby("algo")
    counts["tips_per_step"] = shown["charts/tips_shown_mean"].mean().reindex(counts.index).fillna(0.0)
    for column, mode in (("off_policy_updates", "off_policy"), ("on_policy_updates", "on_policy_with_tips")):
        counts[column] = shown["mode"].agg(lambda modes, mode=mode: int((modes == mode).sum())).reindex(
            counts.index).fillna(0).astype(int)
    return counts


def _count_from_one(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the files' 0-based ``iteration`` shown 1-based (see the module docstring)."""
    return frame.assign(iteration=frame["iteration"] + 1)


def counted(number: int, noun: str) -> str:
    """'1 iteration', '3 iterations': counts in printed lines, legends and labels."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


TABLE_COLUMNS = {"iteration": "iteration", "mode": "mode", "charts/return_mean": "return",
                 "charts/success_rate": "success", "charts/novelty_mean": "novelty", "losses/loss": "loss",
                 "losses/masked_fraction": "masked", "memory/entries": "tips stored", "time/rollout": "rollout s",
                 "time/update": "update s"}
"""The metrics a notebook table shows per iteration, under names short enough for a panel."""


def metrics_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """What each iteration did, narrow enough for a notebook panel: the ``TABLE_COLUMNS`` the
    runs logged, renamed, rounded, one row per iteration (and run, when there are several)."""
    columns = [column for column in TABLE_COLUMNS if column in metrics]
    if metrics["run"].nunique() > 1:
        columns = ["run", *columns]
    return metrics[columns].rename(columns=TABLE_COLUMNS).round(2).set_index(
        ["run", "iteration"] if columns[0] == "run" else "iteration")


MODEL_NAMES = {"embedded:smollm2-135m-instruct": "SmolLM2-135M-Instruct", "tiny:byte": "a tiny random model",
               "tiny:smollm2": "a tiny random model"}
"""The kit's own model names, as people write the model; any other name is a hub id or a folder."""


def model_name(model: str) -> str:
    """A run's ``policy.model`` as people write it: "embedded:smollm2-135m-instruct" ->
    "SmolLM2-135M-Instruct", "Qwen/Qwen2.5-7B-Instruct" -> "Qwen2.5-7B-Instruct" (a local folder:
    its name)."""
    return MODEL_NAMES.get(model, str(model).rstrip("/").split("/")[-1])


def study_record(folder: str | Path) -> dict | None:
    """A study folder's ``study.json`` (the plan as run, the choice on dev and what it was made
    from), or None where the folder holds none. Read as stored: figures and tables take only what
    they show from it."""
    path = Path(folder) / "study.json"
    return json.loads(path.read_text()) if path.is_file() else None


def paper_results() -> dict:
    """``data/paper_results.json``: the paper's tables, OOD pairs and ablation settings."""
    return json.loads((data_dir() / "paper_results.json").read_text())


def paper_table() -> pd.DataFrame:
    """The paper's ScienceWorld table in long form: task, method, mean, std (NaN where not given)."""
    science = paper_results()["scienceworld"]
    rows = []
    for task, by_method in science["mean"].items():
        for method, mean in by_method.items():
            std = science["std"].get(method, {}).get(task, float("nan"))
            rows.append({"task": task, "method": method, "mean": mean, "std": std})
    return pd.DataFrame(rows)


def test_rows(evals: pd.DataFrame) -> pd.DataFrame:
    """The evaluation rows played on the test split. A row without ``split`` is a test row (kits
    before the dev split evaluated nowhere else); dev rows score choices, never results."""
    return evals[evals["split"].fillna("test") == "test"] if "split" in evals else evals


PAPER_GIGPO_SCIENCEWORLD = "-"
"""The paper's GiGPO column on ScienceWorld: the EMPO² paper reports GiGPO on WebShop only."""


def report_markdown(evals: pd.DataFrame, paper: pd.DataFrame) -> str:
    """A Markdown table: for each task with kit runs, the kit's latest test-split return per
    algorithm or baseline (each ablation of the algorithm table on a row of its own; mean over runs,
    with the model that produced it; a row that says what its return measures, Reflexion's best of
    K, says so beside the name) beside the paper's GRPO, GiGPO ("-": not reported on ScienceWorld),
    EMPO², Naive, Reflexion and Retrospex numbers. Runs evaluated on dev only have no row."""
    lines = ["| task | kit algo | kit preset | kit model | kit runs | kit test return | paper GRPO | paper GiGPO | "
             "paper EMPO2 | paper Naive | paper Reflexion | paper Retrospex |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    evals = test_rows(evals)
    if len(evals):
        latest = evals.sort_values("iteration", kind="stable").groupby("run").tail(1)
        reference = paper.set_index(["task", "method"])["mean"]
        for (task, algo, preset, model), group in latest.groupby(["task", "algo", "preset", "preset_model"]):
            grpo, empo2, naive, reflexion, retrospex = (reference.get((task, method), float("nan")) for method in
                                                        ("GRPO", "EMPO2", "Naive", "Reflexion", "Retrospex"))
            measures = set(group["measure"].dropna()) if "measure" in group else set()
            label = f"{algo} ({', '.join(sorted(measures))})" if measures else algo
            lines.append(f"| {task} | {label} | {preset} | {model} | {group['run'].nunique()} | "
                         f"{group['return_mean'].mean():.1f} | {grpo:.1f} | {PAPER_GIGPO_SCIENCEWORLD} | {empo2:.1f} | "
                         f"{naive:.1f} | {reflexion:.1f} | {retrospex:.1f} |")
    webshop = paper_results()["webshop"]
    lines.append("")
    lines.append("Kit numbers come from the runs' own eval.jsonl (the preset and model columns say what produced them); "
                 "paper numbers from data/paper_results.json (Qwen2.5-7B-Instruct, full fine-tuning, 8 x A100). "
                 f"The EMPO² paper reports GiGPO on WebShop only (score {webshop['GiGPO']['score']}; GRPO "
                 f"{webshop['GRPO']['score']}, EMPO² {webshop['EMPO2']['score']}), hence \"-\".")
    return "\n".join(lines)

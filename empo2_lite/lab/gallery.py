"""The results gallery's words and tables, generated from a study's numbers (notebook 05).

Why generated: a summary written by hand drifts from the runs it describes; this one is computed
from the same tables the verdicts come from, so a new study shows in the gallery with its own
story and no new code. What it states:

* what was compared (algorithms, seeds, iterations, task, step cap, model, how the setting was
  chosen), from the study's record and the runs' configs;
* success and return against *every* untrained reference (a study plays the model with and without
  the demonstration), and the protocol's verdicts (``comparison.meets_target`` against each
  reference, so against the better one; ``comparison.meets_success_target``);
* what the numbers do not show (no episode solved, a result that is not stable over seeds, too few
  memory updates to judge the memory, one model and one task).

Tables use the palette's names and order (``palette``), human column names, one rounding (returns
to 0.1, shares in whole percent), at most eight columns; details go to a second table.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from empo2_lite import comparison, results
from empo2_lite.config import BASELINE_KINDS
from empo2_lite.env.spec import environment_of
from empo2_lite.palette import UNTRAINED, display_name, order
from empo2_lite.runs import RunDir

MAIN = "main"
"""A study's folder of compared runs (beside their first untrained reference)."""
RETURN_TARGET = 20.0
SUCCESS_TARGET = 25.0
"""The protocol's targets (``comparison.meets_target``, ``comparison.meets_success_target``), in points."""
UNSTABLE_STD = 10.0
"""A test return whose std over seeds exceeds this many points is named as not stable over seeds."""


@dataclass
class Study:
    """A study (or a ``compare`` folder) read for the gallery: its tables per reference folder, the
    label of each folder's untrained reference, their evaluation rows, the compared runs' files."""

    folder: Path
    tables: dict[str, pd.DataFrame]
    labels: dict[str, str]
    references: dict[str, pd.DataFrame]
    metrics: pd.DataFrame
    evals: pd.DataFrame
    record: dict | None = None
    configs: dict[str, object] = field(default_factory=dict)

    @property
    def algos(self) -> list[str]:
        """The trained algorithms, in the palette's order."""
        return order(name for name in next(iter(self.tables.values()))["algo"] if name not in UNTRAINED)

    def reference_return(self, folder: str) -> float:
        """The untrained model's mean test return in ``folder``'s table."""
        return float(_row(self.tables[folder], "naive")["test_return"])

    @property
    def better(self) -> str:
        """The reference folder whose untrained model has the higher test return (the protocol's bar)."""
        return max(self.tables, key=self.reference_return)

    def by_return(self) -> list[str]:
        """The reference folders, the better one first (the order of the summary and the table)."""
        return sorted(self.tables, key=lambda name: name != self.better)


def _row(table: pd.DataFrame, algo: str) -> pd.Series:
    return table.loc[table["algo"] == algo].iloc[0]


def demonstrations_phrase(count: int) -> str:
    """'no demonstration', '1 demonstration', '2 demonstrations'."""
    return "no demonstration" if count == 0 else results.counted(count, "demonstration")


def the_model_with(label: str) -> str:
    """A reference label as a phrase: "untrained, 1 demonstration" -> "the model with 1 demonstration"."""
    return "the model with " + label.split(", ", 1)[-1]


def reference_label(config) -> str:
    """An untrained reference as people say it, from its run's config: "untrained, 1 demonstration"
    (each baseline kind under its own words: memory, reflections, a critic, the warm start)."""
    kind = {"memory-only": "untrained + memory", "reflexion": "untrained + reflections",
            "retrospex": "untrained + critic re-ranking", "warm-start": "warm start, no RL"}.get(config.baseline,
                                                                                                "untrained")
    return f"{kind}, {demonstrations_phrase(config.rollout.demonstrations)}"


def load_study(folder: str | Path) -> Study | None:
    """Read a study folder (``study.json``, ``main/`` and one folder per other reference) or a folder
    of runs beside their untrained baselines (``compare``): one table per reference folder. None
    where there is nothing to compare: no untrained (naive) reference or no trained run tested."""
    folder = Path(folder)
    record = results.study_record(folder)
    if (folder / MAIN).is_dir():
        tables, main = comparison.study_tables(folder, MAIN), folder / MAIN
    else:
        tables, main = {".": comparison.comparison_table(folder)}, folder
    tables = {name: table for name, table in tables.items() if "naive" in set(table["algo"])}
    if not tables or set(next(iter(tables.values()))["algo"]) <= set(UNTRAINED):
        return None
    labels, references = {}, {}
    for name in tables:
        for kind in BASELINE_KINDS:  # every reference a study played, the warm start alone included
            runs = [run for run in results.find_runs(folder / name) if RunDir(run).config().baseline == kind]
            if runs:
                label = reference_label(RunDir(runs[0]).config())
                labels.setdefault(name, label)  # a folder's table pairs its gains with its naive runs
                references[label] = results.load_evals(runs)
    runs = results.find_runs(main)
    configs = {run.name: RunDir(run).config() for run in runs}
    return Study(folder, tables, labels, references, results.load_metrics(runs),
                 results.load_evals(runs, per_variation=True), record, configs)


def number(value: float, signed: bool = False, digits: int = 1) -> str:
    """The gallery's one rounding (Python's, as every printout of the kit): ``digits`` decimals,
    with a sign when ``signed``; -0.0 shows as 0.0."""
    if value is None or math.isnan(value):
        return "n/a"
    value = float(value) + 0.0 if round(float(value), digits) != 0 else 0.0
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _percent(share: float) -> str:
    return "n/a" if share is None or math.isnan(share) else f"{number(100 * share, digits=0)}%"


def _listing(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _names(algos) -> str:
    return _listing([display_name(algo) for algo in order(algos)])


def meets_return_target(study: Study, algo: str) -> bool:
    """The protocol's return target: met against every reference, so against the better one."""
    return all(comparison.meets_target(table, algo, RETURN_TARGET) for table in study.tables.values())


def compared_what(study: Study) -> str:
    """The first paragraph: what was compared, on which task and model, how the setting was chosen."""
    trained = [config for config in study.configs.values() if not config.baseline]
    first = trained[0]
    seeds = sorted({config.seed for config in trained})
    iterations = int(study.metrics.groupby("run")["iteration"].max().median()) if len(study.metrics) else 0
    test = study.evals[study.evals["split"].fillna("test") == "test"] if "split" in study.evals else study.evals
    variations = len(next(iter(test["per_variation"]))) if "per_variation" in test and len(test) else None
    text = (f"**What was compared.** {_names(study.algos)}, {results.counted(len(seeds), 'seed')} each, "
            f"trained for {results.counted(iterations, 'iteration')} on the {environment_of(first.task).title} task *{first.task}* "
            f"({first.rollout.max_steps}-step episodes) with {results.model_name(first.policy.model)} "
            f"(preset `{first.preset or 'custom'}`)")
    if study.record and study.record.get("choices"):
        text += ", at a setting chosen on the dev split"
    played = f"the {variations} test variations" if variations else "the test split"
    text += (f"; then each run played {played} once. "
             f"{'The untrained references' if len(study.labels) > 1 else 'The untrained reference'}: "
             f"{_listing([the_model_with(study.labels[name]) for name in study.by_return()])}, "
             f"{results.counted(int(_row(next(iter(study.tables.values())), 'naive')['runs']), 'seed')} each.")
    return text


def _judged(study: Study, met: list[str]) -> str:
    """"is met by ...", or why it cannot be judged yet: both targets need at least two seeds (a
    study read between its parts may have one), and "met by none" would then read as a failure."""
    if met:
        return f"is met by {_names(met)}"
    seeds = int(min(_row(next(iter(study.tables.values())), algo)["runs"] for algo in study.algos))
    if seeds < 2:
        return f"cannot be judged yet: it needs at least two seeds per algorithm, and these runs have {seeds}"
    return "is met by none"


def success_paragraph(study: Study) -> str:
    """Success (share of test episodes solved) against the references, and the success target."""
    table = next(iter(study.tables.values()))
    rates = {algo: float(_row(table, algo)["success_rate"]) for algo in study.algos}
    references = {study.labels[name]: float(_row(t, "naive")["success_rate"]) for name, t in study.tables.items()}
    met = [algo for algo in study.algos if comparison.meets_success_target(study.tables, algo, SUCCESS_TARGET)]
    if not any(rates.values()) and not any(references.values()):
        text = ("**Did any agent solve the task?** No: not one test episode was solved, by a trained run or an "
                "untrained one (success rate 0 everywhere).")
    else:
        text = ("**Success** (share of test episodes solved): "
                + ", ".join(f"{display_name(algo)} {_percent(rate)}" for algo, rate in rates.items())
                + "; " + ", ".join(f"{label} {_percent(rate)}" for label, rate in references.items()) + ".")
    target = (f"+{SUCCESS_TARGET:.0f} points of success rate over "
              f"{'every untrained reference' if len(study.tables) > 1 else 'the untrained model'}")
    return text + f" The success target ({target}) {_judged(study, met)}."


def other_references_paragraph(study: Study) -> str:
    """The references beside the untrained model (a warm start played without RL, the untrained
    model with memory), with each algorithm's success gain over the warm start paired by test
    variation: RL's own share, above twice its standard error or not. "" when there are none."""
    table = next(iter(study.tables.values()))
    present = [kind for kind in ("warm-start", "memory-only") if kind in set(table["algo"])]
    if not present:
        return ""
    words = {"warm-start": "the warm start alone (no RL)", "memory-only": "the untrained model with EMPO²'s memory"}
    rates = ", ".join(f"{words[kind]} {_percent(float(_row(table, kind)['success_rate']))} "
                      f"(return {number(_row(table, kind)['test_return'], True)})" for kind in present)
    text = f"**The other references.** Test success: {rates}."
    if "warm-start" in present:
        finals = study.evals[study.evals["split"].fillna("test") == "test"].sort_values("iteration").groupby("run").tail(1)
        warm = list(finals.loc[finals["algo"] == "warm-start", "per_variation_success"])
        gains = []
        for algo in study.algos:
            gain, error = comparison.paired_gain(list(finals.loc[finals["algo"] == algo, "per_variation_success"]), warm)
            verdict = "above" if gain > 2 * error else "not above"
            gains.append(f"{display_name(algo)} {number(100 * gain, True)} points (± {number(100 * error)}; "
                         f"{verdict} twice its standard error)")
        text += (" RL's own share, the gain in success over the warm start alone (paired by test variation): "
                 + ", ".join(gains) + ".")
    return text


def return_paragraph(study: Study) -> str:
    """Return against each reference (the better one first)."""
    folders = study.by_return()
    own = ", ".join(f"{display_name(algo)} {number(_row(study.tables[folders[0]], algo)['test_return'], True)}"
                    for algo in study.algos)
    lines = []
    for index, name in enumerate(folders):
        table = study.tables[name]
        gains = ", ".join(f"{display_name(algo)} {number(_row(table, algo)['gain_over_naive'], True)} "
                          f"(± {number(_row(table, algo)['gain_se'])})" for algo in study.algos)
        which = "the better untrained reference, " if index == 0 and len(folders) > 1 else ""
        lines.append(f"over {which}{the_model_with(study.labels[name])} "
                     f"({number(study.reference_return(name), True)}): {gains}")
    return (f"**Return** (the score: -100 for a failed episode, 100 for a solved one). Test return, mean over "
            f"seeds: {own}. Gain, paired by test variation (± standard error): " + "; ".join(lines) + ".")


def verdict_paragraph(study: Study) -> str:
    """The protocol's return verdict (against the better reference), and where it holds only
    against a weaker one."""
    folders = study.by_return()
    met = [algo for algo in study.algos if meets_return_target(study, algo)]
    over = "the better untrained reference" if len(folders) > 1 else "the untrained model"
    rule = (f"a return gain of at least {RETURN_TARGET:.0f} over {over}, more than twice the std over seeds and "
            "twice the paired standard error")
    text = f"**Verdict.** The protocol's target ({rule}) {_judged(study, met)}."
    partial = [algo for algo in study.algos if algo not in met
               and any(comparison.meets_target(study.tables[name], algo, RETURN_TARGET) for name in folders[1:])]
    if partial:
        text += (f" {_names(partial)} {'meets' if len(partial) == 1 else 'meet'} it only over "
                 f"{_listing([the_model_with(study.labels[name]) for name in folders[1:]])}, which scores below "
                 f"{the_model_with(study.labels[folders[0]])}.")
    return text


def caveats(study: Study) -> list[str]:
    """What the study does not show, each from its own number."""
    table = next(iter(study.tables.values()))
    found = []
    if not table["success_rate"].fillna(0).any():
        found.append("That training makes the agent solve the task: no test episode was solved.")
    for algo in study.algos:
        row = _row(table, algo)
        if row["test_return_std"] > UNSTABLE_STD:
            runs = study.evals[study.evals["algo"] == algo].sort_values("iteration").groupby("run").tail(1)
            per_seed = ", ".join(number(value, True) for value in runs.sort_values("run")["return_mean"])
            found.append(f"A stable result for {display_name(algo)}: its test return spreads by "
                         f"{number(row['test_return_std'])} (std) over {results.counted(int(row['runs']), 'seed')} "
                         f"({per_seed}).")
        if row["memory_iterations"] > 0:
            iterations = int((study.metrics["algo"] == algo).sum())
            found.append(f"Whether {display_name(algo)}'s memory helps: tips reached a prompt in "
                         f"{int(row['memory_iterations_with_tips'])} of its "
                         f"{results.counted(int(row['memory_iterations']), 'memory iteration')}, out of "
                         f"{iterations} iterations over all seeds: too few updates to judge it by.")
    models = {results.model_name(config.policy.model) for config in study.configs.values()}
    tasks = {config.task for config in study.configs.values()}
    found.append(f"Anything beyond this model and task: {_listing(sorted(models))} on {_listing(sorted(tasks))} only.")
    return found


def summary_markdown(study: Study) -> str:
    """The story of the study in plain words, every number from its tables."""
    parts = [compared_what(study), success_paragraph(study), other_references_paragraph(study), return_paragraph(study),
             verdict_paragraph(study), "**What it does not show.**\n" + "\n".join(f"- {line}" for line in caveats(study))]
    return "\n\n".join(part for part in parts if part)


def results_table(study: Study) -> pd.DataFrame:
    """One table of the study, at most eight columns: per reference and per algorithm, seeds, test
    return (mean ± std over seeds), success rate, the gain over each reference (± paired se), the
    protocol's return verdict and training minutes per run."""
    folders = study.by_return()
    first = study.tables[folders[0]]
    rows = []
    for name in folders:
        row = _row(study.tables[name], "naive")
        rows.append({"": study.labels[name], "seeds": int(row["runs"]),
                     "test return (± std over seeds)": _plus_minus(row["test_return"], row["test_return_std"]),
                     "success rate": _percent(row["success_rate"]),
                     **{f"gain over {study.labels[other]} (± se)": "" for other in folders},
                     "return target": "", "training minutes per run": ""})
    for algo in study.algos:
        row = _row(first, algo)
        rows.append({"": display_name(algo), "seeds": int(row["runs"]),
                     "test return (± std over seeds)": _plus_minus(row["test_return"], row["test_return_std"]),
                     "success rate": _percent(row["success_rate"]),
                     **{f"gain over {study.labels[other]} (± se)": _plus_minus(
                         _row(study.tables[other], algo)["gain_over_naive"], _row(study.tables[other], algo)["gain_se"],
                         signed=True) for other in folders},
                     "return target": "met" if meets_return_target(study, algo) else "not met",
                     "training minutes per run": number(row["training_minutes"])})
    return pd.DataFrame(rows)


def _plus_minus(value: float, spread: float, signed: bool = False) -> str:
    shown = number(value, signed)
    return shown if spread is None or math.isnan(spread) or shown == "n/a" else f"{shown} ± {number(spread)}"


MEMORY_COLUMNS = {"memory_iterations": "memory iterations", "with_tips": "of them with tips shown",
                  "tips_per_step": "tips per step (when shown)", "off_policy_updates": "off-policy updates with tips",
                  "on_policy_updates": "on-policy updates with tips"}
"""``results.memory_use``'s columns in words."""


def memory_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """``results.memory_use`` with the algorithms' names and columns in words (summed over seeds)."""
    use = results.memory_use(metrics)
    use = use.reindex(order(use.index)).rename(columns=MEMORY_COLUMNS)
    use.index = [display_name(algo) for algo in use.index]
    return use.round({MEMORY_COLUMNS["tips_per_step"]: 1})


def markdown_table(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (index left out): wraps to the page in Jupyter and in HTML."""
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(str(value) for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def setting_words(overrides: dict) -> str:
    """A setting's overrides in words: {"group_size": 4} -> "group size 4"; none: "the preset as is"."""
    if not overrides:
        return "the preset as is"
    return ", ".join(f"{key.split('.')[-1].replace('_', ' ')} {value:g}" if isinstance(value, float)
                     else f"{key.split('.')[-1].replace('_', ' ')} {value}" for key, value in overrides.items())


def choice_sentence(record: dict | None) -> str:
    """How the compared runs' setting was chosen, as a sentence (one per distinct choice)."""
    if not record or not record.get("choices"):
        return "No screening: the compared runs use their preset's setting."
    screen = record.get("plan", {}).get("screen", {})
    by_choice: dict[str, list[str]] = {}
    for algo, choice in record["choices"].items():
        by_choice.setdefault(choice["value"], []).append(algo)
    sentences = []
    for value, algos in by_choice.items():
        choice = record["choices"][algos[0]]
        returns = sorted(choice.get("dev_returns", {}).items(), key=lambda item: -item[1])
        listed = ", ".join(f"{name} {number(score, True)}" for name, score in returns)
        screened = _names(screen.get("algos", [])) if screen.get("algos") else "the algorithms"
        sentences.append(
            f"The setting **{value}** ({setting_words(choice.get('overrides', {}))}) was chosen for {_names(algos)} on "
            f"the dev split: the best {'dev success rate, then dev return,' if 'dev_success' in choice else 'dev return'}"
            f" of the {len(returns)} settings {screened} was screened with"
            + (f" ({results.counted(screen['iterations'], 'iteration')} each, seed {screen['seed']})"
               if "iterations" in screen and "seed" in screen else "") + f": {listed}.")
    return " ".join(sentences)


def find_transcripts(*folders: str | Path) -> list[Path]:
    """The ``watch-*.txt`` transcripts (``python -m empo2_lite play``) in ``folders``, each once."""
    found = {path.resolve(): path for folder in folders if folder for path in Path(folder).glob("watch-*.txt")}
    return sorted(found.values(), key=lambda path: path.name)


def transcript_variation(text: str) -> int | None:
    """The variation a transcript played ("== find-animal, variation 235"), or None."""
    match = re.search(r"variation (\d+)", text)
    return int(match.group(1)) if match else None

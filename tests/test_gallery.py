"""The results gallery (notebooks/05_results_gallery.ipynb) and what it calls: the story generated from
the shipped protocol study's numbers, one table that fits a page, one palette in every figure, figures
that say what they cannot show, and the transcripts found."""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
from matplotlib.colors import to_hex

from empo2_lite import jobs, palette, plots, results
from empo2_lite.config import ALGOS, BASELINES
from empo2_lite.lab import gallery

STUDY = results.sample_runs_dir("cpu-study")
GALLERY = Path(__file__).resolve().parents[1] / "notebooks" / "05_results_gallery.ipynb"

# docs/results-cpu-study.md in words the gallery writes itself (its numbers: the study's own tables; ties such as
# -54.55 round as Python rounds them).
GOLDEN_SUMMARY = """\
**What was compared.** EMPO², GRPO and GiGPO, 3 seeds each, trained for 6 iterations on the ScienceWorld task \
*find-animal* (5-step episodes) with SmolLM2-135M-Instruct (preset `cpu-learn`), at a setting chosen on the dev \
split; then each run played the 20 test variations once. The untrained references: the model with no demonstration \
and the model with 1 demonstration, 3 seeds each.

**Did any agent solve the task?** No: not one test episode was solved, by a trained run or an untrained one \
(success rate 0 everywhere). The success target (+25 points of success rate over every untrained reference) is met \
by none.

**Return** (the score: -100 for a failed episode, 100 for a solved one). Test return, mean over seeds: EMPO² -14.1, \
GRPO +9.7, GiGPO +11.3. Gain, paired by test variation (± standard error): over the better untrained reference, the \
model with no demonstration (+5.9): EMPO² -19.9 (± 6.1), GRPO +3.8 (± 2.5), GiGPO +5.4 (± 2.6); over the model with \
1 demonstration (-54.5): EMPO² +40.5 (± 8.4), GRPO +64.2 (± 6.0), GiGPO +65.8 (± 5.9).

**Verdict.** The protocol's target (a return gain of at least 20 over the better untrained reference, more than \
twice the std over seeds and twice the paired standard error) is met by none. GRPO and GiGPO meet it only over the \
model with 1 demonstration, which scores below the model with no demonstration.

**What it does not show.**
- That training makes the agent solve the task: no test episode was solved.
- A stable result for EMPO²: its test return spreads by 28.1 (std) over 3 seeds (+9.8, -6.8, -45.1).
- Whether EMPO²'s memory helps: tips reached a prompt in 3 of its 4 memory iterations, out of 18 iterations over \
all seeds: too few updates to judge it by.
- Anything beyond this model and task: SmolLM2-135M-Instruct on find-animal only."""

GOLDEN_TABLE = """\
|  | seeds | test return (± std over seeds) | success rate | gain over untrained, no demonstration (± se) | \
gain over untrained, 1 demonstration (± se) | return target | training minutes per run |
|---|---|---|---|---|---|---|---|
| untrained, no demonstration | 3 | 5.9 ± 3.0 | 0% |  |  |  |  |
| untrained, 1 demonstration | 3 | -54.5 ± 19.2 | 0% |  |  |  |  |
| EMPO² | 3 | -14.1 ± 28.1 | 0% | -19.9 ± 6.1 | +40.5 ± 8.4 | not met | 16.0 |
| GRPO | 3 | 9.7 ± 0.3 | 0% | +3.8 ± 2.5 | +64.2 ± 6.0 | not met | 12.7 |
| GiGPO | 3 | 11.3 ± 3.3 | 0% | +5.4 ± 2.6 | +65.8 ± 5.9 | not met | 13.0 |"""


@pytest.fixture(scope="module")
def study() -> gallery.Study:
    return gallery.load_study(STUDY)


def test_the_summary_tells_the_shipped_study_in_words(study):
    assert gallery.summary_markdown(study) == GOLDEN_SUMMARY


def test_the_summary_is_computed_from_the_tables_not_written_by_hand(study):
    """A study where GRPO clears both references: the verdict and the caveats follow the numbers."""
    changed = copy.copy(study)
    changed.tables = {name: table.copy() for name, table in study.tables.items()}
    for table in changed.tables.values():
        grpo = table["algo"] == "grpo"
        table.loc[grpo, ["gain_over_naive", "gain_se", "success_rate", "success_gain", "success_gain_se"]] = [
            40.0, 3.0, 0.5, 0.5, 0.05]
    text = gallery.summary_markdown(changed)
    assert "The protocol's target (" in text and ") is met by GRPO." in text
    assert "is met by GRPO." in gallery.success_paragraph(changed)  # +50 points over both, se 5
    assert "Success** (share of test episodes solved): EMPO² 0%, GRPO 50%, GiGPO 0%" in text
    assert "That training makes the agent solve the task" not in text


def test_the_results_table_fits_a_page_in_words_and_in_one_order(study):
    table = gallery.results_table(study)
    assert len(table.columns) <= 8 and gallery.markdown_table(table) == GOLDEN_TABLE
    shown = " ".join([*table.columns, *table.astype(str).to_numpy().ravel()])
    assert "_" not in shown and "embedded:" not in shown and "{" not in shown  # no raw names, no dicts
    memory = gallery.memory_table(study.metrics)
    assert list(memory.index) == ["EMPO²"] and "_" not in " ".join(memory.columns)
    assert memory.iloc[0].tolist() == [4, 3, 6.5, 3, 0]


def test_the_chosen_setting_reads_as_a_sentence(study):
    assert gallery.choice_sentence(study.record) == (
        "The setting **g4x2** (group size 4, variations per iteration 2) was chosen for EMPO², GRPO and GiGPO on the "
        "dev split: the best dev return of the 4 settings GRPO was screened with (3 iterations each, seed 100): "
        "g4x2 +9.3, preset +1.2, d0 -1.0, lr3e-4 -45.1.")
    assert gallery.setting_words({}) == "the preset as is"
    assert gallery.setting_words({"update.learning_rate": 0.0003}) == "learning rate 0.0003"


def test_model_names_are_written_as_people_write_them():
    assert results.model_name("embedded:smollm2-135m-instruct") == "SmolLM2-135M-Instruct"
    assert results.model_name("Qwen/Qwen2.5-7B-Instruct") == "Qwen2.5-7B-Instruct"
    assert results.model_name("/models/my-model/") == "my-model"


def test_without_an_untrained_reference_there_is_no_study_to_tell():
    assert gallery.load_study(results.sample_runs_dir("cpu-smoke")) is None


def test_the_transcript_cell_finds_a_before_and_after_pair_of_one_variation():
    cell = next(cell for cell in nbformat.read(GALLERY, as_version=4).cells if "find_transcripts" in cell.source)
    assert "gallery.find_transcripts(study_dir, root)" in cell.source  # the study folder, where they ship
    found = gallery.find_transcripts(STUDY, STUDY / "main")
    texts = [path.read_text() for path in found]
    assert [path.name for path in found] == ["watch-gigpo-s1-1-untrained.txt", "watch-gigpo-s1-2-trained.txt"]
    assert "untrained base model" in texts[0] and "trained adapter" in texts[1]
    assert {gallery.transcript_variation(text) for text in texts} == {235}
    words = " ".join(cell.source for cell in nbformat.read(GALLERY, as_version=4).cells if cell.cell_type == "markdown")
    assert not re.search(r"variation \d", words)  # the cell prints the variation it shows; the text names none


def _legend_colours(figure) -> list[tuple[str, str]]:
    """(label, colour) of every legend entry of ``figure`` (axes and figure legends)."""
    entries = []
    for legend in [*(axes.get_legend() for axes in figure.axes), *figure.legends]:
        if legend is None:
            continue
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if hasattr(handle, "get_facecolor"):  # bars, scatter markers (an open marker: its edge)
                colour = np.atleast_2d(handle.get_facecolor())
                colour = colour if len(colour) else np.atleast_2d(handle.get_edgecolor())
                colour = colour[0]
            else:  # lines, error bars
                colour = handle.get_color()
            entries.append((text.get_text(), to_hex(colour, keep_alpha=False)))
    return entries


def _name_in(label: str) -> str | None:
    """The algorithm or baseline a legend label names ("kit: GRPO (SmolLM2...)" -> "grpo")."""
    label = re.sub(r"^(paper|kit): ", "", label)
    names = sorted(palette.STYLES, key=lambda name: -len(palette.display_name(name)))
    return next((name for name in names if label.startswith(palette.display_name(name))), None)


def _gallery_figures(study) -> dict:
    runs = results.find_runs(STUDY / "main")
    figures = jobs.all_figures(runs)
    figures["final_results"] = plots.final_results(study.evals, study.references)
    figures["learning_comparison_with_references"] = plots.learning_comparison(study.metrics, study.evals,
                                                                                study.references)
    return figures


def test_every_figure_the_gallery_draws_gives_a_name_one_colour(study):
    seen: dict[str, set[str]] = {}
    for name, figure in _gallery_figures(study).items():
        for label, colour in _legend_colours(figure):
            algo = _name_in(label)
            if algo is None:
                continue  # a phase, a memory marker, a screened setting: not an algorithm
            seed = re.search(r": \w[\w+-]*-s\d+$", label)  # a run of memory growth: a shade of its colour
            expected = (palette.shades(palette.STYLES[algo].colour, 3) if seed
                        else [to_hex(palette.STYLES[algo].colour)])
            assert colour in expected, f"{name}: {label!r} drawn in {colour}, not {expected}"
            seen.setdefault(algo, set()).add(name)
    assert {"empo2", "grpo", "gigpo", "naive"} <= set(seen)
    assert {"paper_comparison", "final_results", "learning_comparison"} <= seen["empo2"]  # EMPO² was pink in one


def test_the_palette_has_one_entry_per_algorithm_and_baseline_and_one_order():
    assert set(ALGOS) | set(BASELINES) <= set(palette.STYLES)
    looks = [(entry.colour, entry.marker) for entry in palette.STYLES.values()]
    assert len(set(looks)) == len(looks) and len({entry.colour for entry in palette.STYLES.values()}) == len(looks)
    assert palette.order(["gigpo", "grpo", "naive", "empo2", "made-up"]) == ["naive", "empo2", "grpo", "gigpo",
                                                                             "made-up"]
    three = palette.shades("#0072B2", 3)
    assert three[1] == "#0072b2" and len(set(three)) == 3


def test_the_headline_figure_has_error_bars_both_references_and_says_nothing_was_solved(study):
    figure = plots.final_results(study.evals, study.references)
    axes = figure.axes[0]
    assert len(figure.axes) == 1  # success at 0 everywhere: no panel of zeros, a note instead
    assert axes.get_title() == "success rate 0 for every run and reference: no test episode was solved"
    spreads = {label.get_text(): container for label, container in zip(axes.get_xticklabels(), axes.containers)}
    (low, high), = [segment[:, 1] for segment in spreads["EMPO²"].lines[2][0].get_segments()]
    assert (high - low) / 2 == pytest.approx(28.149, abs=0.01)  # +-1 std over seeds
    levels = sorted(round(line.get_ydata()[0], 2) for line in axes.get_lines() if line.get_linestyle() in ("--", ":"))
    assert levels == [-54.55, 5.9]  # both untrained references


def test_shares_stay_in_0_1_and_a_metric_is_drawn_only_where_it_applies(study):
    clip = plots.learning_curves(study.metrics, "losses/clip_fraction").axes[0]
    for band in clip.collections:
        values = band.get_paths()[0].vertices[:, 1]
        assert values.min() >= 0.0 and values.max() <= 1.0
    success = plots.learning_curves(study.metrics, "charts/success_rate").axes[0]
    assert success.get_ylim() == (-0.03, 1.03) and success.get_title() == "0 in every iteration of every run"
    novelty = plots.learning_curves(study.metrics, "charts/novelty_mean").axes[0]
    assert [line.get_label() for line in novelty.get_lines()] == ["EMPO² (3 runs)"]
    assert novelty.get_title() == "not drawn: GRPO and GiGPO (no novelty reward)"
    growth = plots.memory_growth(study.metrics).axes[0]
    assert [line.get_label() for line in growth.get_lines()] == [f"EMPO²: empo2-s{seed}" for seed in range(3)]
    sizes = [line.get_markersize() for line in clip.get_lines()]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3  # exact overlaps still show each marker


def test_a_curve_of_one_iteration_says_so(study):
    first = study.metrics[study.metrics["iteration"] == 1]
    assert plots.learning_curves(first).axes[0].get_title() == (
        "one iteration so far: a single point per line, no curve yet")


def test_legends_name_only_drawn_series_and_no_text_sits_over_the_ticks(study):
    phases = plots.phase_breakdown(study.metrics)
    assert [text.get_text() for text in phases.legends[0].get_texts()] == ["rollouts", "writing tips",
                                                                          "old log-probs", "update"]
    assert phases.axes[0].get_title() == "left out (under 1% of the time): memory"
    paper = plots.paper_comparison(results.paper_table(), study.evals)
    assert not paper.axes[0].texts  # the GiGPO footnote is part of the x label, laid out below the ticks
    assert paper.axes[0].get_xlabel().endswith("no paper bar for it here")
    bars = plots.ablation_bars(study.evals, "algo")
    assert bars.get_suptitle().startswith("test return by algorithm")


def test_each_baseline_kind_is_named_by_what_it_plays():
    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.lab.gallery import reference_label

    named = {kind: reference_label(apply_overrides(preset("cpu-learn"), {"baseline": kind, "rollout.demonstrations": 1}))
             for kind in ("naive", "memory-only", "reflexion", "retrospex", "warm-start")}
    assert named == {"naive": "untrained, 1 demonstration", "memory-only": "untrained + memory, 1 demonstration",
                     "reflexion": "untrained + reflections, 1 demonstration",
                     "retrospex": "untrained + critic re-ranking, 1 demonstration",
                     "warm-start": "warm start, no RL, 1 demonstration"}


def test_the_choice_sentence_says_what_the_screening_chose_by():
    from empo2_lite import results
    from empo2_lite.lab.gallery import choice_sentence

    record = json.loads((results.sample_runs_dir("cpu-study") / "study.json").read_text())
    assert "the best dev return of the 4 settings" in choice_sentence(record)  # chosen before success came first
    newer = copy.deepcopy(record)
    for choice in newer["choices"].values():
        choice["dev_success"] = {name: 0.0 for name in choice.get("dev_returns", {})}
    assert "the best dev success rate, then dev return, of the 4 settings" in choice_sentence(newer)


def test_a_study_read_after_one_seed_says_its_targets_cannot_be_judged_yet(tmp_path):
    """The CPU solve study as its part 2 left it (seed 0 of 3, copied from the shipped runs): its
    success is stated, and neither target reads as failed."""
    shipped = results.sample_runs_dir("cpu-solve")
    for folder in ("main", "reference-d0"):
        for run in (shipped / folder).glob("*-s0"):
            shutil.copytree(run, tmp_path / folder / run.name)
    text = gallery.summary_markdown(gallery.load_study(tmp_path))
    assert "**Success** (share of test episodes solved): EMPO² 30%, GRPO 35%, GiGPO 25%; untrained, 1 demonstration 0%" in text
    assert text.count("cannot be judged yet: it needs at least two seeds per algorithm, and these runs have 1") == 2
    assert "met by none" not in text


def test_the_cpu_solve_summary_states_success_the_targets_and_rls_own_share():
    """The gallery's default study: success first, the success target met by GRPO and EMPO², and the
    warm start alone named with each algorithm's paired gain over it."""
    text = gallery.summary_markdown(gallery.load_study(results.sample_runs_dir("cpu-solve")))
    assert "**Success** (share of test episodes solved): EMPO² 27%, GRPO 33%, GiGPO 18%" in text
    assert "(+25 points of success rate over every untrained reference) is met by EMPO² and GRPO." in text
    assert ("**The other references.** Test success: the warm start alone (no RL) 5% (return +28.3), the untrained "
            "model with EMPO²'s memory 0% (return +18.0).") in text
    assert "GRPO +28.3 points (± 7.4; above twice its standard error)" in text
    assert "on the ScienceWorld task *find-non-living-thing*" in text
    assert gallery.other_references_paragraph(gallery.load_study(results.sample_runs_dir("cpu-study"))) == ""

"""The Reflexion baseline (``empo2_lite/baselines/reflexion.py``) on recorded transitions.

A scripted sampler plays the episodes: it solves find-non-living-thing variation 8 (recorded gold
path: look around, focus on picture, move picture to blue box) only when the plan of a reflection
is in its first message, and writes the reflections itself, echoing the box colour of the task it
was asked about, so a test can tell which chain a reflection came from. Every prompt it is fed is
recorded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable

import pytest

from empo2_lite import prompts
from empo2_lite.baselines import ReflexionSettings
from empo2_lite.baselines import reflexion as reflexion_module
from empo2_lite.baselines.reflexion import play_chains, reflection_cap, reflexion
from empo2_lite.config import ConfigError, PolicyConfig, RolloutConfig
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import worst_case_prompt_tokens
from empo2_lite.seeding import episode_seed, reflection_seed, step_seed
from empo2_lite.tasks import get_task
from replay_pool import ReplayPool

TASK = "find-non-living-thing"  # variation 5: purple box, variation 8: blue box (recorded gold paths)
SOLVE_8 = ["look around", "focus on picture", "move picture to blue box"]
FAIL_8 = ["look around", "focus on picture", "look around"]  # 67 points, then the step cap
FAST = RolloutConfig(max_steps=3, max_new_tokens=8, demonstrations=0, temperature=0.4)


class ReflectingSampler:
    """Episodes: ``SOLVE_8`` when the first user message shows a plan with "move picture", else
    ``FAIL_8`` (any variation). Reflections: ``note(colour, n)`` for the n-th reflection asked
    (colour "no" for a task without a box)."""

    def __init__(self, tokenizer, note=lambda colour, n: f"{colour} box note {n}. Plan: move picture to blue box"):
        self.tokenizer, self.note = tokenizer, note
        self.first_messages: list[tuple[int, str]] = []
        """(seed of the step-0 call, first user message) of every episode started."""
        self.reflection_prompts: list[str] = []
        self.reflection_calls: list[dict] = []
        self.step_seeds: list[int] = []
        self.released: list[Hashable] = []
        self.last_computed: dict[Hashable, int] = {}

    def sample(self, keys, prompts_ids, with_logprobs=True, *, seeds=None, temperature=None, top_p=None,
               max_new_tokens=None) -> list[SampledResponse]:
        if temperature is not None:  # a reflection
            self.reflection_calls.append({"keys": list(keys), "seeds": list(seeds), "temperature": temperature,
                                          "max_new_tokens": max_new_tokens, "with_logprobs": with_logprobs})
            texts = []
            for ids in prompts_ids:
                prompt = self.tokenizer.decode(ids)
                self.reflection_prompts.append(prompt)
                box = re.search(r"to the (\w+) box", prompt)
                texts.append(self.note(box.group(1) if box else "no", len(self.reflection_prompts)))
            return [self._response(text, "newline") for text in texts]
        self.step_seeds += seeds
        responses = []
        for ids, seed in zip(prompts_ids, seeds):
            text = self.tokenizer.decode(ids)
            first = text.split("<|im_start|>user", 1)[1].split("<|im_end|>", 1)[0]
            step = text.count("<|im_start|>assistant") - 1
            if step == 0:
                self.first_messages.append((seed, first))
            actions = SOLVE_8 if "Plan: move picture" in first else FAIL_8
            responses.append(self._response(actions[step] if step < len(actions) else "look around", "newline"))
        return responses

    def _response(self, text: str, finish: str) -> SampledResponse:
        ids = self.tokenizer(text + "\n", add_special_tokens=False).input_ids
        return SampledResponse(ids, [-0.5] * len(ids), text, finish)

    def release(self, key: Hashable) -> int:
        self.released.append(key)
        return 0

    def weights_changed(self) -> None:
        """Frozen weights: never called."""


@pytest.fixture(scope="module")
def policy(tiny_byte_model):
    from empo2_lite.policy import load_policy

    return load_policy(PolicyConfig(model=str(tiny_byte_model), lora_rank=0))


def chains_of(policy, sampler, variations=(8,), trials=3, reflect=True, rollout=FAST, **settings):
    return play_chains(policy, ReplayPool(2, unrecorded="fixed"), TASK, variations, rollout,
                       ReflexionSettings(trials=trials, **settings), seed=7, purpose="reflexion-dev",
                       episodes_per_variation=1, reflect=reflect, sampler=sampler)


def test_a_reflection_reaches_the_next_trial_which_solves_and_the_chain_stops_at_100(policy):
    sampler = ReflectingSampler(policy.tokenizer)
    [chain] = chains_of(policy, sampler)
    assert [trial.score for trial in chain.trials] == [67, 100] and chain.solved  # trial 3 never played
    assert [trial.end_reason for trial in chain.trials] == ["max_steps", "completed"]
    [reflection] = chain.reflections  # after trial 1 only: none after a solved trial
    assert (reflection.trial, reflection.text) == (1, "blue box note 1. Plan: move picture to blue box")
    first, second = [message for _, message in sampler.first_messages]
    assert prompts.REFLECTIONS_HEADING not in first
    assert f"{prompts.REFLECTIONS_HEADING}\nTrial #1: blue box note 1. Plan: move picture to blue box" in second
    [asked] = sampler.reflection_prompts  # the transcript of trial 1 and its score
    assert "> focus on picture" in asked and "a score of 67 out of 100" in asked and "Trial #" not in asked
    call = sampler.reflection_calls[0]
    assert (call["temperature"], call["max_new_tokens"], call["with_logprobs"]) == (0.0, 128, False)
    assert call["keys"] == [("reflection", 0)] and ("reflection", 0) in sampler.released


def test_without_reflections_the_same_chain_never_solves(policy):
    """The control: the same trials, nothing written, nothing shown (so trial 2 fails again)."""
    sampler = ReflectingSampler(policy.tokenizer)
    [chain] = chains_of(policy, sampler, reflect=False)
    assert [trial.score for trial in chain.trials] == [67, 67, 67] and not chain.solved
    assert chain.reflections == [] and sampler.reflection_calls == []
    assert all(prompts.REFLECTIONS_HEADING not in message for _, message in sampler.first_messages)


def test_only_the_newest_three_reflections_of_the_same_chain_are_shown(policy):
    sampler = ReflectingSampler(policy.tokenizer, note=lambda colour, n: f"{colour} note {n}")  # no plan: never solves
    chains = chains_of(policy, sampler, variations=(5, 8), trials=5)
    assert [len(chain.trials) for chain in chains] == [5, 5] and [len(c.reflections) for c in chains] == [4, 4]
    by_variation = {5: [], 8: []}
    for seed, message in sampler.first_messages:
        variation = 5 if "purple box" in message else 8
        by_variation[variation].append(message)
    for variation, colour in ((5, "purple"), (8, "blue")):
        messages = by_variation[variation]
        other = "blue" if colour == "purple" else "purple"
        assert all(f"{other} note" not in message for message in messages)  # nothing crosses chains
        shown = [re.findall(r"Trial #(\d+): (\w+) note", message) for message in messages]
        assert shown[0] == [] and [[int(t) for t, _ in trials] for trials in shown[1:]] == [[1], [1, 2], [1, 2, 3],
                                                                                            [2, 3, 4]]
        assert all(c == colour for trials in shown for _, c in trials)
    # the reflection prompt lists the chain's earlier reflections as "Trial #i", at most three
    assert re.findall(r"Trial #(\d+)", sampler.reflection_prompts[-1]) == ["1", "2", "3"]


def test_episode_and_reflection_seeds_have_purposes_of_their_own(policy):
    sampler = ReflectingSampler(policy.tokenizer, note=lambda colour, n: f"{colour} note {n}")
    [chain] = chains_of(policy, sampler, trials=3)
    seeds = [trial.seed for trial in chain.trials]
    assert seeds == [episode_seed(7, "reflexion-dev", trial, 8, 0) for trial in (1, 2, 3)]
    assert len(set(seeds)) == 3 and episode_seed(7, "eval-dev", 0, 8, 0) not in seeds
    assert episode_seed(7, "memory-dev", 0, 8, 0) not in seeds
    reflection_seeds = [seed for call in sampler.reflection_calls for seed in call["seeds"]]
    assert reflection_seeds == [reflection_seed(seed) for seed in seeds[:2]]
    assert not set(reflection_seeds) & set(sampler.step_seeds) and not set(reflection_seeds) & set(seeds)
    assert sampler.step_seeds[:3] == [step_seed(seeds[0], step) for step in range(3)]
    control = ReflectingSampler(policy.tokenizer)
    assert [trial.seed for trial in chains_of(policy, control, reflect=False)[0].trials] == seeds  # paired


def test_a_reflection_too_long_for_the_context_is_cut_and_counted(policy):
    tokenizer = policy.tokenizer
    base = worst_case_prompt_tokens(tokenizer, TASK, FAST, 3, with_tips=False)
    overhead = len(tokenizer(prompts.reflection_block([(1, ""), (2, ""), (3, "")]), add_special_tokens=False).input_ids)
    tight = RolloutConfig(**{**FAST.__dict__, "max_context_tokens": base + overhead + 3 * 12})
    settings = ReflexionSettings()
    assert reflection_cap(tokenizer, TASK, tight, settings) == 12  # the byte tokenizer: 12 characters each
    assert reflection_cap(tokenizer, TASK, FAST, settings) == 128   # room enough: the generation cap
    with pytest.raises(ConfigError, match="rollout.max_context_tokens: .* leaves no room for 3 reflections"):
        reflection_cap(tokenizer, TASK, RolloutConfig(**{**FAST.__dict__, "max_context_tokens": base + 5}), settings)
    long_note = "blue box note, far too long to be shown whole. Plan: move picture to blue box"
    sampler = ReflectingSampler(tokenizer, note=lambda colour, n: long_note)
    [chain] = chains_of(policy, sampler, rollout=tight)
    reflection, _ = chain.reflections  # after trials 1 and 2
    assert reflection.cut_to_fit and reflection.text == long_note[:12].strip()
    assert f"Trial #1: {long_note[:12].strip()}\n" in sampler.first_messages[1][1]  # shown cut, not dropped
    assert reflexion_module.reflection_counts([chain])["cut_to_fit"] == 2
    assert [trial.score for trial in chain.trials] == [67, 67, 67]  # the cut plan no longer says "move picture"


def test_a_long_transcript_loses_its_oldest_steps_first(policy):
    from empo2_lite.trajectory import Trajectory, Turn

    turns = [Turn(user_message="", tips=(), response_ids=[], logprobs=[], response_text="", raw_action=f"act {i}",
                  action=f"act {i}", reward=0, score=0, finish="newline", history="first room" if i == 0 else "",
                  observation=f"seen {i}") for i in range(6)]
    trajectory = Trajectory(TASK, 8, 0, 0, turns=turns, score=10, task_description="find a thing")
    full, kept = reflexion_module.reflection_prompt(policy.tokenizer, trajectory, (), budget=10_000)
    assert kept == 0 and full is not None
    ids, left_out = reflexion_module.reflection_prompt(policy.tokenizer, trajectory, (), budget=len(full) - 20)
    text = policy.tokenizer.decode(ids)
    assert left_out >= 1 and "first room" in text and f"your first {left_out} command(s) are left out" in text
    assert "> act 0" not in text and "> act 5\nseen 5" in text and len(ids) <= len(full) - 20
    assert reflexion_module.reflection_prompt(policy.tokenizer, trajectory, (), budget=50) == (None, 6)


def test_the_reflexion_row_reports_best_of_k_trial_1_the_last_trial_and_the_control(policy):
    sampler = ReflectingSampler(policy.tokenizer)
    row = reflexion(policy, ReplayPool(2, unrecorded="fixed"), get_task("identify-life-stages-2"), FAST,
                    ReflexionSettings(trials=3),
                    split="dev", seed=0, temperature=0.4, episodes_per_variation=1, sampler=sampler)
    record_keys = {"episodes", "return_mean", "success_rate", "per_variation", "per_variation_success", "end_reasons"}
    assert row["measure"] == "best of 3 trials" and record_keys <= row.keys()
    for part in ("trial_1", "last_trial"):
        assert record_keys <= row[part].keys() and record_keys <= row["control"][part].keys()
    assert record_keys <= row["control"]["best_of_k"].keys() and "reflections withheld" in row["control"]["measure"]
    assert [trial["trial"] for trial in row["trials"]] == [1, 2, 3]  # K entries even when chains stop early
    assert row["reflections"].keys() == {"asked", "written", "empty", "at_cap", "cut_to_fit", "not_written_context",
                                         "no_steps", "transcripts_cut"}
    assert (row["reflexion_shown"], row["reflexion_reflection_tokens"], row["split"]) == (3, 128, "dev")
    assert (row["reflections"]["asked"], row["reflections"]["written"]) == (4, 4)  # 2 dev variations x trials 1, 2
    assert row["episodes_played"] == row["control"]["episodes_played"] == 6 and row["per_variation"].keys() == {"4", "5"}
    assert len(sampler.first_messages) == 2 * 3 + 2 * 2  # the control shares trial 1 (the same episodes)
    assert row["control"]["trial_1"] == row["trial_1"]
    json.dumps(row)  # a row of eval.jsonl


def test_the_control_takes_trial_1_only_from_the_same_chains(policy):
    chains = chains_of(policy, ReflectingSampler(policy.tokenizer), variations=(5, 8))
    with pytest.raises(ValueError, match="first_trials: not the trial-1 episodes of these chains"):
        play_chains(policy, ReplayPool(2, unrecorded="fixed"), TASK, (5, 8), FAST, ReflexionSettings(), seed=8,
                    purpose="reflexion-dev", episodes_per_variation=1, reflect=False,
                    sampler=ReflectingSampler(policy.tokenizer), first_trials=[chain.trials[0] for chain in chains])


def test_best_of_k_takes_each_chains_best_trial(policy):
    """Variation 8 is solved at trial 2 (67, 100), variation 5 never (its gold path is not played)."""
    sampler = ReflectingSampler(policy.tokenizer)
    chains = chains_of(policy, sampler, variations=(5, 8))
    record = reflexion_module.arm_record(chains, 3)
    assert record["best_of_k"]["per_variation"]["8"] == 100 and record["trial_1"]["per_variation"]["8"] == 67
    assert record["best_of_k"]["success_rate"] == 0.5 and record["trial_1"]["success_rate"] == 0.0
    assert record["last_trial"]["per_variation"]["8"] == 100 and record["solved_at"] == {"2": 1}
    assert [trial["episodes"] for trial in record["trials"]] == [2, 2, 1] and record["episodes_played"] == 5


def test_the_reflexion_baseline_job_saves_its_row_reads_it_back_and_refuses_other_test_settings(tmp_path, monkeypatch):
    from empo2_lite import jobs
    from empo2_lite.runs import RunDir

    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    samplers = []
    monkeypatch.setattr(reflexion_module, "episode_sampler",
                        lambda policy, config: samplers.append(ReflectingSampler(policy.tokenizer)) or samplers[-1])
    pool = lambda size, config=None: ReplayPool(size, unrecorded="fixed")  # noqa: E731
    task = "identify-life-stages-2"  # test variations 6..9
    row = jobs.baseline("reflexion", task, "cpu-smoke", trials=2, episodes_per_variation=1, make_pool=pool,
                        progress=False)
    run = RunDir.named(f"baseline-reflexion-{task}")
    [saved] = run.read_evals()
    assert (saved["baseline"], saved["measure"], saved["split"], len(saved["trials"])) == ("reflexion", "best of 2 trials",
                                                                                           "test", 2)
    assert saved["per_variation"].keys() == {"6", "7", "8", "9"} and "control" in saved and run.config().baseline == "reflexion"
    assert jobs.baseline("reflexion", task, "cpu-smoke", trials=2, episodes_per_variation=1, make_pool=pool) == row
    assert len(samplers) == 1  # read back, not played again
    with pytest.raises(ConfigError, match=r"played the test split already under other settings \(trials: 2 -> 3\)"):
        jobs.baseline("reflexion", task, "cpu-smoke", trials=3, episodes_per_variation=1, make_pool=pool)
    with pytest.raises(ConfigError, match="reflexion.trials: 0 is not allowed"):
        jobs.baseline("reflexion", task, "cpu-smoke", trials=0, name="other", make_pool=pool)

    # the report and the paper figure: Reflexion under its own label, beside the paper's columns
    from empo2_lite import plots, results

    evals = results.load_evals(results.find_runs(tmp_path))
    report = results.report_markdown(evals, results.paper_table())
    assert "paper Naive | paper Reflexion | paper Retrospex |" in report
    [line] = [line for line in report.splitlines() if line.startswith(f"| {task} | reflexion")]
    assert line.startswith(f"| {task} | reflexion (best of 2 trials) | cpu-smoke |")
    assert line.endswith("| -50.7 | 33.8 | 11.0 |")  # the paper's Naive, Reflexion, Retrospex for this task
    axes = plots.paper_comparison(results.paper_table(), evals, tasks=[task]).axes[0]
    bars = {container.get_label(): container.patches[0].get_facecolor() for container in axes.containers
            if hasattr(container, "patches")}
    assert {"paper: Reflexion", "paper: Retrospex", "paper: Naive", "kit: Reflexion (a tiny random model)"} <= set(bars)
    from matplotlib.colors import to_hex

    assert to_hex(bars["paper: Reflexion"]) == to_hex(bars["kit: Reflexion (a tiny random model)"]) == plots.STYLES["reflexion"].colour.lower()
    assert plots.STYLES["reflexion"].colour != plots.STYLES["memory-only"].colour


def test_reflexion_runs_through_the_default_engine_token_exactly(policy):
    """The tiny model's own episodes and reflections through ``rollout.engine`` (the slot cache):
    reflections are keyed apart from episodes and released, and trial 1 is the same episode,
    token for token, in the arm with reflections and in the control (the same seeds)."""
    from empo2_lite.policy.samplers import episode_sampler

    rollout = RolloutConfig(max_steps=2, max_new_tokens=6, demonstrations=0, temperature=1.0)
    settings = {"trials": 2, "reflection_tokens": 8}
    arms = {}
    for reflect in (True, False):
        sampler = episode_sampler(policy, rollout)
        assert type(sampler).__name__ == "SlotCacheSampler"
        arms[reflect] = play_chains(policy, ReplayPool(2, unrecorded="fixed"), TASK, (5, 8), rollout,
                                    ReflexionSettings(**settings), seed=3, purpose="reflexion-dev",
                                    episodes_per_variation=1, reflect=reflect, sampler=sampler)
        assert not sampler._episodes  # every episode and reflection released
    for with_notes, without in zip(*arms.values()):
        assert [turn.response_ids for turn in with_notes.trials[0].turns] == \
            [turn.response_ids for turn in without.trials[0].turns]
        assert [reflection.finish for reflection in with_notes.reflections] in (["newline"], ["eos"], ["length"])

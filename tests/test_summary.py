"""The statistics of a batch of episodes shared by training, evaluation and the memory loop."""

from __future__ import annotations

import math

import pytest

from empo2_lite.summary import summarize
from empo2_lite.trajectory import Trajectory, Turn, played


def episode(variation: int, score: int, end_reason: str = "completed", turns: list[Turn] = ()) -> Trajectory:
    return Trajectory("find-animal", variation, variation, 0, turns=list(turns), score=score, success=score == 100,
                      final_info={"success_official": score > 70}, end_reason=end_reason)


def turn(tips: int, novelty: float, response_tokens: int, prompt_tokens: int, action: str = "look around",
         finish: str = "newline") -> Turn:
    return Turn(user_message="", tips=("tip",) * tips, response_ids=[1] * response_tokens, logprobs=[0.0] * response_tokens,
                response_text=action, raw_action=action, action=action, reward=0, score=0,
                finish=finish, novelty=novelty, prompt_tokens=prompt_tokens)


def test_standard_error_is_over_per_variation_means():
    played = [episode(6, 100), episode(6, 0), episode(7, -100), episode(7, -100), episode(8, 20), episode(8, 40),
              episode(8, 100, end_reason="env_failure")]  # lost to the environment: counted, not scored
    summary = summarize(played)
    # per-variation means 50, -100, 30 (mean -20/3): squared deviations sum to 39800/3, so the
    # sample variance is 19900/3 and the standard error sqrt(19900/3 / 3) = 47.0225 (not the
    # episodes' pstdev 72.7 / sqrt(6) = 29.7)
    assert summary.per_variation == {"6": 50, "7": -100, "8": 30}
    assert summary.per_variation_success == {"6": 0.5, "7": 0, "8": 0}  # the env failure's 100 is not a success
    assert summary.return_se == pytest.approx(math.sqrt(19900 / 9)) == pytest.approx(47.0225, abs=1e-4)
    assert summary.return_mean == pytest.approx(-20 / 3) and summary.episodes == 6 and summary.return_max == 100
    assert summary.env_failures == 1 and summary.success_rate == pytest.approx(1 / 6)
    assert summary.end_reasons == {"completed": 6, "env_failure": 1}


def test_standard_error_needs_two_variations_and_an_empty_batch_has_no_return():
    assert math.isnan(summarize([episode(6, 100), episode(6, 0)]).return_se)
    empty = summarize([episode(6, 100, end_reason="env_failure")])
    assert empty.episodes == 0 and empty.env_failures == 1
    assert all(math.isnan(value) for value in (empty.return_mean, empty.return_std, empty.return_se, empty.return_max))
    assert (empty.success_rate, empty.steps_mean, empty.tips_shown_mean, empty.novelty_mean) == (0, 0, 0, 0.0)


def test_per_step_means_and_tokens_count_played_episodes_only():
    batch = [episode(0, 10, turns=[turn(2, 1.0, 3, 50), turn(0, 0.5, 5, 80)]), episode(1, 20, turns=[turn(1, 0.0, 4, 60)]),
             episode(1, 0, end_reason="env_failure", turns=[turn(9, 9.0, 99, 999)])]
    summary = summarize(batch)
    assert summary.steps_mean == 1.5 and summary.tips_shown_mean == 1 and summary.novelty_mean == 0.5
    assert (summary.tokens_generated, summary.tokens_prefilled) == (12, 190)


def test_the_evaluation_record_keeps_the_eval_jsonl_fields_in_order():
    record = summarize([episode(6, 100), episode(7, 0)]).evaluation_record()
    assert list(record) == ["episodes", "env_failures", "return_mean", "return_std", "return_se", "success_rate",
                            "success_official_rate", "per_variation", "per_variation_success", "end_reasons",
                            "actions_as_written"]
    assert record["return_std"] == 50 and record["per_variation"] == {"6": 100, "7": 0}
    assert sum(record["end_reasons"].values()) == record["episodes"] + record["env_failures"]


def test_diagnostics_count_wrong_focus_endings_cut_responses_and_response_length():
    focus, look = "focus on red box", "look around"
    batch = [
        episode(0, -100, "failed", [turn(0, 0, 4, 10), turn(0, 0, 6, 10, action=focus)]),  # a wrong focus
        episode(0, -100, "failed", [turn(0, 0, 16, 10, action=look, finish="length")]),  # failed, not by focusing
        episode(1, 0, "max_steps", [turn(0, 0, 16, 10, action=focus, finish="length"), turn(0, 0, 2, 10)]),
        episode(1, 50, "completed", [turn(0, 0, 8, 10, action=focus)]),  # a right focus
        episode(1, -100, "env_failure", [turn(0, 0, 99, 10, action=focus, finish="length")]),  # not played: not counted
    ]
    summary = summarize(batch)
    assert summary.extras["wrong_focus_share"] == 1 / 4  # ScienceWorld's own (env/scienceworld)
    assert summary.length_limit_share == 2 / 6  # of the played episodes' six responses, two hit the limit
    assert summary.response_tokens_mean == (4 + 6 + 16 + 16 + 2 + 8) / 6
    empty = summarize([])
    assert (empty.extras, empty.length_limit_share, empty.response_tokens_mean) == ({}, 0, 0)
    lost = summarize([episode(1, -100, "env_failure")])  # no episode played: the extras are 0, not missing
    assert lost.extras == {"success_official_rate": 0, "wrong_focus_share": 0}


def test_the_environment_extras_are_logged_and_recorded_under_its_names():
    """ScienceWorld's extras: its official criterion (score > 70) in evaluation rows and metrics, the
    wrong-focus share in metrics only; a batch that mixes environments is refused."""
    summary = summarize([episode(6, 100), episode(7, 75, "max_steps"), episode(8, 50, "max_steps")])
    assert summary.extras == {"success_official_rate": 2 / 3, "wrong_focus_share": 0}
    assert summary.evaluation_record()["success_official_rate"] == 2 / 3
    assert "wrong_focus_share" not in summary.evaluation_record()
    assert summary.extra_metrics() == {"charts/success_official_rate": 2 / 3, "diagnostics/wrong_focus_share": 0}


def test_played_drops_exactly_the_episodes_lost_to_the_environment_and_keeps_the_order():
    reasons = ["completed", "env_failure", "failed", "max_steps", "context_limit", "env_failure", None]
    batch = [episode(index, 0, reason) for index, reason in enumerate(reasons)]
    assert [t.variation for t in played(batch)] == [0, 2, 3, 4, 6]
    assert played([]) == [] and played(batch[1:2]) == []

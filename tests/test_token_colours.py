"""The token roles the walkthrough colours: what each update mode reads, trains, masks and strips.

Scripted memory rollouts on recorded ScienceWorld transitions (``replay_pool``, no Java) with the
byte-level tiny model (one token per byte), so the expected counts follow from the text lengths.
"""

from __future__ import annotations

import pytest
import torch

from empo2_lite import prompts
from empo2_lite.algo.modes import Mode
from empo2_lite.algo.update import action_logprobs
from empo2_lite.config import RolloutConfig, UpdateConfig
from empo2_lite.rollout import EpisodeSpec, RetrievalQuery, collect_rollouts
from empo2_lite.lab.token_colours import ROLES, TokenRole, role_counts, tokens_html, update_token_roles
from replay_pool import ReplayPool
from scripted import ScriptedSampler

TIPS = ["open the door first", "the <animal> is outside"]
KEEP_ALL = UpdateConfig(log_delta=-1e9)
MASK_ALL = UpdateConfig(log_delta=0.0)


def tips_on_even_steps(query: RetrievalQuery) -> list[str]:
    return TIPS if query.step % 2 == 0 else []


@pytest.fixture(scope="module")
def rollouts(tiny_byte_model):
    """(policy, memory rollout, plain rollout) of find-animal, 3 scripted steps each."""
    from empo2_lite.config import PolicyConfig
    from empo2_lite.policy import load_policy

    policy = load_policy(PolicyConfig(model=str(tiny_byte_model), lora_rank=4, lora_alpha=8))
    actions = ["look around", "go to kitchen", "look around"]
    pool, config = ReplayPool(1), RolloutConfig(max_steps=3, demonstrations=0)
    [memory] = collect_rollouts(policy, pool, [EpisodeSpec("find-animal", 0, 0, seed=0)], config, retrieve=tips_on_even_steps,
                                sampler=ScriptedSampler(policy, {"animal": list(actions)}), progress=False)
    [plain] = collect_rollouts(policy, pool, [EpisodeSpec("find-animal", 0, 0, seed=0)], config,
                               sampler=ScriptedSampler(policy, {"animal": list(actions)}), progress=False)
    return policy, memory, plain


def action_token_count(trajectory) -> int:
    return sum(trajectory.without_tips[0].action_mask)


def tip_token_count(trajectory) -> int:
    return sum(len(prompts.tip_block(turn.tips).encode()) for turn in trajectory.turns)


def shown_text(roles, *keep) -> str:
    return "".join(item.text for item in roles if item.role in keep)


def test_off_policy_strips_exactly_the_tips_and_trains_every_action_token(rollouts):
    policy, memory, _ = rollouts
    assert [bool(turn.tips) for turn in memory.turns] == [True, False, True]
    roles = update_token_roles(policy, memory, Mode.OFF_POLICY, KEEP_ALL)
    counts = role_counts(roles)
    assert counts["stripped"] == tip_token_count(memory) > 0
    assert counts["tip"] == 0 and counts["masked"] == 0
    assert counts["loss"] == action_token_count(memory)
    kept_text = "".join(item.text for item in roles if item.role != "stripped")
    assert kept_text == policy.tokenizer.decode(memory.without_tips[0].input_ids)
    assert shown_text(roles, "stripped") == "".join(prompts.tip_block(turn.tips) for turn in memory.turns)


def test_on_policy_with_tips_keeps_each_block_as_context_of_its_own_step(rollouts):
    policy, memory, _ = rollouts
    roles = update_token_roles(policy, memory, Mode.ON_POLICY_WITH_TIPS, KEEP_ALL)
    counts = role_counts(roles)
    assert counts["tip"] == tip_token_count(memory) and counts["stripped"] == 0
    assert counts["loss"] == action_token_count(memory)
    assert shown_text(roles, "loss") == "".join(turn.response_text for turn in memory.turns)
    assert shown_text(roles, "tip") == "".join(prompts.tip_block(turn.tips) for turn in memory.turns)
    assert shown_text(roles, "context", "loss") == policy.tokenizer.decode(memory.without_tips[0].input_ids)
    text = "".join(item.text for item in roles)
    for turn in memory.turns:  # each block sits right in front of its own step's message
        assert prompts.tip_block(turn.tips) + turn.user_message in text


def test_masking_moves_action_tokens_from_loss_to_masked(rollouts):
    policy, memory, plain = rollouts
    for trajectory, mode in ((plain, Mode.PLAIN), (memory, Mode.OFF_POLICY), (memory, Mode.ON_POLICY_WITH_TIPS)):
        counts = role_counts(update_token_roles(policy, trajectory, mode, MASK_ALL))
        assert counts["loss"] == 0 and counts["masked"] == action_token_count(trajectory)


def test_token_masking_colours_by_the_current_policy_not_the_sampled_log_probs(rollouts):
    """The scripted sampler recorded old log-probs of -0.25; the random model gives ~-5.6. A
    threshold at the median current log-prob masks about half the actions, each one exactly when
    its current log-prob is below it (keyed on the old log-probs, none would be masked)."""
    policy, _, plain = rollouts
    [packed] = plain.without_tips
    with torch.no_grad():
        [current], _ = action_logprobs(policy, [packed])
    ordered = sorted(current.tolist())
    middle = len(ordered) // 2
    threshold = (ordered[middle - 1] + ordered[middle]) / 2
    assert ordered[middle] - ordered[middle - 1] > 1e-4  # no token sits on the threshold
    assert min(lp for lp, keep in zip(packed.old_logprobs, packed.action_mask) if keep) > threshold  # old: all above
    roles = update_token_roles(policy, plain, Mode.PLAIN, UpdateConfig(log_delta=threshold))
    action_roles = [item.role for item in roles if item.role in ("loss", "masked")]
    assert action_roles == ["loss" if lp >= threshold else "masked" for lp in current.tolist()]
    assert role_counts(roles)["masked"] == middle


def test_a_plain_rollout_has_neither_tips_nor_stripped_tokens(rollouts):
    policy, _, plain = rollouts
    counts = role_counts(update_token_roles(policy, plain, Mode.PLAIN, KEEP_ALL))
    assert counts["tip"] == counts["stripped"] == 0
    assert counts["loss"] == action_token_count(plain)
    assert counts["context"] == len(plain.without_tips[0].input_ids) - counts["loss"]


def test_html_escapes_text_shortens_long_context_and_counts_every_role():
    roles = [TokenRole("x", "context")] * 100 + [TokenRole("<b>", "stripped"), TokenRole("go", "loss"),
                                                 TokenRole("!", "masked"), TokenRole("tip", "tip")]
    page = tokens_html(roles, max_context_run=10)
    assert "&lt;b&gt;" in page and "<b>" not in page
    assert "[... 90 context tokens ...]" in page
    for role, count in zip(ROLES, (100, 1, 1, 1, 1)):
        assert f"{role}: {count}" in page


@pytest.mark.parametrize("with_ids, without_ids, extra", [
    ([1, 0, 2, 3, 0, 9], [1, 0, 9], {2, 3, 4}),      # "a\n" + "[T]\n" + "Y": the block goes where it was inserted
    ([2, 3, 0, 1, 0, 9], [1, 0, 9], {0, 1, 2}),
    ([1, 2, 3], [1, 2, 3], set()),
])
def test_aligned_views_put_the_tip_run_where_it_was_inserted(with_ids, without_ids, extra):
    from empo2_lite.lab.token_colours import align_views

    events = align_views(with_ids, without_ids)
    assert {j for kind, j, _ in events if kind == "with_only"} == extra
    assert [j for _, j, _ in events if j is not None] == list(range(len(with_ids)))
    assert [i for _, _, i in events if i is not None] == list(range(len(without_ids)))
    assert all(with_ids[j] == without_ids[i] for kind, j, i in events if kind == "both")


def test_html_has_one_span_per_run_of_a_role():
    roles = [TokenRole("a", "loss"), TokenRole("b", "loss"), TokenRole("c", "masked"), TokenRole("d", "loss")]
    page = tokens_html(roles)
    assert ">ab</span>" in page and ">c</span>" in page and ">d</span>" in page


def _current_action_logprobs_by_step(policy, trajectory, mode: Mode) -> list[float]:
    """Every action token's current log-prob in step order, each scored in the sample the update
    of ``mode`` reads it in: a tipped step's own with-tips sample (on-policy with tips) or the
    tip-free sequence (off-policy)."""
    [packed] = trajectory.without_tips
    with torch.no_grad():
        [free], _ = action_logprobs(policy, [packed])
    if mode is Mode.OFF_POLICY:
        return free.tolist()
    tipped = [step for step, turn in enumerate(trajectory.turns) if turn.tips]
    own = dict(zip(tipped, trajectory.with_tips[len(trajectory.with_tips) - len(tipped):]))
    by_step, first = [], 0
    for step, turn in enumerate(trajectory.turns):
        length = len(turn.response_ids)
        if step in own:
            with torch.no_grad():
                [scored], _ = action_logprobs(policy, [own[step]])
            by_step += scored.tolist()[-length:]
        else:
            by_step += free.tolist()[first:first + length]
        first += length
    return by_step


def test_tip_modes_mask_each_action_by_its_log_prob_in_the_view_the_update_reads(rollouts):
    """With tips kept, a tipped step's actions are judged by their log-probs with that step's block
    in the prompt; with tips stripped, by their tip-free log-probs. The threshold is chosen where the
    two views disagree on some token, so colouring one mode by the other's view fails."""
    policy, memory, _ = rollouts
    with_tips = _current_action_logprobs_by_step(policy, memory, Mode.ON_POLICY_WITH_TIPS)
    tip_free = _current_action_logprobs_by_step(policy, memory, Mode.OFF_POLICY)
    values = sorted(set(with_tips + tip_free))
    candidates = [(a + b) / 2 for a, b in zip(values, values[1:]) if b - a > 1e-4]
    threshold = max(candidates, key=lambda t: sum((a >= t) != (b >= t) for a, b in zip(with_tips, tip_free)))
    assert sum((a >= threshold) != (b >= threshold) for a, b in zip(with_tips, tip_free)) > 0
    for mode, current in ((Mode.ON_POLICY_WITH_TIPS, with_tips), (Mode.OFF_POLICY, tip_free)):
        roles = update_token_roles(policy, memory, mode, UpdateConfig(log_delta=threshold))
        action_roles = [item.role for item in roles if item.role in ("loss", "masked")]
        assert action_roles == ["loss" if lp >= threshold else "masked" for lp in current], mode

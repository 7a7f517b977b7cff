"""The policy writes its own tips: one sentence per finished episode.

The prompt is the episode itself, token for token, followed by one more user turn. For an episode
played with the full history (the paper's setting) that is the packed tip-free sequence
(``trajectory.without_tips[0]``, the responses exactly as sampled), extended through a copy of its
``ChatTokens`` so the template's append-only check runs and the trajectory's own record is left
untouched; the tip prompt's ids therefore start with the episode's packed ids. The new user turn
holds the final observation, a line with the final score and the request
(``prompts.TIP_WRITING_REQUEST``). Episodes without a packed chat (a history window) or whose
chat ends on an unanswered user turn (context limit, environment failure) are rendered afresh
from their turns, again with the responses as sampled.

Why the sampled responses and not the actions the environment executed after correction: the
tip is the policy's reflection on what it did, so it must see what it wrote; the corrected
actions were never its tokens. Earlier versions re-rendered the chat with the corrected actions.

Why the score line: the paper's prompt asks how close the agent came to finishing without stating
the score, but a 135M-7B model cannot reliably infer its progress from the transcript, and the
memory ranks tips by that score anyway. The kit's end reason (``max_steps`` and so on) is
bookkeeping the agent never sees, so it is not shown.

Memory: every prompt is a whole episode, so episodes are sampled in chunks of
``config.tip_batch_size``, and without per-step logits or log-probs (``with_logprobs=False``):
nothing here is a training sample, and the logits of a 150k vocabulary would cost gigabytes.
Each tip is drawn from its episode's own seed (``seeding.tip_seed``). Answers are sanitised to one trimmed line of at most ``tip_max_words`` words.

Why the closing turn shows the bare observation (``Trajectory.final_observation``), not the episode's
next user message: that message ends with the step request ("Reply with your next command only"),
which the tip request right after it would contradict.

Length: a tip stopped at ``memory.tip_max_new_tokens`` is recorded as such (``WrittenTip.finish`` is
"length"; the trainer counts them, ``memory/tips_truncated``), since a cut tip reads as a broken
sentence in every later prompt that shows it.

Context: an episode never grows past ``rollout.max_context_tokens`` (the rollout ends it first), so a
tip prompt is at most that plus its closing turn, and writing adds ``tip_max_new_tokens``. Loading a
policy for a run that writes tips reserves ``config.sections.TIP_CLOSING_TOKENS`` and the tip on top of the context
(``policy.loading.check_context_fits``). A closing turn longer than the reserve (an unusually long
final observation) could still push a prompt past the model's positions; such a tip is not written
(finish "context_limit", counted as ``memory/tips_skipped_context``) rather than cut, because
cutting the episode would break the prompt's being the episode token for token (and the KV cache's
extension of it), and cutting the closing turn would drop the observation or the request.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from empo2_lite import prompts
from empo2_lite.config import MemoryConfig
from empo2_lite.env.spec import environment_of
from empo2_lite.policy.loading import Policy, position_limit
from empo2_lite.policy.samplers import EpisodeSampler
from empo2_lite.policy.sampling import sample_responses
from empo2_lite.seeding import tip_seed
from empo2_lite.trajectory import ChatTokens, TokenSample, Trajectory, assistant_content


def sanitize_tip(text: str, max_words: int) -> str:
    """One line of at most ``max_words`` words, without surrounding quotes or list markers."""
    for line in text.splitlines():
        cleaned = " ".join(line.split()).strip(" \"'`*-")
        if cleaned:
            words = cleaned.split(" ")
            return " ".join(words[:max_words])
    return ""


def score_line(score: int) -> str:
    """The episode's final score in words (a kit addition, see the module docstring)."""
    return f"You finished this episode with a score of {score} out of 100."


@dataclass(frozen=True)
class WrittenTip:
    """One episode's tip, and how writing it ended."""

    text: str
    """The sanitised tip ("" when none was written)."""
    finish: str
    """The sampler's "newline" or "eos"; "length" when it stopped at ``memory.tip_max_new_tokens``
    (the tip may be cut mid-sentence). No tip: "no_steps" (the episode never acted) or
    "context_limit" (its prompt and ``tip_max_new_tokens`` exceed the model's positions)."""


def closing_message(trajectory: Trajectory) -> str:
    """The user turn that follows the episode: final observation, final score, the request (and
    not the step request that ended the episode's last user message)."""
    return (f"{trajectory.final_observation.strip()}\n\n{score_line(trajectory.score)}\n\n"
            f"{prompts.TIP_WRITING_REQUEST}")


def tip_messages(trajectory: Trajectory, tokenizer) -> list[dict[str, str]]:
    """The tip-free chat rebuilt from the turns (responses as sampled), then the closing message."""
    messages = [{"role": "system", "content": environment_of(trajectory.task).system_prompt}]
    for turn in trajectory.turns:
        messages += [{"role": "user", "content": turn.user_message},
                     {"role": "assistant", "content": assistant_content(turn.response_text, tokenizer)}]
    messages.append({"role": "user", "content": closing_message(trajectory)})
    return messages


def _growable_copy(chat: ChatTokens) -> ChatTokens:
    """A copy of ``chat`` that can take more turns without changing the trajectory's record
    (its sample is the trajectory's packed tip-free view). The tokenizer is shared, not copied."""
    clone = copy.copy(chat)
    clone.messages = list(chat.messages)
    sample = chat.sample
    clone.sample = TokenSample(list(sample.input_ids), list(sample.action_mask), list(sample.old_logprobs),
                               list(sample.steps))
    return clone


def tip_prompt_ids(trajectory: Trajectory, tokenizer) -> list[int]:
    """The ids of the tip-writing prompt: the episode's tip-free tokens, then the closing turn."""
    chat = trajectory.tip_free_chat
    if chat is not None and chat.messages[-1]["role"] == "assistant":
        return _growable_copy(chat).add_user_turn(closing_message(trajectory))
    return tokenizer.apply_chat_template(tip_messages(trajectory, tokenizer), tokenize=True,
                                         add_generation_prompt=True, return_dict=False)


def write_tips(policy: Policy, trajectories: Sequence[Trajectory], config: MemoryConfig,
               sampler: EpisodeSampler | None = None) -> list[WrittenTip]:
    """One tip per trajectory (empty for trajectories without steps, or whose prompt does not fit
    the model), in batches of ``config.tip_batch_size`` episodes.

    With the rollout's ``sampler`` (keyed by ``rollout_id``), a tip extends its episode: with the
    KV cache the model computes only the tokens its cache does not hold (for a plain episode, the
    closing turn and the request). Without, every tip prompt is read in full."""
    tips = [WrittenTip("", "no_steps")] * len(trajectories)
    positions = position_limit(policy.model)
    prompts_ids: dict[int, list[int]] = {}
    for i, trajectory in enumerate(trajectories):
        if trajectory.turns:
            ids = tip_prompt_ids(trajectory, policy.tokenizer)
            if positions is not None and len(ids) + config.tip_max_new_tokens > positions:
                tips[i] = WrittenTip("", "context_limit")
            else:
                prompts_ids[i] = ids
    playable = list(prompts_ids)
    for first in range(0, len(playable), config.tip_batch_size):
        chunk = playable[first: first + config.tip_batch_size]
        batch = [prompts_ids[i] for i in chunk]
        seeds = [tip_seed(trajectories[i].seed) for i in chunk]
        if sampler is None:
            responses = sample_responses(policy, batch, temperature=config.tip_temperature,
                                         max_new_tokens=config.tip_max_new_tokens, with_logprobs=False, seeds=seeds)
        else:
            responses = sampler.sample([trajectories[i].rollout_id for i in chunk], batch, with_logprobs=False,
                                       seeds=seeds, temperature=config.tip_temperature, top_p=1.0,
                                       max_new_tokens=config.tip_max_new_tokens)
        for index, response in zip(chunk, responses):
            text = policy.tokenizer.decode(response.token_ids, skip_special_tokens=True)
            tips[index] = WrittenTip(sanitize_tip(text, config.tip_max_words), response.finish)
    return tips

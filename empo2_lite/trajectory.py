"""Trajectory records, token for token, in two views: with tips and without tips.

Why two views built separately: EMPO²'s off-policy update scores the actions of a memory rollout
under the prompt *without* the tips. Stripping tip text out of a tokenised sequence is fragile
(BPE merges across the boundary, templates that re-order content), so each view is rendered from
its own chat and tokenised on its own; only the model's response tokens are copied, unchanged,
into both. Loss masks cover those response tokens and nothing else.

``ChatTokens`` grows one view turn by turn. With an append-only chat template (ChatML: Qwen2.5,
SmolLM2) the rendered text of the chat after turn k+1 starts with the text after turn k, so the
ids the model was fed at every step are a prefix of one packed sequence per trajectory: the update
costs one forward per trajectory instead of one per step. The text-prefix check runs at every turn
and raises :class:`TemplateError` when a template breaks it (then use a history window, which
makes one sample per turn).

Records are per turn (prompt, response, masks, old log-probs, rewards, ids of rollout, task and
group) so that they can be exported to multi-GPU engines later (verl's agent loop, TRL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def assistant_content(response_text: str, tokenizer) -> str:
    """The assistant message content of a response: its closing EOS belongs to the template."""
    eos = tokenizer.eos_token or ""
    return response_text[: -len(eos)] if eos and response_text.endswith(eos) else response_text


def append_history(history: str, action: str, observation: str) -> str:
    """The plain-text episode history after ``action`` led to ``observation``."""
    return f"{history}\n> {action}\n{observation.strip()}"


class TemplateError(RuntimeError):
    """The chat template is not append-only, so a trajectory cannot be packed into one sequence."""


@dataclass
class TokenSample:
    """One training sequence of a view: ids, a mask over action tokens, old log-probs aligned."""

    input_ids: list[int] = field(default_factory=list)
    action_mask: list[int] = field(default_factory=list)
    """1 on tokens the policy produced (they get a loss), 0 on everything else."""
    old_logprobs: list[float] = field(default_factory=list)
    """Log-prob of each action token (0.0 elsewhere): as the sampler recorded it, until the
    ``old_logprobs`` phase of an iteration replaces it by the update's own forward pass."""
    steps: list[int] = field(default_factory=list)
    """The episode step of each response (run of action tokens) in order: a packed episode holds
    steps 0..n-1, a with-tips sample its own step. Advantages are given per step (one per action),
    and this is how a sample's responses find theirs."""

    def copy(self) -> "TokenSample":
        """An independent copy (its lists are new)."""
        return TokenSample(list(self.input_ids), list(self.action_mask), list(self.old_logprobs), list(self.steps))

    def action_ids(self) -> list[int]:
        """The action tokens in order."""
        return [token for token, keep in zip(self.input_ids, self.action_mask) if keep]

    def extend(self, ids: list[int], is_action: bool, logprobs: list[float] | None = None,
               step: int | None = None) -> None:
        """Append ``ids``; action tokens carry their sampling log-probs and are the response to
        episode step ``step`` (by default the next one: a chat holds one response per step)."""
        self.input_ids += ids
        self.action_mask += [int(is_action)] * len(ids)
        self.old_logprobs += list(logprobs) if logprobs is not None else [0.0] * len(ids)
        if is_action:
            self.steps.append(len(self.steps) if step is None else step)


class ChatTokens:
    """A chat rendered incrementally with a tokenizer's template, kept as exact token ids."""

    def __init__(self, tokenizer, system_prompt: str) -> None:
        self.tokenizer = tokenizer
        self.messages: list[dict[str, str]] = [{"role": "system", "content": system_prompt}]
        self.text = ""
        self.sample = TokenSample()

    def add_user_turn(self, content: str) -> list[int]:
        """Append a user message and the assistant generation prompt; return the prompt ids."""
        rendered, delta_ids = self._render_user_turn(content)
        self.messages.append({"role": "user", "content": content})
        self.sample.extend(delta_ids, is_action=False)
        self.text = rendered
        return list(self.sample.input_ids)

    def peek_user_turn(self, content: str) -> list[int]:
        """The prompt ids ``add_user_turn(content)`` would return, without adding the turn: the
        chat so far, kept token for token, and this one message (a step's tip block is shown this
        way, at its own step only)."""
        _, delta_ids = self._render_user_turn(content)
        return self.sample.input_ids + delta_ids

    def _render_user_turn(self, content: str) -> tuple[str, list[int]]:
        """The chat's text with a user message and the generation prompt added, and the ids of what it adds."""
        rendered = self.tokenizer.apply_chat_template([*self.messages, {"role": "user", "content": content}],
                                                      tokenize=False, add_generation_prompt=True)
        if not rendered.startswith(self.text):
            raise TemplateError(
                "the chat template re-renders earlier turns differently (it is not append-only), so the "
                "episode cannot be packed into one sequence; set rollout.history_window to a number of turns"
            )
        return rendered, self.tokenizer(rendered[len(self.text):], add_special_tokens=False).input_ids

    def add_response(self, token_ids: list[int], text: str, logprobs: list[float]) -> None:
        """Append the model's response tokens exactly as sampled."""
        self.messages.append({"role": "assistant", "content": assistant_content(text, self.tokenizer)})
        self.text += text
        self.sample.extend(token_ids, is_action=True, logprobs=logprobs)


@dataclass
class Turn:
    """One step: what the agent was told, what it produced and what the environment did."""

    user_message: str
    """The user message without tips (the no-tip view's content)."""
    tips: tuple[str, ...]
    """Tips shown in this step's user message in the with-tips view (at this step only)."""
    response_ids: list[int]
    logprobs: list[float]
    """Sampling log-probs of ``response_ids`` under the prompt the model saw (with tips)."""
    response_text: str
    raw_action: str
    """The first line of the response, as sent to the environment."""
    action: str
    """The action ScienceWorld executed (after correction)."""
    reward: int
    score: int
    finish: str
    """How sampling stopped: newline, eos or length."""
    history: str = ""
    """The episode so far as plain text when this step began (the memory's retrieval query and
    the key under which this step's tip is stored)."""
    observation: str = ""
    """The observation this step reached, as ScienceWorld gave it (what novelty scores)."""
    novelty: float = 0.0
    """Intrinsic novelty reward of the state this step reached (1/n; 0 when not computed; set by
    ``rollout.pay_novelty`` after the last wave)."""
    prompt_tokens: int = 0
    """Length of the prompt the model was fed at this step (with tips), for token accounting."""
    prompt_tokens_computed: int = 0
    """Of those, the tokens the model computed at this step (all of them without the KV cache;
    with it, only those its cache of the episode did not hold)."""
    tips_dropped: int = 0
    """Tips retrieved for this step that its block budget (``rollout.tip_block_tokens``) left out."""
    corrected: bool = False
    """Whether the action correction replaced the written line by the closest valid action
    (``StepResult.info["corrected"]``); otherwise ScienceWorld executed it as written (after the
    adapter's normalisation of whitespace, surrounding punctuation and case, and its answer to an
    "Ambiguous request", which keeps the action the model named)."""


@dataclass
class Trajectory:
    """One episode with both token views."""

    task: str
    variation: int
    group_id: int
    """Rollouts of the same task variation in one iteration share a group (GRPO)."""
    rollout_id: int
    seed: int = 0
    """The episode's seed (``seeding.episode_seed``): every token of its actions and tip is drawn from it."""
    turns: list[Turn] = field(default_factory=list)
    with_tips: list[TokenSample] = field(default_factory=list)
    """What the model saw, for on-policy updates with tips. Full history: the packed tip-free
    sequence, its action mask cleared on the turns that showed tips, then one sample per such turn
    (its prompt with the step's tip block, its response); so one sample when no tip was shown.
    History window: one sample per turn."""
    without_tips: list[TokenSample] = field(default_factory=list)
    start_score: int = 0
    score: int = 0
    success: bool = False
    final_info: dict[str, Any] = field(default_factory=dict)
    """The last step's ``StepResult.info``: what the environment's summary extras read (ScienceWorld:
    ``success_official``)."""
    end_reason: str | None = None
    """completed, failed, max_steps, context_limit or env_failure."""
    error: str | None = None
    """The environment error when ``end_reason`` is env_failure (the trajectory is not trained on)."""
    final_message: str = ""
    """The observation after the last step, as the next user message would have shown it."""
    final_observation: str = ""
    """The observation after the last step, as ScienceWorld gave it (the tip prompt shows it)."""
    task_description: str = ""
    """The task as ScienceWorld stated it at the start (a Reflexion reflection prompt shows it)."""
    tip: str | None = None
    """The tip the policy wrote after this episode (None when no tip was asked for)."""
    tip_finish: str | None = None
    """How writing the tip ended (``memory.tips.WrittenTip.finish``): "length" is a tip cut at
    ``memory.tip_max_new_tokens``, "context_limit" one not written; None when no tip was asked for."""
    kv_cache_peak_bytes: int = 0
    """The largest the episode's KV cache grew (0 without the cache)."""
    tip_free_chat: ChatTokens | None = field(default=None, repr=False, compare=False)
    """The tip-free view's chat, kept so the tip prompt can extend it (full history only)."""

    @property
    def episode_return(self) -> int:
        """Extrinsic return: the final score, in [-100, 100]."""
        return self.score

    @property
    def used_tips(self) -> bool:
        """Whether any step showed tips."""
        return any(turn.tips for turn in self.turns)

    def view(self, with_tips: bool) -> list[TokenSample]:
        """The samples of one view."""
        return self.with_tips if with_tips else self.without_tips


def played(trajectories: Sequence[Trajectory]) -> list[Trajectory]:
    """The episodes that were played to an end: those lost to an environment failure are never
    trained on, written to memory or counted in returns."""
    return [t for t in trajectories if t.end_reason != "env_failure"]

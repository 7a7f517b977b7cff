"""The policy writes its own tips: one sentence per finished episode.

After an episode, the whole tip-free chat is replayed to the policy with one more user message:
the final observation, the final score and the tip-writing request (``prompts.TIP_WRITING_REQUEST``).
The answers of a batch of episodes are sampled together, then sanitised to one trimmed line of at
most ``tip_max_words`` words. Tip writing is not a training sample: nothing here is recorded for
the update.
"""

from __future__ import annotations

from collections.abc import Sequence

from empo2_lite import prompts
from empo2_lite.config import MemoryConfig
from empo2_lite.policy.loading import Policy
from empo2_lite.policy.sampling import sample_responses
from empo2_lite.trajectory import Trajectory


def sanitize_tip(text: str, max_words: int) -> str:
    """One line of at most ``max_words`` words, without surrounding quotes or list markers."""
    for line in text.splitlines():
        cleaned = " ".join(line.split()).strip(" \"'`*-")
        if cleaned:
            words = cleaned.split(" ")
            return " ".join(words[:max_words])
    return ""


def tip_messages(trajectory: Trajectory) -> list[dict[str, str]]:
    """The tip-free chat of ``trajectory`` followed by the tip-writing request."""
    messages = [{"role": "system", "content": prompts.SYSTEM_PROMPT}]
    for turn in trajectory.turns:
        messages += [{"role": "user", "content": turn.user_message},
                     {"role": "assistant", "content": turn.action}]
    outcome = f"{trajectory.final_message.strip()}\n\nThe episode ended ({trajectory.end_reason}) with score {trajectory.score} out of 100."
    messages.append({"role": "user", "content": f"{outcome}\n\n{prompts.TIP_WRITING_REQUEST}"})
    return messages


def write_tips(policy: Policy, trajectories: Sequence[Trajectory], config: MemoryConfig) -> list[str]:
    """One sanitised tip per trajectory ("" for trajectories without steps), sampled in one batch."""
    tips = [""] * len(trajectories)
    playable = [i for i, trajectory in enumerate(trajectories) if trajectory.turns]
    if not playable:
        return tips
    prompts_ids = [policy.tokenizer.apply_chat_template(tip_messages(trajectories[i]), tokenize=True,
                                                        add_generation_prompt=True, return_dict=False)
                   for i in playable]
    responses = sample_responses(policy, prompts_ids, temperature=config.tip_temperature,
                                 max_new_tokens=config.tip_max_new_tokens)
    for index, response in zip(playable, responses):
        text = policy.tokenizer.decode(response.token_ids, skip_special_tokens=True)
        tips[index] = sanitize_tip(text, config.tip_max_words)
    return tips

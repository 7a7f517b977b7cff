"""Batched sampling: exact tokens, log-probs that match a recomputation, and per-sequence stops."""

from __future__ import annotations

import torch

from empo2_lite.policy.sampling import _newline_token_ids, left_pad, sample_responses


def recomputed_logprobs(policy, prompt: list[int], response: list[int], temperature: float) -> list[float]:
    """Log-probs of ``response`` after ``prompt`` from one unpadded forward pass."""
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logits = policy.model(ids).logits[0, len(prompt) - 1: -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response)[:, None]).squeeze(-1).tolist()


def test_logprobs_match_an_unpadded_recomputation(byte_policy):
    tokenizer = byte_policy.tokenizer
    prompts = [tokenizer(text, add_special_tokens=False).input_ids for text in ("look around", "go to the kitchen now", "x")]
    torch.manual_seed(0)
    responses = sample_responses(byte_policy, prompts, temperature=0.7, max_new_tokens=6)
    for prompt, response in zip(prompts, responses):
        assert 1 <= len(response.token_ids) <= 6 and len(response.logprobs) == len(response.token_ids)
        expected = recomputed_logprobs(byte_policy, prompt, response.token_ids, 0.7)
        assert torch.allclose(torch.tensor(response.logprobs), torch.tensor(expected), atol=1e-4)
        assert response.text == tokenizer.decode(response.token_ids)


def test_same_seed_same_samples(byte_policy):
    prompt = [byte_policy.tokenizer("open door", add_special_tokens=False).input_ids]
    torch.manual_seed(3)
    first = sample_responses(byte_policy, prompt, max_new_tokens=8)
    torch.manual_seed(3)
    assert sample_responses(byte_policy, prompt, max_new_tokens=8) == first


def boost(policy, token_id: int):
    """Make ``token_id`` overwhelmingly likely by adding to its output logit (a forward hook)."""
    def hook(module, inputs, output):
        output = output.clone()
        output[..., token_id] += 100.0
        return output
    return policy.model.get_output_embeddings().register_forward_hook(hook)


def test_a_newline_stops_the_response_and_is_kept(byte_policy):
    newline = byte_policy.tokenizer("\n", add_special_tokens=False).input_ids[0]
    assert newline in _newline_token_ids(byte_policy.tokenizer)
    handle = boost(byte_policy, newline)
    try:
        [response] = sample_responses(byte_policy, [[65, 66]], max_new_tokens=8)
    finally:
        handle.remove()
    assert response.token_ids == [newline] and response.finish == "newline"


def test_eos_stops_the_response_and_length_caps_it(byte_policy):
    eos = byte_policy.tokenizer.eos_token_id
    handle = boost(byte_policy, eos)
    try:
        [response] = sample_responses(byte_policy, [[65, 66]], max_new_tokens=8)
    finally:
        handle.remove()
    assert response.token_ids == [eos] and response.finish == "eos"
    letter = byte_policy.tokenizer("a", add_special_tokens=False).input_ids[0]
    handle = boost(byte_policy, letter)
    try:
        [response] = sample_responses(byte_policy, [[65, 66]], max_new_tokens=5)
    finally:
        handle.remove()
    assert response.token_ids == [letter] * 5 and response.finish == "length"


def test_left_padding():
    ids, mask = left_pad([[1, 2, 3], [4]], pad_id=0, device="cpu")
    assert ids.tolist() == [[1, 2, 3], [0, 0, 4]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]

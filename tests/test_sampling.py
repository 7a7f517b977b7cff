"""Batched sampling: exact tokens, log-probs that match a recomputation, per-sequence stops, and
sampling from exactly the recorded policy whatever generation defaults the checkpoint ships."""

from __future__ import annotations

import json

import pytest
import torch

from empo2_lite.policy.loading import causal_lm
from empo2_lite.policy.sampling import _newline_token_ids, left_pad, sample_responses
from empo2_lite.policy.tiny import byte_tokenizer


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


@pytest.fixture(scope="module")
def opinionated_model(tmp_path_factory):
    """A tiny model whose saved generation defaults would reshape sampling if they leaked in.

    Qwen2.5-Instruct ships a repetition penalty, top-k, top-p, a temperature and two end ids; the
    n-gram ban, suppressed tokens and minimum length cover fields whose neutral value is "unset",
    which a passed config cannot override by value.
    """
    from empo2_lite.policy.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-opinionated"), "byte")
    tokenizer = byte_tokenizer()
    end_ids = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    path = folder / "generation_config.json"
    saved = json.loads(path.read_text())
    saved.update(do_sample=True, temperature=0.3, top_k=3, top_p=0.5, repetition_penalty=1.5, no_repeat_ngram_size=1,
                 suppress_tokens=tokenizer("e", add_special_tokens=False).input_ids, min_new_tokens=4,
                 eos_token_id=end_ids)
    path.write_text(json.dumps(saved))
    return folder


def load_tiny(folder):
    from empo2_lite.config import PolicyConfig
    from empo2_lite.policy import load_policy

    return load_policy(PolicyConfig(model=str(folder), lora_rank=4, lora_alpha=8))


def spy_on_generate(policy, monkeypatch, **extra) -> list:
    """Record generate's keyword arguments and output; ``extra`` asks it for more outputs."""
    real, calls = policy.model.generate, []

    def generate(*args, **kwargs):
        out = real(*args, **{**kwargs, **extra})
        calls.append((kwargs, out))
        return out
    monkeypatch.setattr(policy.model, "generate", generate)
    return calls


def test_the_seeded_draw_sees_the_raw_logits_and_decides_every_token(opinionated_model, monkeypatch):
    """The checkpoint ships a repetition penalty, top-k, suppressed tokens...: none of them may reach
    the scores our draw samples from (they are the raw logits), and what generate keeps is the
    drawn token (greedy over scores that hold only it)."""
    from empo2_lite.policy import sampling

    policy = load_tiny(opinionated_model)
    assert policy.model.generation_config.repetition_penalty == 1.5  # the checkpoint's defaults are loaded
    calls = spy_on_generate(policy, monkeypatch, output_scores=True, output_logits=True)
    seen, real_call = [], sampling._SeededDraw.__call__
    monkeypatch.setattr(sampling._SeededDraw, "__call__",
                        lambda self, ids, scores: seen.append(scores.clone()) or real_call(self, ids, scores))
    prompts = [policy.tokenizer(text, add_special_tokens=False).input_ids for text in ("eeee aaaa", "look")]
    responses = sample_responses(policy, prompts, temperature=0.7, top_p=1.0, max_new_tokens=12, seeds=[1, 2])
    [(_, out)] = calls
    assert len(seen) == len(out.scores) == len(out.logits) >= 2
    for incoming, logits, kept, token in zip(seen, out.logits, out.scores, out.sequences[:, -len(out.scores):].T):
        assert torch.allclose(incoming, logits.float(), atol=1e-5)  # nothing reshaped them before the draw
        assert (kept.argmax(-1) == token).all() and torch.isinf(kept).sum(-1).eq(kept.shape[-1] - 1).all()
    assert all(len(r.logprobs) == len(r.token_ids) for r in responses)


def test_sampling_stops_at_every_end_id_of_the_checkpoint(opinionated_model):
    policy = load_tiny(opinionated_model)
    second_end = policy.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    assert policy.tokenizer.eos_token_id != second_end in policy.model.generation_config.eos_token_id
    handle = boost(policy, second_end)
    try:
        [response] = sample_responses(policy, [[65, 66]], max_new_tokens=8)
    finally:
        handle.remove()
    assert response.token_ids == [second_end] and response.finish == "eos"


def test_sampling_stops_at_the_chatml_end_of_turn(byte_policy):
    """A tokenizer whose EOS is the end of text (Qwen2.5 base) still ends a turn at <|im_end|>."""
    end_of_text, end_of_turn = (byte_policy.tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>"))
    byte_policy.tokenizer.eos_token = "<|endoftext|>"
    byte_policy.model.generation_config.eos_token_id = end_of_text
    handle = boost(byte_policy, end_of_turn)
    try:
        [response] = sample_responses(byte_policy, [[65, 66]], max_new_tokens=8)
    finally:
        handle.remove()
    assert response.token_ids == [end_of_turn] and response.finish == "eos"


def test_logprobs_can_be_skipped(byte_policy, monkeypatch):
    """Callers that discard log-probs (tip writing) must not make generate keep every step's logits."""
    calls = spy_on_generate(byte_policy, monkeypatch)
    torch.manual_seed(0)
    [response] = sample_responses(byte_policy, [[65, 66]], max_new_tokens=4, with_logprobs=False)
    [(kwargs, _)] = calls
    assert not kwargs.get("output_logits") and not kwargs["generation_config"].output_logits
    assert response.logprobs == [] and 1 <= len(response.token_ids) <= 4


def test_causal_lm_unwraps_the_lora_wrapper_and_leaves_a_bare_model_alone(opinionated_model):
    policy = load_tiny(opinionated_model)
    inner = causal_lm(policy.model)
    assert inner is policy.model.get_base_model() and not hasattr(inner, "get_base_model")
    assert causal_lm(inner) is inner and inner.generation_config.eos_token_id is not None

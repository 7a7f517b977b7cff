"""KVCacheSampler: exactly what ``sample_responses`` and a full recompute give, across lock-step
episodes of different lengths, while feeding only each step's new tokens; cropping, overrides, release."""

from __future__ import annotations

import pytest
import torch

from empo2_lite.algo.update import action_logprobs
from empo2_lite.config import PolicyConfig
from empo2_lite.policy import load_policy
from empo2_lite.policy.kv_sampler import KVCacheSampler
from empo2_lite.policy.sampling import sample_responses
from empo2_lite.trajectory import TokenSample

FIRST_MESSAGES = ("Boil water.", "You are in the kitchen. Find the stove and turn it on.", "Eat the red apple.")
OBSERVATIONS = ("You see a fridge.", "The door is open. You enter the hallway and see a painting.", "Nothing happens.",
                "It is too dark to see.")


@pytest.fixture(scope="module")
def smollm2_policy():
    """The embedded SmolLM2-135M with a LoRA adapter (the peft path), loaded once for the module."""
    return load_policy(PolicyConfig(model="embedded:smollm2-135m-instruct", lora_rank=4, lora_alpha=8))


def first_prompt(tokenizer, message: str) -> list[int]:
    chat = [{"role": "system", "content": "You play a text game. Answer with one action."},
            {"role": "user", "content": message}]
    return tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=True, return_dict=False)


def next_turn(tokenizer, observation: str) -> list[int]:
    """What the rollout appends after a response: end of turn, the observation, a new assistant turn."""
    text = f"<|im_end|>\n<|im_start|>user\n{observation}<|im_end|>\n<|im_start|>assistant\n"
    return tokenizer(text, add_special_tokens=False).input_ids


def play_lockstep(policy, sampler: KVCacheSampler, steps: int, check, ends_after: dict[int, int] | None = None,
                  **overrides) -> dict[int, list[int]]:
    """Play 3 episodes of different lengths in lock-step with ``sampler``; ``check(keys, prompts,
    responses)`` runs at every step. Episode k ends (and is released) after step ``ends_after[k]``."""
    tokenizer, ends_after = policy.tokenizer, ends_after or {}
    prompts = {k: first_prompt(tokenizer, message) for k, message in enumerate(FIRST_MESSAGES)}
    for step in range(steps):
        keys = list(prompts)
        responses = sampler.sample(keys, [prompts[k] for k in keys], **overrides)
        check(keys, [prompts[k] for k in keys], responses)
        for key, response in zip(keys, responses):
            if ends_after.get(key) == step:
                sampler.release(key)
                del prompts[key]
            else:
                prompts[key] = prompts[key] + response.token_ids + next_turn(tokenizer, OBSERVATIONS[(key + step) % 4])
    return prompts


def full_forward_logprobs(policy, prompt: list[int], response: list[int], temperature: float) -> list[float]:
    """log softmax(logits / T) of ``response`` after ``prompt``, one unpadded forward, no cache."""
    with torch.no_grad():
        logits = policy.model(torch.tensor([prompt + response], device=policy.device)).logits
    logits = logits[0, len(prompt) - 1: -1].float() / temperature
    return torch.log_softmax(logits, -1).gather(-1, torch.tensor(response, device=policy.device)[:, None]).squeeze(-1).tolist()


def assert_same_as_uncached(policy, max_new_tokens: int):
    """A ``check`` comparing every step with greedy ``sample_responses`` on the full prompts."""
    def check(keys, prompts, responses):
        expected = sample_responses(policy, prompts, temperature=0, max_new_tokens=max_new_tokens)
        for got, want in zip(responses, expected):
            assert (got.token_ids, got.finish, got.text) == (want.token_ids, want.finish, want.text)
            assert torch.allclose(torch.tensor(got.logprobs), torch.tensor(want.logprobs), atol=1e-4)
    return check


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
@pytest.mark.parametrize("lora_rank", [0, 4])
def test_greedy_lockstep_matches_uncached_sampling_tiny(tiny_smollm2_model, attention, lora_rank):
    policy = load_policy(PolicyConfig(model=str(tiny_smollm2_model), lora_rank=lora_rank, lora_alpha=8))
    base = policy.model.get_base_model() if lora_rank else policy.model
    base.set_attn_implementation(attention)
    sampler = KVCacheSampler(policy, temperature=0, max_new_tokens=6)
    left = play_lockstep(policy, sampler, steps=4, check=assert_same_as_uncached(policy, 6), ends_after={1: 1})
    assert sorted(left) == [0, 2] and 1 not in sampler


@pytest.mark.slow
def test_greedy_lockstep_matches_uncached_sampling_smollm2(smollm2_policy):
    """The real model stops rows at different steps (end of turn, newline) inside one batch."""
    sampler = KVCacheSampler(smollm2_policy, temperature=0, max_new_tokens=6)
    play_lockstep(smollm2_policy, sampler, steps=2, check=assert_same_as_uncached(smollm2_policy, 6), ends_after={2: 0})


def assert_logprobs_match_a_full_recompute(policy, temperature: float, top_p: float) -> None:
    """Play seeded sampled episodes; every step's log-probs equal a fresh uncached forward's."""
    sampler = KVCacheSampler(policy, temperature=temperature, top_p=top_p, max_new_tokens=6)

    def check(keys, prompts, responses):
        for prompt, response in zip(prompts, responses):
            expected = full_forward_logprobs(policy, prompt, response.token_ids, temperature)
            assert torch.allclose(torch.tensor(response.logprobs), torch.tensor(expected), atol=1e-4)

    torch.manual_seed(0)
    play_lockstep(policy, sampler, steps=3, check=check)


@pytest.mark.slow
def test_sampled_logprobs_match_a_full_recompute_smollm2(smollm2_policy):
    assert_logprobs_match_a_full_recompute(smollm2_policy, temperature=1.0, top_p=1.0)


def test_top_p_sampled_logprobs_match_a_full_recompute_tiny(tiny_smollm2_model):
    policy = load_policy(PolicyConfig(model=str(tiny_smollm2_model), lora_rank=4, lora_alpha=8))
    assert_logprobs_match_a_full_recompute(policy, temperature=0.7, top_p=0.9)


def test_same_seed_samples_what_sample_responses_samples(byte_policy):
    """One multinomial draw over the batch per step, as generate does: same seed, same tokens."""
    tokenizer = byte_policy.tokenizer
    sampler = KVCacheSampler(byte_policy, temperature=0.7, top_p=0.9, max_new_tokens=6)
    prompts = [first_prompt(tokenizer, message) for message in FIRST_MESSAGES]
    for step in range(3):
        torch.manual_seed(step)
        got = sampler.sample([0, 1, 2], prompts)
        torch.manual_seed(step)
        want = sample_responses(byte_policy, prompts, temperature=0.7, top_p=0.9, max_new_tokens=6)
        assert [r.token_ids for r in got] == [r.token_ids for r in want]
        prompts = [p + r.token_ids + next_turn(tokenizer, OBSERVATIONS[k]) for k, (p, r) in enumerate(zip(prompts, got))]


def test_packed_episode_logprobs_match_the_update(byte_policy):
    """The update scores a whole episode as one packed sequence; the cached log-probs agree with it."""
    sampler = KVCacheSampler(byte_policy, temperature=1.0, max_new_tokens=5)
    samples = {k: TokenSample() for k in range(3)}

    def check(keys, prompts, responses):
        for key, prompt, response in zip(keys, prompts, responses):
            sample = samples[key]
            sample.extend(prompt[len(sample.input_ids):], is_action=False)
            sample.extend(response.token_ids, is_action=True, logprobs=response.logprobs)

    torch.manual_seed(1)
    play_lockstep(byte_policy, sampler, steps=3, check=check)
    with torch.no_grad():
        current, _ = action_logprobs(byte_policy, list(samples.values()), temperature=1.0)
    for sample, logprobs in zip(samples.values(), current):
        old = torch.tensor([lp for lp, keep in zip(sample.old_logprobs, sample.action_mask) if keep])
        assert torch.allclose(old, logprobs.cpu(), atol=1e-4)


def test_only_new_tokens_are_computed(byte_policy):
    """Each step computes its new user turn plus the previous response's last token, nothing else."""
    sampler = KVCacheSampler(byte_policy, temperature=0, max_new_tokens=4)
    expected_computed = 0
    previous: dict[int, list[int]] = {}

    def check(keys, prompts, responses):
        nonlocal expected_computed
        for key, prompt, response in zip(keys, prompts, responses):
            expected_computed += len(prompt) - len(previous.get(key, [])) + (1 if key in previous else 0)
            previous[key] = prompt + response.token_ids
            assert sampler.cached_tokens(key) == prompt + response.token_ids[:-1]

    play_lockstep(byte_policy, sampler, steps=4, check=check)
    stats = sampler.stats
    assert stats["prompt_tokens_computed"] == expected_computed
    assert stats["prompt_tokens_computed"] * 2 < stats["prompt_tokens_total"]
    assert stats["generated_tokens"] == 3 * 4 * 4


def test_a_prompt_that_leaves_the_cached_tokens_is_cropped_to_the_common_prefix(byte_policy):
    tokenizer = byte_policy.tokenizer
    sampler = KVCacheSampler(byte_policy, temperature=0, max_new_tokens=5)
    prompt = tokenizer("go to the kitchen, then open the fridge", add_special_tokens=False).input_ids
    [first] = sampler.sample(["a"], [prompt])
    changed = list(prompt)
    changed[10] = tokenizer("X", add_special_tokens=False).input_ids[0]
    for new_prompt, recomputed in ((changed + first.token_ids, len(changed) - 10 + len(first.token_ids)),
                                   (changed[:20], 1)):
        before = sampler.stats["prompt_tokens_computed"]
        [got] = sampler.sample(["a"], [new_prompt])
        [want] = sample_responses(byte_policy, [new_prompt], temperature=0, max_new_tokens=5)
        assert got.token_ids == want.token_ids
        assert torch.allclose(torch.tensor(got.logprobs), torch.tensor(want.logprobs), atol=1e-4)
        assert sampler.stats["prompt_tokens_computed"] - before == recomputed
        assert sampler.cached_tokens("a") == new_prompt + got.token_ids[:-1]


def test_per_call_overrides_extend_an_episode_for_a_tip(byte_policy):
    """Tip writing: the same episode, another temperature and length, no log-probs, then release."""
    tokenizer = byte_policy.tokenizer
    sampler = KVCacheSampler(byte_policy, temperature=1.0, max_new_tokens=6)
    prompt = tokenizer("look around", add_special_tokens=False).input_ids
    [action] = sampler.sample(["episode"], [prompt])
    tip_prompt = prompt + action.token_ids + tokenizer(" write a tip:", add_special_tokens=False).input_ids
    [tip] = sampler.sample(["episode"], [tip_prompt], with_logprobs=False, temperature=0, max_new_tokens=3)
    [want] = sample_responses(byte_policy, [tip_prompt], temperature=0, max_new_tokens=3, with_logprobs=False)
    assert tip.token_ids == want.token_ids and tip.logprobs == [] and len(tip.token_ids) <= 3
    assert sampler.release("episode") > 0 and "episode" not in sampler


def test_release_frees_the_cache_and_peak_bytes_are_counted(byte_policy):
    """A released key starts over; batched with a cached one, both stay exact."""
    tokenizer = byte_policy.tokenizer
    sampler = KVCacheSampler(byte_policy, temperature=0, max_new_tokens=4)
    prompts = [tokenizer(text, add_special_tokens=False).input_ids for text in ("open door", "look at the table")]
    sampler.sample(["a", "b"], prompts)
    config = byte_policy.model.get_base_model().config
    per_token = config.num_hidden_layers * 2 * config.num_key_value_heads * (config.hidden_size // config.num_attention_heads) * 4
    peak = sampler.peak_cache_bytes("b")
    assert peak == len(sampler.cached_tokens("b")) * per_token
    assert sampler.stats["peak_cache_bytes"] == peak
    assert sampler.release("b") == peak and sampler.release("b") == 0
    assert "b" not in sampler and "a" in sampler
    with pytest.raises(KeyError):
        sampler.cached_tokens("b")
    extended = [prompts[0] + sampler.cached_tokens("a")[len(prompts[0]):] + [65, 66, 10], prompts[1]]
    got = sampler.sample(["a", "b"], extended)
    want = sample_responses(byte_policy, extended, temperature=0, max_new_tokens=4)
    assert [r.token_ids for r in got] == [r.token_ids for r in want]
    assert sampler.cached_tokens("b") == prompts[1] + got[1].token_ids[:-1]


def test_model_mode_and_gradients_are_left_alone(byte_policy):
    byte_policy.model.train()
    sampler = KVCacheSampler(byte_policy, max_new_tokens=3)
    sampler.sample([0], [[65, 66, 67]])
    assert byte_policy.model.training
    assert all(t.grad_fn is None for t in sampler._episodes[0].keys)


def test_bad_batches_are_refused(byte_policy):
    sampler = KVCacheSampler(byte_policy)
    assert sampler.sample([], []) == []
    with pytest.raises(ValueError, match="once per call"):
        sampler.sample([1, 1], [[65], [66]])
    with pytest.raises(ValueError, match="at least one token"):
        sampler.sample([1], [[]])


def test_candidates_are_what_sample_responses_draws_from_their_seeds_and_only_new_tokens_are_fed(byte_policy):
    """Retrospex's candidates: one prefill per episode, then per candidate the tokens and log-probs
    ``sample_responses`` gives on the full prompt with that candidate's seed; the next step feeds only
    the played candidate and its turn."""
    policy = byte_policy
    tokenizer = policy.tokenizer
    sampler = KVCacheSampler(policy, temperature=0.7, top_p=0.9, max_new_tokens=5)
    prompts = [first_prompt(tokenizer, message) for message in FIRST_MESSAGES[:2]]
    for step in range(3):
        seeds = [[1000 * step + 10 * episode + j for j in range(4)] for episode in range(2)]
        before = [len(sampler.cached_tokens(k)) if k in sampler else 0 for k in (0, 1)]
        drawn = sampler.sample_candidates([0, 1], prompts, 4, seeds=seeds)
        assert sampler.last_computed == {k: len(prompts[k]) - before[k] for k in (0, 1)}
        for episode, (prompt, candidates) in enumerate(zip(prompts, drawn)):
            want = sample_responses(policy, [prompt] * 4, temperature=0.7, top_p=0.9, max_new_tokens=5,
                                    seeds=seeds[episode])
            assert [c.token_ids for c in candidates] == [w.token_ids for w in want]
            for got, expected in zip(candidates, want):
                assert torch.allclose(torch.tensor(got.logprobs), torch.tensor(expected.logprobs), atol=1e-4)
            assert sampler.cached_tokens(episode) == prompt  # no candidate's tokens are kept
        assert len({tuple(c.token_ids) for c in drawn[0]}) > 1  # distinct seeds, distinct draws
        played = [candidates[step % 4] for candidates in drawn]
        prompts = [p + r.token_ids + next_turn(tokenizer, OBSERVATIONS[k]) for k, (p, r) in enumerate(zip(prompts, played))]
    with pytest.raises(ValueError, match="one row of 4 per episode"):
        sampler.sample_candidates([0, 1], prompts, 4, seeds=[[1, 2, 3, 4]])


def test_stopped_candidates_leave_the_batch_and_the_others_draw_what_they_draw_alone(byte_policy):
    """A candidate that has stopped is not fed again (the batch shrinks token by token), and every
    candidate's tokens are the ones it draws when decoded alone from the same seed. Stop tokens are
    widened to a quarter of the byte vocabulary so that candidates stop at different lengths."""
    policy = byte_policy
    sampler = KVCacheSampler(policy, temperature=1.0, top_p=1.0, max_new_tokens=12)
    widened = sorted({*sampler.stop_set, *range(0, 256, 4)})
    sampler.stop_set, sampler.stop_ids = set(widened), torch.tensor(widened)
    fed_rows: list[int] = []
    last_logits = sampler._last_logits

    def counting(input_ids, mask, cache):
        fed_rows.append(input_ids.shape[0])
        return last_logits(input_ids, mask, cache)

    sampler._last_logits = counting
    prompt = first_prompt(policy.tokenizer, FIRST_MESSAGES[1])
    seeds = [[7, 8, 9, 10, 11, 12]]
    [together] = sampler.sample_candidates([0], [prompt], 6, seeds=seeds)
    decoded_rows = fed_rows[1:]  # after the prefill
    lengths = sorted(len(candidate.token_ids) for candidate in together)
    assert lengths[0] < lengths[-1]  # some stopped early
    assert decoded_rows == sorted(decoded_rows, reverse=True) and decoded_rows[-1] < 6
    assert sum(decoded_rows) == sum(length - 1 for length in lengths)  # each fed its own tokens but the last
    alone = [sampler.sample_candidates([0], [prompt], 1, seeds=[[seed]])[0][0] for seed in seeds[0]]
    assert [c.token_ids for c in together] == [c.token_ids for c in alone]
    for got, expected in zip(together, alone):
        assert torch.allclose(torch.tensor(got.logprobs), torch.tensor(expected.logprobs), atol=1e-4)


def test_a_beam_of_one_is_greedy_decoding_and_every_beam_scores_as_a_full_recompute(byte_policy):
    """Retrospex's beam candidates: width 1 gives greedy decoding's tokens; a wider beam gives distinct
    responses, best mean log-prob first, whose log-probs (the model's own, T = 1) are those of an
    unpadded forward without cache, so the beams' keys and values were reordered right; the episode
    keeps its prompt only, and the next step feeds only its new tokens."""
    policy = byte_policy
    tokenizer = policy.tokenizer
    sampler = KVCacheSampler(policy, temperature=0.4, top_p=0.9, max_new_tokens=6)
    prompts = [first_prompt(tokenizer, message) for message in FIRST_MESSAGES[:2]]
    [[greedy_beam], _] = KVCacheSampler(policy, max_new_tokens=6).beam_candidates([0, 1], prompts, 1)
    [greedy] = sample_responses(policy, [prompts[0]], temperature=0, max_new_tokens=6)
    assert greedy_beam.token_ids == greedy.token_ids
    for step in range(2):
        before = [len(sampler.cached_tokens(k)) if k in sampler else 0 for k in (0, 1)]
        beams = sampler.beam_candidates([0, 1], prompts, 4)
        assert sampler.last_computed == {k: len(prompts[k]) - before[k] for k in (0, 1)}
        for prompt, candidates in zip(prompts, beams):
            assert len(candidates) == 4 and len({tuple(c.token_ids) for c in candidates}) == 4
            means = [sum(c.logprobs) / len(c.logprobs) for c in candidates]
            assert means == sorted(means, reverse=True)
            for candidate in candidates:
                expected = full_forward_logprobs(policy, prompt, candidate.token_ids, temperature=1.0)
                assert torch.allclose(torch.tensor(candidate.logprobs), torch.tensor(expected), atol=1e-4)
        assert [sampler.cached_tokens(k) for k in (0, 1)] == prompts
        prompts = [p + b[-1].token_ids + next_turn(tokenizer, OBSERVATIONS[k]) for k, (p, b) in enumerate(zip(prompts, beams))]
    with pytest.raises(ValueError, match="width: 0 beams"):
        sampler.beam_candidates([0], prompts[:1], 0)


def test_one_token_beams_are_the_most_likely_tokens(byte_policy):
    """With a single new token allowed, the beam's candidates are the top tokens of the model's
    distribution, in order (a golden value from one plain forward)."""
    policy = byte_policy
    prompt = first_prompt(policy.tokenizer, FIRST_MESSAGES[2])
    [beams] = KVCacheSampler(policy, max_new_tokens=1).beam_candidates([0], [prompt], 5)
    with torch.no_grad():
        logits = policy.model(torch.tensor([prompt], device=policy.device)).logits[0, -1].float()
    top = torch.topk(torch.log_softmax(logits, -1), 5)
    assert [beam.token_ids for beam in beams] == [[token] for token in top.indices.tolist()]
    assert torch.allclose(torch.tensor([beam.logprobs[0] for beam in beams]), top.values, atol=1e-4)

"""Seeds by what an episode is, and token draws by (seed, token index): golden values and the
properties the protocol relies on (same seed, same token, whatever else is in the batch)."""

from __future__ import annotations

import torch

from empo2_lite.policy.draws import choose_tokens, splitmix64, top_p_filter, uniforms
from empo2_lite.seeding import derive_seed, episode_seed, step_seed, tip_seed

MASK = (1 << 64) - 1


def splitmix64_reference(x: int) -> int:
    """SplitMix64's output function on Python integers (the published constants)."""
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def test_the_tensor_hash_is_splitmix64():
    values = [0, 1, 12345, 2**61 + 7, 2**62 - 1]
    assert [int(v) & MASK for v in splitmix64(torch.tensor(values))] == [splitmix64_reference(v) for v in values]


def test_seeds_are_stable_across_processes_and_machines():
    """Golden values: a change here silently changes every run's episodes."""
    assert episode_seed(0, "train", 0, 0, 0) == 4066988026911844422
    assert derive_seed(1, "a") == 2305343546739956436
    assert uniforms(torch.tensor([0, 1, 2**61]), 5).tolist() == [0.04864267727043048, 0.46519245062848724,
                                                                 0.2768702319662333]


def test_every_part_of_an_episodes_identity_changes_its_seed():
    base = (0, "train", 3, 1, 0)
    seeds = {episode_seed(*base)}
    for position, other in enumerate((1, "eval-dev", 4, 2, 1)):
        changed = list(base)
        changed[position] = other
        seeds.add(episode_seed(*changed))
    assert len(seeds) == 6
    assert len({step_seed(9, 0), step_seed(9, 1), tip_seed(9), step_seed(8, 0)}) == 4
    assert derive_seed(1, "2") != derive_seed("1", 2)  # types are part of the identity


def test_a_rows_token_depends_on_its_seed_and_index_only():
    torch.manual_seed(0)
    logits = torch.randn(4, 50)
    seeds = torch.tensor([11, 12, 13, 14])
    batch = choose_tokens(logits, 1.0, 1.0, seeds, token_index=3)
    for row in range(4):
        alone = choose_tokens(logits[row:row + 1], 1.0, 1.0, seeds[row:row + 1], token_index=3)
        assert alone.item() == batch[row].item()
    reordered = choose_tokens(logits.flip(0), 1.0, 1.0, seeds.flip(0), token_index=3)
    assert reordered.flip(0).tolist() == batch.tolist()


def test_draws_follow_the_distribution_and_respect_top_p_and_greedy():
    torch.manual_seed(1)
    logits = torch.randn(1, 20).repeat(20_000, 1)
    seeds = torch.arange(20_000)
    drawn = choose_tokens(logits, 0.7, 1.0, seeds, token_index=0)
    frequencies = torch.bincount(drawn, minlength=20).double() / 20_000
    assert (frequencies - torch.softmax(logits[0] / 0.7, -1).double()).abs().max() < 0.015
    kept = torch.isfinite(top_p_filter(logits[:1] / 0.7, 0.5))[0]
    assert set(choose_tokens(logits, 0.7, 0.5, seeds, token_index=0).unique().tolist()) == set(
        kept.nonzero().squeeze(1).tolist())
    assert (choose_tokens(logits[:3], 0.0, 1.0, seeds[:3], token_index=0) == logits[0].argmax()).all()

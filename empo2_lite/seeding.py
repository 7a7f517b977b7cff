"""Named random streams: every episode draws its own numbers, whoever plays it and whenever.

Why: evaluation used to draw its tokens from torch's global generator, so turning on a periodic
evaluation (or changing how often it runs) changed every later training rollout, and two runs
that should differ only in what they measured also differed in what they trained on. Here each
episode gets a seed derived from *what it is* (the run's seed, its purpose, the iteration, the
variation and its index among that variation's episodes), and each sampling call of the episode a
seed derived from the episode's and the step. The token draws (``policy/draws.py``) are then a
function of that seed and the token's index only, so an episode gets the same tokens alone or in a
batch, in any wave or pool slot, on one device and dtype.

Purposes in use: ``train`` (training rollouts), ``eval-dev`` / ``eval-test`` (evaluations of a
split), ``memory-dev`` / ``memory-test`` (the frozen-weight memory loop: memory-only baseline, OOD),
``reflexion-dev`` / ``reflexion-test`` (the Reflexion baseline's trials, the trial number in place of
the iteration; its control without reflections plays the same seeds, so that trial 1 is the same
episode in both and every later difference comes from the reflections shown), ``retrospex-dev`` /
``retrospex-test`` (the Retrospex baseline; its actor-only arm plays the same seeds, so both arms
see the same candidates until their choices differ), ``critic-data`` (the untrained episodes a
Retrospex critic learns from).
"""

from __future__ import annotations

import hashlib

SEED_BITS = 62
"""Derived seeds are non-negative and below 2**62, so they fit a signed 64-bit tensor."""


def derive_seed(*parts: int | str) -> int:
    """A seed that depends on every part (in order) and on nothing else: a hash of their text.

    Python's ``hash`` is salted per process for strings, so a cryptographic hash is used instead;
    the result is the same on every machine and in every process."""
    text = "\x1f".join(f"{type(part).__name__}:{part}" for part in parts)
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> (64 - SEED_BITS)


def episode_seed(run_seed: int, purpose: str, iteration: int, variation: int, index: int) -> int:
    """The seed of one episode: the ``index``-th episode of ``variation`` played for ``purpose`` at
    ``iteration`` in a run seeded ``run_seed``."""
    return derive_seed(run_seed, purpose, iteration, variation, index)


def step_seed(episode: int, step: int) -> int:
    """The seed of the sampling call that chooses the action of step ``step`` (0-based) of an episode."""
    return derive_seed(episode, "step", step)


def tip_seed(episode: int) -> int:
    """The seed of the call that writes the episode's tip."""
    return derive_seed(episode, "tip")


def reflection_seed(episode: int) -> int:
    """The seed of the call that writes a Reflexion reflection after the episode (greedy by
    default, so it only matters at a temperature above 0)."""
    return derive_seed(episode, "reflection")


def candidate_seed(step: int, index: int) -> int:
    """The seed of the ``index``-th candidate action drawn at a step whose seed is ``step``
    (Retrospex samples several per step; ``baselines/retrospex.py``)."""
    return derive_seed(step, "candidate", index)

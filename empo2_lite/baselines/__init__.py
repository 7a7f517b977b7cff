"""Baselines that are methods of their own, beside the naive and memory-only evaluations in
``evaluation.py``: Reflexion (``reflexion.py``) and Retrospex (``retrospex.py``, with its offline-RL
critic in ``critic.py``). Importing this package imports no torch: the command line checks the
settings here before any model loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from empo2_lite.config import ConfigError, check_choice, check_integer, check_positive


@dataclass(frozen=True)
class ReflexionSettings:
    """How the Reflexion baseline plays (``reflexion.py``); recorded in its row, and a recorded row
    is read back only under the same settings."""

    trials: int = 3
    """Attempts per chain (test variation x episode index), fewer when a trial solves the task. The
    EMPO² paper does not say how many its Reflexion column used; the original Reflexion runs 10
    (ALFWorld), SwiftSage's ScienceWorld script a few."""
    shown: int = 3
    """Reflections a trial's first message shows: the chain's newest ones (the original's 3)."""
    reflection_tokens: int = 128
    """Generation cap of one reflection (the original: 256; a reflection is one line here, since
    every sampler stops at a newline). Also the most a shown reflection may take."""
    reflection_temperature: float = 0.0
    """Temperature of the reflection writing (the original: 0, greedy)."""
    batch_size: int = 16
    """Reflection prompts sampled together (each is a whole transcript)."""

    def validate(self) -> None:
        """Raise ConfigError naming the first unusable field."""
        for name in ("trials", "shown", "reflection_tokens", "batch_size"):
            check_integer(f"reflexion.{name}", getattr(self, name), minimum=1)
        if not 0 <= self.reflection_temperature <= 5:
            raise ConfigError(f"reflexion.reflection_temperature: {self.reflection_temperature!r} is not allowed; "
                              "it must be in [0, 5]")

    def row(self) -> dict[str, Any]:
        """The settings as the fields of a results row (``trials`` is the row's own list)."""
        return {f"reflexion_{key}": value for key, value in asdict(self).items() if key != "trials"}


RETROSPEX_SEARCHES = ("beam", "sample")
"""How Retrospex's actor may propose its candidates (``RetrospexSettings.search``)."""
LEGACY_RETROSPEX_ROW = {"retrospex_search": "sample"}
"""What a Retrospex row written before ``search`` existed played with: independent samples."""


@dataclass(frozen=True)
class RetrospexSettings:
    """How the Retrospex baseline acts (``retrospex.py``); recorded in its row, and a recorded row
    is read back only under the same settings. Defaults are the original's values for
    ScienceWorld (Xiang et al., 2024) where it states them."""

    candidates: int = 6
    """Actions the actor proposes at every step (the original's 6)."""
    search: str = "beam"
    """How they are proposed: "beam", the top ``candidates`` of a beam search, distinct by
    construction (the original's); "sample", independent samples at the evaluation's temperature,
    duplicates merged (the kit's first choice: on cpu-solve its 6 samples gave 1.3 distinct actions
    a step, too few for the critic to ever decide; docs/results-cpu-solve.md)."""
    lambda_floor: float = 0.6
    """b in lambda = max(b, d ** step): the actor's weight never drops below it."""
    lambda_decay: float = 0.97
    """d in lambda = max(b, d ** step): the critic's weight grows as the episode goes on."""

    def validate(self) -> None:
        """Raise ConfigError naming the first unusable field."""
        check_integer("retrospex.candidates", self.candidates, minimum=1)
        check_choice("retrospex.search", self.search, RETROSPEX_SEARCHES)
        for name in ("lambda_floor", "lambda_decay"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"retrospex.{name}: {getattr(self, name)!r} is not allowed; it must be in [0, 1]")

    def actor_weight(self, step: int) -> float:
        """lambda at ``step`` (0-based): the weight of the actor's probability in the score."""
        return max(self.lambda_floor, self.lambda_decay ** step)

    def row(self) -> dict[str, Any]:
        """The settings as the fields of a results row."""
        return {f"retrospex_{key}": value for key, value in asdict(self).items()}


@dataclass(frozen=True)
class CriticSettings:
    """How the Retrospex critic is trained (``critic.py``): implicit Q-learning with the original's
    hyper-parameters, on transitions of the train split."""

    expectile: float = 0.7
    """tau of the expectile regression of V towards Q (the original's 0.7)."""
    discount: float = 0.99
    """gamma (the original's 0.99)."""
    target_rate: float = 0.005
    """Rate of the exponential moving average of the target Q network (the original's 0.005)."""
    learning_rate: float = 1e-4
    """Adam learning rate of Q and V (the original's 1e-4)."""
    batch_size: int = 128
    """Transitions per update (the original's 128)."""
    max_updates: int = 20000
    """Updates at most; training also stops at ``max_minutes``."""
    max_minutes: float = 10.0
    """Wall-clock cap of the training loop (issue: about 10 minutes on 2 cores)."""
    embedding_dim: int = 64
    """Width of the hashed bag-of-words text encoders."""
    hidden: int = 128
    """Width of the Q and V networks' hidden layer."""
    buckets: int = 2 ** 16
    """Hash buckets of the encoders' word and word-pair features."""
    reward_scale: float = 100.0
    """Rewards (score changes, in points) are divided by it, so returns are in [-1, 1]."""
    gold_variations: int = 30
    """Train variations whose gold paths are recorded as data (successes)."""
    untrained_episodes: int = 16
    """Episodes of the untrained model on train variations recorded as data (mostly failures and
    partial ones)."""
    seed: int = 0
    """Seeds the networks' initialisation, the batches and the untrained episodes."""

    def validate(self) -> None:
        """Raise ConfigError naming the first unusable field."""
        for name in ("batch_size", "max_updates", "embedding_dim", "hidden", "buckets"):
            check_integer(f"critic.{name}", getattr(self, name), minimum=1)
        for name in ("gold_variations", "untrained_episodes", "seed"):
            check_integer(f"critic.{name}", getattr(self, name), minimum=0)
        for name in ("learning_rate", "max_minutes", "reward_scale"):
            check_positive(f"critic.{name}", getattr(self, name))
        for name in ("expectile", "discount", "target_rate"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(f"critic.{name}: {getattr(self, name)!r} is not allowed; it must be in (0, 1]")

    def row(self) -> dict[str, Any]:
        """The settings as JSON fields."""
        return asdict(self)


def evaluation_episodes(kind: str, trials: int, candidates: int = RetrospexSettings.candidates) -> int:
    """How many naive evaluations' worth of decoding one baseline costs: memory-only plays
    ``trials`` evaluations; Reflexion up to ``2 * trials - 1`` episodes per chain (its control
    shares trial 1) plus the reflections; Retrospex two arms whose every step decodes ``candidates``
    responses in one batch (beams or samples), about ``candidates`` naive episodes an arm. Measured
    on the 2-core VM, 2026-12-07, whole pieces on cpu-solve (naive: ~7 s an episode): a beam of 6
    took 33.9 s an arm's episode and 6 samples 43-47 s, 9.7 and 12.9 naive episodes a variation
    against the 12 said (docs/hardware.md). Every other kind: one. The estimates printed before a
    baseline runs and the study's ``--estimate`` multiply a preset's seconds per episode by it."""
    return {"memory-only": trials, "reflexion": 2 * trials - 1, "retrospex": 2 * candidates}.get(kind, 1)

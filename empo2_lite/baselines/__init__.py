"""Baselines that are methods of their own, beside the naive and memory-only evaluations in
``evaluation.py``: Reflexion (``reflexion.py``). Importing this package imports no torch: the
command line checks ``ReflexionSettings`` before any model loads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from empo2_lite.config import ConfigError, check_integer


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

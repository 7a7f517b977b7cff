"""The error every bad setting raises, and the checks that word it the same way everywhere.

Why one wording: a research run that dies after twenty minutes of model loading because of a typo
wastes a GPU slot, so every check runs before anything heavy and says, in one line, the field, the
value and what is allowed.
"""

from __future__ import annotations

from empo2_lite.errors import KitError


class ConfigError(KitError, ValueError):
    """A setting has a value the kit cannot use; the message names the field and what is allowed."""


def check_choice(field_name: str, value: object, allowed: tuple) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        choices = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"{field_name}: {value!r} is not allowed; choose one of: {choices}")


def check_positive(field_name: str, value: float) -> None:
    """Raise ConfigError unless ``value`` is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{field_name}: {value!r} is not allowed; it must be a number > 0")


def check_integer(field_name: str, value: object, minimum: int) -> None:
    """Raise ConfigError unless ``value`` is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{field_name}: {value!r} is not allowed; it must be an integer >= {minimum}")


def check_fraction(field_name: str, value: object) -> None:
    """Raise ConfigError unless ``value`` is a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{field_name}: {value!r} is not allowed; it must be a number in [0, 1]")

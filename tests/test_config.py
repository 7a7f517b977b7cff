"""Config validation names the field and the allowed values."""

from __future__ import annotations

import pytest

from empo2_lite.config import ConfigError, EnvConfig


def test_defaults_are_valid():
    EnvConfig().validate()


@pytest.mark.parametrize("change, message", [
    ({"simplification": "hard"}, r"env\.simplification: 'hard' is not allowed; choose one of: easy"),
    ({"action_check": "fuzzy"}, r"env\.action_check: 'fuzzy' is not allowed; choose one of: parser, valid_list"),
    ({"heap_mb": 64}, r"env\.heap_mb: 64 .* >= 128"),
    ({"ambiguity_choice": -1}, r"env\.ambiguity_choice"),
    ({"step_timeout_s": 0}, r"env\.step_timeout_s: 0 .* > 0"),
    ({"default_max_steps": -3}, r"env\.default_max_steps"),
])
def test_bad_values_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        EnvConfig(**change).validate()

"""Config validation names the field and the allowed values; GRPO's settings, and old run configs
read as what ran."""

from __future__ import annotations

import json

import pytest

from empo2_lite.config import ConfigError, EnvConfig, TrainConfig, apply_overrides, preset, run_format_error


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


def test_grpo_means_no_memory_no_tips_no_novelty_and_says_so_in_its_config():
    config = apply_overrides(preset("cpu-smoke"), {"algo": "grpo"})
    assert (config.p, config.write_tips, config.memory.novelty_coef) == (0.0, False, 0.0)
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored["p"] == 0.0 and stored["write_tips"] is False and stored["memory"]["novelty_coef"] == 0.0
    with pytest.raises(ConfigError, match="p: 0.5 is not allowed with algo 'grpo'"):
        apply_overrides(config, {"p": 0.5}).validate()


def test_an_old_grpo_config_is_read_as_what_ran():
    old = preset("cpu-smoke").to_dict()  # a version-1 config.json: no format_version, no write_tips
    old.update(algo="grpo", p=0.5)
    del old["write_tips"], old["format_version"], old["update"]["mini_batch_actions"]
    old["update"].update(mini_batch_size=4, temperature=1.0)
    config = TrainConfig.from_dict(old)
    assert (config.p, config.write_tips, config.memory.novelty_coef) == (0.0, True, 1.0)
    assert config.format_version == 1
    config.validate()
    assert "config format 1" in str(run_format_error(config, "runs/demo"))
    assert run_format_error(preset("cpu-smoke"), "runs/demo") is None
    newer = {**preset("cpu-smoke").to_dict(), "format_version": 99}
    with pytest.raises(ConfigError, match="format_version: 99 is newer than this kit understands"):
        TrainConfig.from_dict(newer)

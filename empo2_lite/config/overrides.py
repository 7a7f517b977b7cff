"""Overrides: how ``--set section.field=value``, a YAML file or a grid turn a preset into a run.

Values arrive as strings (the command line) or YAML/JSON values and are coerced to each field's
declared type; an unknown name is an error that lists every known setting. Choosing an algorithm
applies what its entry in the algorithm table implies (``algorithm_settings``) before the other
overrides given with it; an override that then contradicts the algorithm is refused by
``TrainConfig.validate``, which names the algorithm that does it (``--algo grpo --set
memory.novelty_coef=1`` points to "grpo+novelty").

The field machinery (flattening, coercion, setting by dotted name) lives in ``reading.py``, which
``TrainConfig.from_dict`` also uses, so this module and ``train.py`` do not import each other.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from empo2_lite.algo.algorithms import algorithm
from empo2_lite.config.checks import ConfigError
from empo2_lite.config.reading import SECTIONS, assign, flatten, setting_names
from empo2_lite.config.train import TrainConfig

__all__ = ["SECTIONS", "PAPER_NOVELTY_COEF", "algorithm_settings", "apply_overrides", "flatten", "known_settings",
           "load_overrides_file", "parse_set_arguments"]

PAPER_NOVELTY_COEF = 1.0
"""The novelty coefficient an algorithm with the novelty reward gets where the config had none."""


def algorithm_settings(name: str, config: TrainConfig) -> dict[str, Any]:
    """What choosing algorithm ``name`` sets on ``config``: p = 0 without memory rollouts, its
    ``write_tips``, and ``memory.novelty_coef`` = 0 without the novelty reward, or, with it, the
    config's coefficient (the paper's 1.0 where that was 0, so "grpo+novelty" chosen on a GRPO
    config pays novelty)."""
    entry = algorithm(name)
    settings: dict[str, Any] = {"write_tips": entry.write_tips}
    if not entry.memory_rollouts:
        settings["p"] = 0.0
    if not entry.novelty:
        settings["memory.novelty_coef"] = 0.0
    elif config.memory.novelty_coef == 0:
        settings["memory.novelty_coef"] = PAPER_NOVELTY_COEF
    return settings


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``config`` with ``{"field" or "section.field": value}`` applied.

    An ``algo`` key is applied first, with the settings it implies (``algorithm_settings``); the
    other keys then override those, and ``validate`` refuses any that contradict the algorithm:
    ``{"algo": "grpo", "memory.novelty_coef": 1}`` is refused, ``{"algo": "grpo+novelty"}`` is it.
    """
    config = copy.deepcopy(config)
    if "algo" in overrides:
        overrides = {"algo": overrides["algo"], **algorithm_settings(overrides["algo"], config),
                     **{key: value for key, value in overrides.items() if key != "algo"}}
    assign(config, overrides)
    return config


def known_settings(section: str = "") -> list[str]:
    """Every setting's dotted name, or only those of ``section``."""
    return setting_names(TrainConfig, section)


def parse_set_arguments(pairs: list[str]) -> dict[str, str]:
    """``["update.learning_rate=1e-5", ...]`` as a dict; a pair without '=' is an error."""
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set: {pair!r} is not allowed; write it as section.field=value")
        result[key.strip()] = value.strip()
    return result


def load_overrides_file(path: str | Path) -> dict[str, Any]:
    """Overrides from a YAML (or JSON) file, nested by section or flat with dots."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"--config: no file at {str(path)!r}")
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"--config: {str(path)!r} must hold a mapping of settings")
    return flatten(values)

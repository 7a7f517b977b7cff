"""Overrides: how ``--set section.field=value``, a YAML file or a grid turn a preset into a run.

Values arrive as strings (the command line) or YAML/JSON values and are coerced to each field's
declared type; an unknown name is an error that lists every known setting. Choosing an algorithm
applies what it implies (``ALGO_SETTINGS``) before the other overrides given with it.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

from empo2_lite.config.checks import ConfigError, check_choice
from empo2_lite.config.sections import EnvConfig, MemoryConfig, PolicyConfig, RolloutConfig, UpdateConfig
from empo2_lite.config.train import ALGOS, TrainConfig

SECTIONS = {"env": EnvConfig, "policy": PolicyConfig, "rollout": RolloutConfig, "memory": MemoryConfig,
            "update": UpdateConfig}


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and key in SECTIONS and not prefix:
            flat.update(flatten(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def _coerce(field_name: str, annotation: str, value: Any) -> Any:
    """Turn a --set string (or a YAML/JSON value) into the field's declared type."""
    if not isinstance(value, str):
        return tuple(value) if "tuple" in annotation and isinstance(value, list) else value
    if "None" in annotation and value.lower() in ("none", "null"):
        return None
    if annotation.startswith("bool"):
        if value.lower() in ("true", "1", "yes", "on"):
            return True
        if value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{field_name}: {value!r} is not allowed; choose one of: true, false")
    if "tuple" in annotation:
        return tuple(part.strip() for part in value.split(",") if part.strip())
    try:
        if annotation.startswith("int"):
            return int(value)
        if annotation.startswith("float"):
            return float(value)
    except ValueError:
        raise ConfigError(f"{field_name}: {value!r} is not allowed; it must be a number") from None
    return value


ALGO_SETTINGS: dict[str, dict[str, Any]] = {
    "empo2": {},
    "grpo": {"p": 0.0, "write_tips": False, "memory.novelty_coef": 0.0},
}
"""What choosing an algorithm sets (applied before the other overrides given with it)."""


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """A copy of ``config`` with ``{"field" or "section.field": value}`` applied.

    An ``algo`` key is applied first, with the settings it implies (``ALGO_SETTINGS``); the other
    keys then override those, so ``{"algo": "grpo", "memory.novelty_coef": 1}`` is GRPO + novelty.
    """
    config = copy.deepcopy(config)
    if "algo" in overrides:
        check_choice("algo", overrides["algo"], ALGOS)
        overrides = {"algo": overrides["algo"], **ALGO_SETTINGS[overrides["algo"]],
                     **{key: value for key, value in overrides.items() if key != "algo"}}
    for key, value in overrides.items():
        section, _, name = key.rpartition(".")
        target = getattr(config, section) if section in SECTIONS else config if not section else None
        fields = {f.name: f for f in dataclasses.fields(target)} if target is not None else {}
        if name not in fields:
            raise ConfigError(f"{key}: unknown setting; known settings{' of ' + section if target is not None and section else ''}: "
                              f"{', '.join(known_settings(section if target is not None else ''))}")
        setattr(target, name, _coerce(key, str(fields[name].type), value))
    return config


def known_settings(section: str = "") -> list[str]:
    """Every setting's dotted name, or only those of ``section``."""
    if section:
        return sorted(f"{section}.{f.name}" for f in dataclasses.fields(SECTIONS[section]))
    return sorted([f.name for f in dataclasses.fields(TrainConfig) if f.name not in SECTIONS] +
                  [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)])


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

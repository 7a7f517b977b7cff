"""Reading settings from plain values: ``config.json`` (with its migrations), ``--set`` strings, YAML.

Why a module of its own: ``train.py`` (the ``TrainConfig`` that reads itself back with
``from_dict``) and ``overrides.py`` (which builds configs from a preset) both need to set fields
by their dotted names; when the reading lived in ``overrides.py``, the two imported each other.
This module imports neither: it works on whatever config object it is handed.

A stored file is read as what ran. Files of an older ``format_version`` are migrated; files of any
version whose algorithm was stored under a name that now means something else are relabelled by
the algorithm table (``relabel_algorithm``): before the table, the ablations "GRPO + novelty" and
"GRPO + tips never shown" were stored as "grpo".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from empo2_lite.algo.algorithms import algorithm_doing
from empo2_lite.config.checks import ConfigError
from empo2_lite.config.sections import EnvConfig, MemoryConfig, PolicyConfig, RolloutConfig, UpdateConfig

SECTIONS = {"env": EnvConfig, "policy": PolicyConfig, "rollout": RolloutConfig, "memory": MemoryConfig,
            "update": UpdateConfig}

FORMAT_VERSION = 5
"""Version 2 (2026-11-26): GRPO without novelty and tips (``write_tips``), mini-batches counted in
actions (``update.mini_batch_actions``), ``eval_episodes_per_variation``; no ``update.temperature``.
Version 3 (2026-12-04): tokens drawn from per-episode seeds, periodic evaluations on the dev
split, ``memory_draw`` (version 2 drew memory iterations' variations uniformly), each step's tip
block shown at its own step only (version 2 kept blocks in the chat under
``rollout.tip_episode_tokens``, dropped when read). The algorithm table's ablation names
("grpo+novelty", "grpo+tips-unseen") need no new version: a file storing them as "grpo" is
relabelled on reading, and nothing else changed meaning.
Version 4 (2026-12-05): ``rollout.engine`` replaces ``rollout.kv_cache`` (``migrate_to_engines``),
sampling from merged LoRA weights (``policy.merge_for_sampling``), and the old log-probs
recomputed by the update's forward in every mode (a resumed version-3 run recomputes them too).
Version 5 (2026-12-07): GiGPO's step returns leave novelty out unless ``update.gigpo_step_novelty``
(version 4 added it: read as true); novelty is scored once all waves are played, so it no longer
depends on ``n_envs`` (version-4 runs with more episodes than environments paid later waves less;
no setting reproduces that, the one-wave presets are unchanged)."""


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"memory": {"top_k": 3}}`` as ``{"memory.top_k": 3}`` (flat keys are kept as they are)."""
    flat = {}
    for key, value in values.items():
        if isinstance(value, dict) and key in SECTIONS and not prefix:
            flat.update(flatten(value, f"{key}."))
        else:
            flat[prefix + key] = value
    return flat


def coerce(field_name: str, annotation: str, value: Any) -> Any:
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


def setting_names(config: Any, section: str = "") -> list[str]:
    """Every setting's dotted name of a config (instance or class), or only those of ``section``."""
    if section:
        return sorted(f"{section}.{f.name}" for f in dataclasses.fields(SECTIONS[section]))
    return sorted([f.name for f in dataclasses.fields(config) if f.name not in SECTIONS] +
                  [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)])


def assign(config: Any, flat: dict[str, Any]) -> None:
    """Set ``{"field" or "section.field": value}`` on ``config`` in place, in the dict's order, each
    value coerced to its field's type; an unknown name is an error listing the known ones."""
    for key, value in flat.items():
        section, _, name = key.rpartition(".")
        target = getattr(config, section) if section in SECTIONS else config if not section else None
        fields = {f.name: f for f in dataclasses.fields(target)} if target is not None else {}
        if name not in fields:
            known = setting_names(config, section if target is not None else "")
            raise ConfigError(f"{key}: unknown setting; known settings{' of ' + section if target is not None and section else ''}: "
                              f"{', '.join(known)}")
        setattr(target, name, coerce(key, str(fields[name].type), value))


def read_config(config: Any, values: dict[str, Any]) -> Any:
    """``config`` (a fresh default ``TrainConfig``) with the stored ``values`` (nested as
    ``config.json`` holds them, or flat) set on it: an older format migrated to what ran
    (``format_version`` keeps the old number), the algorithm relabelled (``relabel_algorithm``)."""
    flat = flatten(values)
    version = flat.get("format_version", 1)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigError(f"format_version: {version!r} is newer than this kit understands ({FORMAT_VERSION}); "
                          "update empo2-lite")
    if version == 1:
        flat = migrate_from_version_1(flat)
    if version <= 2:
        flat.setdefault("memory_draw", "uniform")
        flat.pop("rollout.tip_episode_tokens", None)  # blocks stayed in the chat then
    if version <= 3:
        flat = migrate_to_engines(flat)
    if version <= 4:
        flat.setdefault("update.gigpo_step_novelty", True)
    assign(config, flat)
    config.algo = relabel_algorithm(config)
    return config


def migrate_from_version_1(flat: dict[str, Any]) -> dict[str, Any]:
    """Version 1 as what ran: GRPO then used p = 0 whatever its stored p, and every algorithm wrote
    tips and paid novelty; ``update.mini_batch_size`` (trajectories per step) and
    ``update.temperature`` (a copy of the rollout's) have no version-2 equivalent and are dropped."""
    flat = {key: value for key, value in flat.items() if key not in ("update.mini_batch_size", "update.temperature")}
    flat.setdefault("write_tips", True)
    if flat.get("algo") == "grpo":
        flat["p"] = 0.0
    return {**flat, "format_version": 1}


def migrate_to_engines(flat: dict[str, Any]) -> dict[str, Any]:
    """Up to version 3 ``rollout.kv_cache`` chose the sampler: true ran the KV-cache sampler, false
    re-read every prompt; and sampling ran through the adapter layers (nothing was merged)."""
    kv_cache = flat.pop("rollout.kv_cache", True)
    flat.setdefault("rollout.engine", "kv-cache" if kv_cache else "rereading")
    flat.setdefault("policy.merge_for_sampling", False)
    return flat


def relabel_algorithm(config: Any) -> str:
    """The name of what a stored "grpo" run did: "grpo+novelty" where it paid the novelty reward,
    "grpo+tips-unseen" where it wrote tips without it, "grpo" otherwise; other names as stored.

    Version-1 GRPO runs wrote tips *and* paid novelty, which no entry does; they read as
    "grpo+novelty" (the reward changed their returns; the tips never reached a prompt). Such a
    config does not validate, but it is never trained on (``run_format_error``)."""
    if config.algo != "grpo" or config.p > 0:
        return config.algo
    if config.memory.novelty_coef > 0:
        return "grpo+novelty"
    doing = algorithm_doing(False, config.write_tips, False)
    return doing.name if doing is not None else config.algo

"""What a study plan's ``probe`` block may say, checked without the plan: the keys, the rule, the
candidates (each a known task). Apart from ``plan.py`` (which checks a whole plan with it) and
``probe.py`` (which runs the probe and applies its rule), so that neither imports the other.
"""

from __future__ import annotations

from empo2_lite.config import ConfigError, apply_overrides, check_integer, preset
from empo2_lite.tasks import UnknownTaskError, get_task

PROBE_KEYS = ("candidates", "rule", "seed", "temperature")
"""The keys of a plan's ``probe`` block (``temperature`` optional: default the preset's evaluation one)."""
RULE_KEYS = ("points", "at_least", "success_below")
"""The rule: at least ``at_least`` episodes at ``points`` or more, success rate below ``success_below``."""


def probe_candidates(probe: dict | None) -> list[tuple[str, str, dict]]:
    """The probed settings of a plan's ``probe`` block as (name, task, overrides without the task),
    in the plan's order (none without a probe)."""
    return [(str(name), entry["task"], {key: value for key, value in entry.items() if key != "task"})
            for name, entry in (probe or {}).get("candidates", {}).items()]


def check_probe(probe: dict, preset_name: str, overrides: dict) -> None:
    """A plan's ``probe`` block: its keys, rule and candidates (each a known task and a config, on
    ``preset_name`` with the plan's ``overrides``, that validates); ConfigError in one line naming
    the key otherwise."""
    unknown = sorted(set(probe) - set(PROBE_KEYS))
    if unknown:
        raise ConfigError(f"probe.{unknown[0]}: not a key of a probe; the keys are: {', '.join(PROBE_KEYS)}")
    for key in ("candidates", "rule", "seed"):
        if key not in probe:
            raise ConfigError(f"probe.{key}: missing; a probe needs candidates, rule and seed")
    check_integer("probe.seed", probe["seed"], minimum=0)
    rule = probe["rule"]
    if not isinstance(rule, dict) or sorted(rule) != sorted(RULE_KEYS):
        raise ConfigError(f"probe.rule: {rule!r} is not allowed; give {', '.join(RULE_KEYS)}")
    check_integer("probe.rule.at_least", rule["at_least"], minimum=1)
    for key in ("points", "success_below"):
        if isinstance(rule[key], bool) or not isinstance(rule[key], (int, float)):
            raise ConfigError(f"probe.rule.{key}: {rule[key]!r} is not allowed; give a number")
    if not 0 < rule["success_below"] <= 1:
        raise ConfigError(f"probe.rule.success_below: {rule['success_below']} is not allowed; it must be in (0, 1]")
    if not isinstance(probe["candidates"], dict) or not probe["candidates"]:
        raise ConfigError("probe.candidates: give a mapping of name -> task and overrides (at least one)")
    base = preset(preset_name)
    for name, entry in probe["candidates"].items():
        if not isinstance(entry, dict) or "task" not in entry:
            raise ConfigError(f"probe.candidates.{name}: {entry!r} is not allowed; give task: TASK and overrides")
        known_task(f"probe.candidates.{name}.task", entry["task"])
        candidate = {key: value for key, value in entry.items() if key != "task"}
        config = apply_overrides(base, {**overrides, **candidate, "task": entry["task"], "baseline": "naive"})
        if "temperature" in probe:
            config.eval_temperature = probe["temperature"]
        config.validate()


def known_task(key: str, name: object) -> None:
    """Refuse, naming ``key``, a task the kit does not know."""
    try:
        get_task(name)
    except (UnknownTaskError, TypeError) as error:
        raise ConfigError(f"{key}: {error}") from None

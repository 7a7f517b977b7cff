"""The warm-start job (``python -m empo2_lite warm-start``) and the helpers that point a run at one.

``warm_start`` is restartable like every job: a finished warm start of the same settings is read
back, not redone; a folder of that name holding anything else is refused.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from empo2_lite.config import ConfigError, apply_overrides, preset
from empo2_lite.env.pool import PoolFactory, open_pool
from empo2_lite.runs import RunDir
from empo2_lite.tasks import get_task
from empo2_lite.warm_start import WarmStartSettings, check_train_only, clone_variations


@dataclass
class WarmStarted:
    """What ``warm_start`` did."""

    run: RunDir
    outcome: str
    """"trained" or "skipped (done)"."""
    record: dict[str, Any]
    """The run's ``warm_start.json``."""


def default_name(task: str) -> str:
    """The run folder a warm start of ``task`` is saved in unless named."""
    return f"warm-start-{task}"


def warm_start_folder(name: str, flag: str = "--from") -> str:
    """The path of the finished warm start called ``name`` (what ``policy.init_adapter`` holds), or
    the one-line ConfigError naming ``flag``."""
    run = RunDir.existing(name, flag)
    if run.read_warm_start() is None or run.latest_checkpoint() is None:
        raise ConfigError(f"{flag}: run {name!r} ({run.path}) is not a finished warm start "
                          "(make one with `python -m empo2_lite warm-start`)")
    return str(run.path)


def warm_start_config(preset_name: str, task_name: str, settings: WarmStartSettings, name: str | None = None,
                      overrides: dict[str, Any] | None = None):
    """The warm start's ``config.json``: the preset's config (with ``overrides``) for ``task_name``,
    its epochs as ``iterations``, its learning rate and seed; validated."""
    settings.validate()
    task = get_task(task_name)
    config = apply_overrides(preset(preset_name), {**(overrides or {}), "task": task.name,
                                                   "name": name or default_name(task.name), "iterations": settings.epochs,
                                                   "seed": settings.seed, "update.learning_rate": settings.learning_rate})
    config.validate()
    if config.policy.lora_rank < 1:
        raise ConfigError("policy.lora_rank: 0 is not allowed for a warm start; it trains a LoRA adapter (> 0)")
    return config


def warm_start(preset_name: str, task_name: str, settings: WarmStartSettings | None = None, *,
               name: str | None = None, overrides: dict[str, Any] | None = None,
               variations: Sequence[int] | None = None, paths: Mapping[int, Sequence[str]] | None = None,
               make_pool: PoolFactory | None = None, progress: bool = True) -> WarmStarted:
    """Clone the gold paths of ``task_name``'s train variations into the preset's LoRA adapter and
    save the run folder ``name`` (default ``warm-start-<task>``). Its ``warm_start.json`` lists the
    variations asked for, those cloned (with their actions, score and token counts) and those whose
    path did not solve its variation when played through the rollout; a variation whose gold path
    does not solve it in ScienceWorld itself is in neither list (``record.gold_paths`` warns).

    The variations are ``variations`` when given, else ``clone_variations`` of ``settings.variations``;
    dev and test variations are refused. ``paths`` (variation -> actions) replaces ScienceWorld's
    gold paths (tests pass recorded ones); the episodes are played on ``make_pool``'s environments
    (default: one ScienceWorld JVM)."""
    settings = settings or WarmStartSettings()
    config = warm_start_config(preset_name, task_name, settings, name, overrides)
    task = get_task(task_name)
    if paths is not None:
        ids = tuple(paths)
    elif variations is not None:
        ids = tuple(variations)
    else:
        ids = clone_variations(task, settings.variations)
    check_train_only(task, ids)
    run = RunDir.named(config.name)
    wanted = {"task": task.name, "preset": preset_name, "settings": settings.row(), "variations_asked": list(ids)}
    if run.exists():
        saved = run.read_warm_start()
        if saved is not None and {key: saved.get(key) for key in wanted} == wanted:
            return WarmStarted(run, "skipped (done)", saved)
        raise ConfigError(f"name: {run.path} already holds a run that is not this warm start; choose another name")
    import torch
    from peft import get_peft_model_state_dict

    from empo2_lite.policy import load_policy
    from empo2_lite.warm_start.cloning import clone
    from empo2_lite.warm_start.record import gold_paths, record_demonstrations

    began = time.perf_counter()
    paths = dict(paths) if paths is not None else gold_paths(task, ids, config.env)
    torch.manual_seed(settings.seed)
    policy = load_policy(config.policy, config.rollout)
    with open_pool(make_pool, 1, config.env) as pool:
        demonstrations = record_demonstrations(policy, pool, task, paths, config.rollout)
    solved = [demo for demo in demonstrations if demo.solved]
    if not solved:
        raise RuntimeError(f"{task.name}: no gold path solved its variation when played through the rollout; "
                           "nothing to clone")
    rows = clone(policy, [demo.trajectory.without_tips for demo in solved], epochs=settings.epochs,
                 learning_rate=settings.learning_rate, seed=settings.seed, progress=progress)
    run.start(config)
    for row in rows:
        run.append_metrics(row)
    run.save_checkpoint(settings.epochs, get_peft_model_state_dict(policy.model), {}, {})
    record = {**wanted, "cloned": [demo.summary() for demo in solved],
              "not_solved": [demo.summary() for demo in demonstrations if not demo.solved],
              "action_tokens": sum(demo.summary()["action_tokens"] for demo in solved),
              "final_loss": rows[-1]["warm_start/loss"], "minutes": (time.perf_counter() - began) / 60}
    run.write_warm_start(record)
    return WarmStarted(run, "trained", record)

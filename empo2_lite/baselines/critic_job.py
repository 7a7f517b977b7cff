"""The critic job (``python -m empo2_lite critic``): a Retrospex critic trained on a task's train split.

The data, all from **train** variations (dev and test are never played here):

* ``gold``: ScienceWorld's gold paths of the first ``CriticSettings.gold_variations`` train
  variations, played through the rollout (``warm_start.record``): successes;
* ``untrained``: ``CriticSettings.untrained_episodes`` episodes of the preset's base model (no
  adapter) on the gold paths' variations in turn (the first train variations when there are no gold
  paths), at the preset's training temperature (seeds of purpose ``critic-data``): mostly failures
  and partial ones, in the states the gold paths pass through, so that the critic sees good and
  bad actions side by side;
* ``run``: with ``from_run``, every training episode a run recorded in its ``steps.jsonl``.

The original trained on 2,566 trajectories of its imitation agent; a 2-core CPU affords far fewer,
which is why the training time is capped (``CriticSettings.max_minutes``) and reported. The folder
(``runs/critic-<task>`` unless named) holds ``config.json`` (the preset's config for the task: it
names the model the critic was trained beside), ``steps.jsonl`` (every transition, with its
``source``), the critic's weights and record (``critic.py``) and ``figures/critic_curve``.
A finished critic of the same settings is read back, not trained again.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from empo2_lite.baselines import CriticSettings
from empo2_lite.config import ConfigError, apply_overrides, preset
from empo2_lite.env.pool import PoolFactory, open_pool
from empo2_lite.runs import RunDir
from empo2_lite.tasks import get_task
from empo2_lite.warm_start import check_train_only


def default_critic_name(task: str) -> str:
    """The folder a critic of ``task`` is saved in unless named."""
    return f"critic-{task}"


def critic_folder(name: str, task: str | None = None, model: str | None = None) -> Path:
    """The path of the finished critic ``name`` (a name under the runs root, or an absolute path:
    a study's pieces run under the study's folder), checked against the ``task`` and ``model`` it
    is to serve; else the one-line ConfigError naming ``--critic``."""
    from empo2_lite.baselines.critic import read_critic_record

    if Path(name).is_absolute():
        run = RunDir(name)
        if not run.exists():
            raise ConfigError(f"--critic: no critic folder at {name}")
    else:
        run = RunDir.existing(name, "--critic")
    record = read_critic_record(run.path)
    if record is None:
        raise ConfigError(f"--critic: {run.path} holds no finished critic (make one with `python -m empo2_lite critic`)")
    for field, wanted in (("task", task), ("model", model)):
        if wanted is not None and record[field] != wanted:
            raise ConfigError(f"--critic: {run.path} was trained for {field} {record[field]!r}, not {wanted!r}; "
                              f"train one for it (`python -m empo2_lite critic --task ...`)")
    return run.path


def make_critic(preset_name: str, task_name: str, settings: CriticSettings | None = None, *,
                from_run: str | None = None, name: str | None = None, paths: Mapping[int, Sequence[str]] | None = None,
                make_pool: PoolFactory | None = None, progress: bool = True) -> dict[str, Any]:
    """Record the data (see the module docstring), train the IQL critic and save its folder;
    return its record. ``paths`` (variation -> gold actions) replaces ScienceWorld's gold paths and
    ``make_pool`` its environments (tests pass recorded ones)."""
    settings = settings or CriticSettings()
    settings.validate()
    task = get_task(task_name)
    config = apply_overrides(preset(preset_name), {"task": task.name, "seed": settings.seed,
                                                   "name": name or default_critic_name(task.name)})
    config.validate()
    run_rows: list[dict[str, Any]] = []
    if from_run is not None:
        source = RunDir.existing(from_run, "--from")
        if source.config().task != task.name:
            raise ConfigError(f"--from: run {from_run!r} trained on {source.config().task}, not {task.name}")
        run_rows = [{**row, "source": "run"} for row in source.read_steps()]
        if not run_rows:
            raise ConfigError(f"--from: run {from_run!r} recorded no steps.jsonl (runs before it was kept have none)")
    gold_ids = list(paths) if paths is not None else list(task.split_ids("train")[:settings.gold_variations])
    check_train_only(task, gold_ids, learner="a critic")
    turns = gold_ids or list(task.split_ids("train"))
    untrained_ids = [turns[i % len(turns)] for i in range(settings.untrained_episodes)]
    folder = RunDir.named(config.name)
    wanted = {"task": task.name, "preset": preset_name, "model": config.policy.model, "from_run": from_run,
              "settings": settings.row()}
    from empo2_lite.baselines.critic import read_critic_record

    saved = read_critic_record(folder.path)
    if saved is not None and {key: saved.get(key) for key in wanted} == wanted:
        return saved
    if folder.exists() and (saved is not None or folder.latest_checkpoint() is not None):
        held = "a critic of other settings" if saved is not None else "a trained run"
        raise ConfigError(f"name: {folder.path} already holds {held}; choose another name")

    from dataclasses import replace

    from empo2_lite.baselines.critic import save_critic, train_critic
    from empo2_lite.plots import critic_curve, save_figure
    from empo2_lite.policy import load_policy
    from empo2_lite.rollout import EpisodeSpec, collect_rollouts
    from empo2_lite.seeding import episode_seed
    from empo2_lite.transitions import step_rows, transitions
    from empo2_lite.warm_start.record import gold_paths, record_demonstrations

    began = time.perf_counter()
    policy = load_policy(replace(config.policy, lora_rank=0, init_adapter=""), config.rollout)
    paths = dict(paths) if paths is not None else gold_paths(task, gold_ids, config.env) if gold_ids else {}
    with open_pool(make_pool, config.n_envs, config.env) as pool:
        gold = [demo.trajectory for demo in record_demonstrations(policy, pool, task, paths, config.rollout)]
        specs = [EpisodeSpec(task.name, variation, group_id=i,
                             seed=episode_seed(settings.seed, "critic-data", 0, variation, i // len(turns)))
                 for i, variation in enumerate(untrained_ids)]
        untrained = collect_rollouts(policy, pool, specs, config.rollout, progress=progress) if specs else []
    for index, trajectory in enumerate(gold):
        trajectory.rollout_id = index
    rows = [*({**row, "source": "gold"} for row in step_rows(gold, iteration=0)),
            *({**row, "source": "untrained"} for row in step_rows(untrained, iteration=0)), *run_rows]
    if not rows:
        raise ConfigError("critic: no transitions to learn from; raise --gold-variations or --untrained-episodes, "
                          "or give --from RUN")
    data_minutes = (time.perf_counter() - began) / 60
    critic, curve = train_critic(transitions(rows), settings, progress=progress)
    folder.start(config)
    folder.append_steps(rows)
    record = {**wanted, "data": _data_summary(rows), "curve": curve, "updates": curve[-1]["update"],
              "minutes": {"data": data_minutes, "training": curve[-1]["minutes"],
                          "total": (time.perf_counter() - began) / 60}}
    save_figure(critic_curve(record), folder.figures / "critic_curve")
    save_critic(critic, folder.path, record)
    return {**record, "settings": settings.row()}


def _data_summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per source: episodes, steps, and the share of episodes that reached 100."""
    summary: dict[str, dict[str, float]] = {}
    for source in dict.fromkeys(row["source"] for row in rows):
        mine = [row for row in rows if row["source"] == source]
        ends = [row for row in mine if row["end_reason"] is not None]
        summary[source] = {"episodes": len(ends), "steps": len(mine),
                           "success_share": sum(row["score"] >= 100 for row in ends) / len(ends) if ends else 0.0}
    return summary

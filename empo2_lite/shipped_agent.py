"""The agent a study trained, packed small enough to ship, and put back as runs a job can play.

Issue #36's demo shows learning on a 2-core CPU without training for an hour: it plays an agent the
CPU solve study trained. That agent is two run folders, because a compared run starts from a warm
start merged into the base weights (``policy.init_adapter``) and trains its own LoRA adapter on top:

* ``warm-start/``: the warm start (its ``config.json``, ``warm_start.json``, loss curve and the one
  checkpoint's adapter);
* ``trained/``: the compared run (``config.json``, ``metrics.jsonl``, ``eval.jsonl`` and its last
  checkpoint's adapter; no optimizer state, memory or TensorBoard files: playing needs none);
* ``agent.json``: which study run it is, why it was picked and how long it trained.

A run records its warm start by absolute path, which only holds on the machine that trained it. So
``ship_agent`` writes the path relative to the agent folder and ``install_agent`` copies the folder
under the runs root and writes the absolute path of the copy back: from then on both folders are
ordinary runs (``final_evaluation``, ``baseline("warm-start", from_run=...)`` and ``train`` read them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from empo2_lite.config import ConfigError
from empo2_lite.runs import CONFIG_FILE, EVAL_FILE, METRICS_FILE, WARM_START_FILE, RunDir, runs_root, write_atomic

AGENT_FILE = "agent.json"
WARM_START_DIR, TRAINED_DIR = "warm-start", "trained"
_RELATIVE_WARM_START = f"../{WARM_START_DIR}"
"""How a shipped ``trained/config.json`` names its warm start: the sibling folder, rewritten to an
absolute path on install (a relative path would depend on the working directory)."""


def training_minutes(run: RunDir) -> float:
    """Minutes ``run`` spent in its iterations: the sum of every phase time it logged."""
    return sum(value for row in run.read_metrics() for key, value in row.items()
               if key.startswith("time/") and isinstance(value, (int, float))) / 60


def _copy_run(source: RunDir, target: Path, files: tuple[str, ...]) -> None:
    """``files`` of ``source`` (those present) and its latest checkpoint's adapter and state into ``target``."""
    checkpoint = source.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"{source.path} has no checkpoint: there is no adapter to ship")
    for name in files:
        if (source.path / name).exists():
            shutil.copy2(source.path / name, target / name)
    kept = target / "checkpoints" / checkpoint.name
    kept.mkdir(parents=True)
    for name in ("adapter.safetensors", "state.json"):
        shutil.copy2(checkpoint / name, kept / name)
    (target / "checkpoints" / "latest").write_text(checkpoint.name + "\n")


def ship_agent(trained: str | Path, out: str | Path, *, why: str) -> dict[str, Any]:
    """Pack the compared run ``trained`` and the warm start it started from into the new folder
    ``out``; ``why`` says how it was picked (recorded in ``agent.json``). Returns that record."""
    run = RunDir(trained)
    config = run.config()
    if not config.policy.init_adapter:
        raise ConfigError(f"{run.path}: policy.init_adapter is empty; only a run started from a warm start is "
                          "shipped as an agent (a run without one is its adapter alone)")
    warm = RunDir(config.policy.init_adapter)
    out = Path(out)
    if out.exists():
        raise ConfigError(f"out: {out} exists; ship into a new folder")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / WARM_START_DIR).mkdir(parents=True)
    (staging / TRAINED_DIR).mkdir()
    _copy_run(warm, staging / WARM_START_DIR, (CONFIG_FILE, METRICS_FILE, WARM_START_FILE))
    _copy_run(run, staging / TRAINED_DIR, (CONFIG_FILE, METRICS_FILE, EVAL_FILE))
    _set_warm_start(staging / TRAINED_DIR, _RELATIVE_WARM_START)
    warm_record = warm.read_warm_start() or {}
    record = {"run": run.path.name, "algo": config.algo, "seed": config.seed, "task": config.task,
              "preset": config.preset, "model": config.policy.model, "iterations": config.iterations, "why": why,
              "warm_start_minutes": round(float(warm_record.get("minutes", 0.0)), 2),
              "training_minutes": round(training_minutes(run), 2),
              "warm_start_variations": len(warm_record.get("cloned", []))}
    write_atomic(staging / AGENT_FILE, json.dumps(record, indent=1))
    staging.rename(out)
    return record


def read_agent(folder: str | Path) -> dict[str, Any]:
    """``agent.json`` of a shipped agent, or a ConfigError saying what is missing."""
    path = Path(folder) / AGENT_FILE
    if not path.is_file():
        raise ConfigError(f"agent: no shipped agent at {folder} (no {AGENT_FILE}; `ship_agent` makes one)")
    return json.loads(path.read_text())


def install_agent(folder: str | Path, name: str) -> tuple[RunDir, RunDir]:
    """Copy the shipped agent ``folder`` under the runs root as ``<name>/warm-start`` and
    ``<name>/trained`` (once: a second call finds them and changes nothing, so what a demo played
    there is read back) and point the trained run at the copy of its warm start. Returns both runs.

    ``<name>/agent.json`` records which agent was installed. When the kit ships another agent later
    (a study re-run, a newer pick), the folder of the earlier one is moved aside to
    ``<name>-previous-agent`` (replacing an older such copy) and the new one installed, so that a demo
    never plays a stale agent and nothing it played is deleted."""
    shipped = read_agent(folder)
    target = runs_root() / name
    installed = target / AGENT_FILE
    if target.exists() and (not installed.is_file() or json.loads(installed.read_text()) != shipped):
        aside = target.with_name(f"{name}-previous-agent")
        shutil.rmtree(aside, ignore_errors=True)
        target.rename(aside)
        print(f"{target}: it held the demo of another agent; moved to {aside.name}, installing the shipped one")
    warm, trained = RunDir(target / WARM_START_DIR), RunDir(target / TRAINED_DIR)
    if not trained.exists():
        target.mkdir(parents=True, exist_ok=True)
        for part in (WARM_START_DIR, TRAINED_DIR):
            shutil.rmtree(target / part, ignore_errors=True)
            shutil.copytree(Path(folder) / part, target / part)
        _set_warm_start(target / TRAINED_DIR, str(warm.path.resolve()))
        write_atomic(installed, json.dumps(shipped, indent=1))
    return warm, trained


def _set_warm_start(run_folder: Path, path: str) -> None:
    """Write ``path`` as the run's ``policy.init_adapter`` (the file is rewritten atomically)."""
    config_path = run_folder / CONFIG_FILE
    raw = json.loads(config_path.read_text())
    raw["policy"]["init_adapter"] = path
    write_atomic(config_path, json.dumps(raw, indent=1))

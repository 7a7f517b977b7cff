"""Time real trainer iterations of a preset on this machine and print JSON: seconds per phase,
tokens per second, optimiser steps, peak GPU memory and RSS, and a projection of the full run.

Why: the GPU presets were sized by estimate. This runs the trainer itself (ScienceWorld rollouts,
tip writing, memory, the update) plus a short evaluation, with the preset's batch sizes, LoRA
rank, dtype and checkpointing, so one short run on a CUDA machine says whether a preset fits and
how long its full run takes. ``--random-weights`` swaps in a same-shape random model
(``random:qwen2.5-3b-instruct`` / ``-7b-``, see ``policy/loading.py``), so no network and no
weights are needed; ``--model`` measures a real checkpoint with the same code. ``--memory-cap-gb``
caps PyTorch's allocator, so a larger card shows whether the preset fits a smaller one.

    python benchmarks/preset_check.py --preset cpu-smoke
    python benchmarks/preset_check.py --preset gpu-24gb --random-weights --max-steps 8 --memory-cap-gb 22

A CUDA out-of-memory error is reported as ``"fits": false`` with the phase it happened in; any
other error, or SIGINT (``timeout -s INT``), still prints the JSON gathered so far.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
import traceback
from dataclasses import replace
from pathlib import Path

import torch

from empo2_lite.config import apply_overrides, ConfigError, parse_set_arguments, preset, TrainConfig
from empo2_lite.policy.loading import RANDOM_PREFIX
from empo2_lite.tasks import get_task

PHASES = ("rollout", "tips", "memory", "update")
STEP_SCALED_PHASES = ("rollout", "tips", "update")
"""Phases whose cost grows with episode length (the memory phase is milliseconds)."""
PHASE_OF_FUNCTION = {"collect_rollouts": "rollout", "write_tips": "tips", "add_episode": "memory",
                     "update_policy": "update", "recompute_old_logprobs": "update", "save_checkpoint": "checkpoint"}
"""Where in ``Trainer.run_iteration`` an error happened, read off the traceback's function names."""
GB = 2**30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, help="cpu-smoke, cpu-demo, gpu-24gb or gpu-48gb")
    parser.add_argument("--iterations", type=int, default=1, help="trainer iterations to time (default 1)")
    parser.add_argument("--max-steps", type=int, default=None, help="shorten episodes (rollout.max_steps)")
    parser.add_argument("--eval-variations", type=int, default=None,
                        help="test variations in the timed evaluation (default: one wave of the env pool)")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument("--random-weights", action="store_true",
                         help="same-shape random model of the preset's hub model (no download)")
    weights.add_argument("--model", default=None, help="hub id, local folder or random:<name|config.json>")
    parser.add_argument("--memory-cap-gb", type=float, default=None,
                        help="cap PyTorch's CUDA allocator at this many GiB (emulates a smaller card)")
    return parser.parse_args(argv)


def random_source_for(hub_name: str) -> str:
    """``Qwen/Qwen2.5-3B-Instruct`` -> ``random:qwen2.5-3b-instruct`` (a config in data/model_configs)."""
    if hub_name.count("/") != 1:
        raise ConfigError(f"--random-weights: the preset's model {hub_name!r} is not a hub name; "
                          f"pass --model {RANDOM_PREFIX}<name or config.json> instead")
    return RANDOM_PREFIX + hub_name.split("/")[1].lower()


def build_config(args: argparse.Namespace) -> tuple[TrainConfig, TrainConfig]:
    """The preset as a full run would use it, and the config actually timed (overrides applied,
    periodic evaluation off: this script times one evaluation itself)."""
    full = preset(args.preset)
    overrides: dict[str, object] = parse_set_arguments(args.set)
    if args.random_weights:
        overrides["policy.model"] = random_source_for(full.policy.model)
    elif args.model:
        overrides["policy.model"] = args.model
    if args.max_steps is not None:
        overrides["rollout.max_steps"] = args.max_steps
    timed = apply_overrides(full, {**overrides, "eval_every": 0})
    timed.validate()
    return full, timed


def device_info() -> dict:
    """What the timings were taken on (they are only comparable on the same card)."""
    info = {"torch": torch.__version__, "python": platform.python_version(), "cpu_count": os.cpu_count()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(name=props.name, kind="cuda", total_memory_gb=round(props.total_memory / GB, 2),
                    cuda=torch.version.cuda, bf16=torch.cuda.is_bf16_supported())
    else:
        info.update(name=platform.processor() or platform.machine(), kind="cpu")
    return info


def apply_memory_cap(cap_gb: float | None) -> dict:
    """Cap the CUDA caching allocator before anything is loaded; report what was applied."""
    if cap_gb is None or not torch.cuda.is_available():
        return {"cap_gb": cap_gb, "applied": False}
    total = torch.cuda.get_device_properties(0).total_memory
    fraction = min(1.0, cap_gb * GB / total)
    torch.cuda.set_per_process_memory_fraction(fraction)
    return {"cap_gb": cap_gb, "applied": fraction < 1.0, "fraction": round(fraction, 4)}


def gpu_memory_gb() -> dict:
    """Peak allocated and reserved CUDA memory so far (null on CPU)."""
    if not torch.cuda.is_available():
        return {"peak_allocated_gb": None, "peak_reserved_gb": None}
    return {"peak_allocated_gb": round(torch.cuda.max_memory_allocated() / GB, 3),
            "peak_reserved_gb": round(torch.cuda.max_memory_reserved() / GB, 3)}


def peak_rss_mb() -> float:
    """Peak resident memory of this process (the JVMs are separate processes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def children_rss_mb() -> float | None:
    """Current RSS of this process's children (the ScienceWorld JVMs), if psutil is there."""
    try:
        import psutil
    except ImportError:
        return None
    total = 0
    for child in psutil.Process().children(recursive=True):
        try:
            total += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


def phase_of(error: BaseException, default: str) -> str:
    """The phase an error came from: inside a trainer iteration, the innermost known function
    (rollout, tips, memory, update, checkpoint); elsewhere ``default`` (load, env_pool, evaluation)."""
    if default != "iteration":
        return default
    phase = default
    for frame in traceback.extract_tb(error.__traceback__):
        phase = PHASE_OF_FUNCTION.get(frame.name, phase)
    return phase


def iteration_row(metrics: dict, seconds: float) -> dict:
    """The parts of one iteration's metrics.jsonl row this report needs (missing keys: null)."""
    row = {f"{phase}_s": metrics.get(f"time/{phase}") for phase in PHASES}
    row.update(total_s=round(seconds, 3), mode=metrics.get("mode"),
               generated_tokens=metrics.get("tokens/generated"), prefilled_tokens=metrics.get("tokens/prefilled"),
               update_tokens=metrics.get("tokens/update"), optimizer_steps=metrics.get("update/optimizer_steps"),
               steps_mean=metrics.get("charts/steps_mean"))
    return row


def mean_of(rows: list[dict], key: str) -> float | None:
    """Mean of a per-iteration value over the timed iterations (null when none has it)."""
    values = [row[key] for row in rows if row.get(key) is not None]
    return round(sum(values) / len(values), 3) if values else None


def total_of(rows: list[dict], key: str) -> float | None:
    """Sum of a per-iteration count (null when any iteration lacks it: the metric is not logged)."""
    values = [row.get(key) for row in rows]
    return sum(values) if values and None not in values else None


def per_second(rows: list[dict], key: str) -> float | None:
    """Tokens per second of the rollout phase (env steps included), over all timed iterations."""
    tokens, seconds = total_of(rows, key), sum(row["rollout_s"] or 0 for row in rows)
    return round(tokens / seconds, 1) if tokens is not None and seconds else None


def step_scale(full: TrainConfig, timed: TrainConfig) -> float:
    """How much longer full episodes are than the timed ones (1 when not shortened)."""
    full_steps = full.rollout.max_steps or get_task(full.task).max_steps
    timed_steps = timed.rollout.max_steps or get_task(timed.task).max_steps
    return max(1.0, full_steps / timed_steps)


def projection(report: dict, full: TrainConfig, timed: TrainConfig) -> dict | None:
    """Wall time of the preset's full run: iterations x per-iteration time + periodic evaluations."""
    per_phase, evaluation = report["seconds_per_iteration"], report["evaluation"]
    if per_phase.get("total_s") is None or evaluation.get("seconds") is None:
        return None
    scale = step_scale(full, timed)
    iteration_s = per_phase["total_s"] + (scale - 1) * sum(per_phase[f"{p}_s"] or 0 for p in STEP_SCALED_PHASES)
    episodes = len(get_task(full.task).test_variations) * full.eval_episodes_per_variation
    eval_s = evaluation["seconds"] * scale * episodes / evaluation["episodes"]
    evaluations = full.iterations // full.eval_every if full.eval_every else 0
    seconds = full.iterations * iteration_s + evaluations * eval_s
    note = "iterations x per-iteration time + periodic evaluations (no final evaluation)"
    if scale > 1:
        note += (f"; episodes were cut to {timed.rollout.max_steps} steps, so rollout, tips, update and evaluation "
                 f"times are scaled linearly by {scale:.2f} (longer prompts cost more than linearly: a low estimate)")
    return {"iterations": full.iterations, "evaluations": evaluations, "eval_episodes_each": episodes,
            "seconds_per_iteration": round(iteration_s, 1), "seconds_per_evaluation": round(eval_s, 1),
            "seconds": round(seconds), "hours": round(seconds / 3600, 2), "estimate": True, "note": note}


def notes_for(timed: TrainConfig, scale: float) -> list[str]:
    """What a reader must know before trusting the numbers."""
    notes = []
    if timed.policy.model.startswith(RANDOM_PREFIX):
        notes += ["random weights: every action tends to run to the token limit, so generation times are upper "
                  "bounds", "token counts are approximate: SmolLM2's tokenizer stands in for the model's own"]
    if scale > 1:
        notes.append(f"episodes shortened by {scale:.2f}x; the projection is an estimate")
    return notes


def empty_report(args: argparse.Namespace, full: TrainConfig, timed: TrainConfig, cap: dict) -> dict:
    """Every key of the report, filled in as the run goes (so a failure still prints all keys)."""
    weights = "random" if timed.policy.model.startswith(RANDOM_PREFIX) else "pretrained"
    return {
        "preset": args.preset, "model": timed.policy.model, "weights": weights, "device": device_info(),
        "settings": {"task": timed.task, "iterations_timed": args.iterations, "max_steps": timed.rollout.max_steps,
                     "full_max_steps": full.rollout.max_steps or get_task(full.task).max_steps,
                     "variations_per_iteration": timed.variations_per_iteration, "group_size": timed.group_size,
                     "n_envs": timed.n_envs, "lora_rank": timed.policy.lora_rank, "dtype": timed.policy.dtype,
                     "gradient_checkpointing": timed.policy.gradient_checkpointing,
                     "mini_batch_actions": timed.update.mini_batch_actions,
                     "micro_batch_tokens": timed.update.micro_batch_tokens, "overrides": args.set},
        "memory_cap": cap, "load_s": None, "env_pool_start_s": None, "iterations": [],
        "seconds_per_iteration": {}, "evaluation": {"episodes": None, "seconds": None},
        "tokens": {}, "optimizer_steps": None, "gpu_memory": {}, "peak_rss_mb": None, "jvm_rss_mb": None,
        "fits": True, "oom_phase": None, "error": None, "projection": None,
        "notes": notes_for(timed, step_scale(full, timed)),
    }


def evaluation_task(timed: TrainConfig, pool_size: int, variations: int | None):
    """The preset's task cut to a few test variations: by default one wave of the env pool."""
    task = get_task(timed.task)
    count = variations or max(1, pool_size // timed.eval_episodes_per_variation)
    return replace(task, test_variations=task.test_variations[:count])


def run_check(args: argparse.Namespace, timed: TrainConfig, report: dict) -> None:
    """Load, iterate, evaluate; fill ``report`` as each part finishes."""
    from empo2_lite.env.pool import EnvPool
    from empo2_lite.evaluation import evaluate
    from empo2_lite.runs import RunDir
    from empo2_lite.trainer import Trainer

    report["phase"] = "load"
    began = time.perf_counter()
    trainer = Trainer(timed, RunDir(Path(os.environ["EMPO2_RUNS"]) / timed.name))
    report["load_s"] = round(time.perf_counter() - began, 2)
    report["gpu_memory"]["after_load_allocated_gb"] = gpu_memory_gb()["peak_allocated_gb"]
    report["phase"] = "env_pool"
    began = time.perf_counter()
    with EnvPool(timed.n_envs, timed.env) as pool:
        report["env_pool_start_s"] = round(time.perf_counter() - began, 2)
        for _ in range(args.iterations):
            report["phase"] = "iteration"
            began = time.perf_counter()
            metrics = trainer.run_iteration(pool)
            report["iterations"].append(iteration_row(metrics, time.perf_counter() - began))
            print(f"preset_check: iteration {len(report['iterations'])} {report['iterations'][-1]}",
                  file=sys.stderr, flush=True)
        report["jvm_rss_mb"] = children_rss_mb()
        report["phase"] = "evaluation"
        task = evaluation_task(timed, pool.size, args.eval_variations)
        began = time.perf_counter()
        result = evaluate(trainer.policy, pool, task, timed.rollout, split="test", seed=timed.seed, iteration=0,
                          temperature=timed.eval_temperature,
                          episodes_per_variation=timed.eval_episodes_per_variation)
        report["evaluation"] = {"episodes": len(task.test_variations) * timed.eval_episodes_per_variation,
                                "seconds": round(time.perf_counter() - began, 2),
                                "return_mean": result.get("return_mean")}
    report.pop("phase")


def summarise(report: dict, full: TrainConfig, timed: TrainConfig) -> None:
    """Means over the timed iterations, token rates, memory peaks and the projection."""
    rows = report["iterations"]
    report["seconds_per_iteration"] = {f"{p}_s": mean_of(rows, f"{p}_s") for p in (*PHASES, "total")}
    report["tokens"] = {
        "generated": total_of(rows, "generated_tokens"),
        "prefilled": total_of(rows, "prefilled_tokens"),
        "generated_per_s": per_second(rows, "generated_tokens"),
        "prefilled_per_s": per_second(rows, "prefilled_tokens"),
        "per_s_of": "the rollout phase (environment steps included)",
        "approximate": report["weights"] == "random",
    }
    report["optimizer_steps"] = total_of(rows, "optimizer_steps")
    report["gpu_memory"].update(gpu_memory_gb())
    report["peak_rss_mb"] = peak_rss_mb()
    report["projection"] = projection(report, full, timed)


def main(argv: list[str] | None = None) -> int:
    """Run the check; 0 when it ran (fitting or not), 1 on another error, 2 on a bad setting."""
    args = parse_args(argv)
    try:
        full, timed = build_config(args)
    except ConfigError as error:
        print(f"preset_check: {error}", file=sys.stderr)
        return 2
    cap = apply_memory_cap(args.memory_cap_gb)
    report = empty_report(args, full, timed, cap)
    status = 0
    with tempfile.TemporaryDirectory(prefix="preset-check-runs.") as runs:
        os.environ["EMPO2_RUNS"] = runs
        try:
            run_check(args, timed, report)
        except torch.cuda.OutOfMemoryError as error:
            report.update(fits=False, oom_phase=phase_of(error, report.pop("phase", "?")), error=str(error).split("\n")[0])
        except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 - the JSON must come out regardless
            report["error"] = f"{type(error).__name__} in {phase_of(error, report.pop('phase', '?'))}: {error}"
            traceback.print_exc()
            status = 1
    summarise(report, full, timed)
    text = json.dumps(report, indent=1)
    print(text, flush=True)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())

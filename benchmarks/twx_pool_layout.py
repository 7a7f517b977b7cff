"""TextWorldExpress pool layouts: one JVM holding every slot's game (the kit's choice) against one
JVM per slot (ScienceWorld's layout), on the same games.

Prints one JSON object. For ``--slots`` games of ``--task`` (train seeds), each layout is started
(seconds, resident memory of its JVM processes), then plays ``--episodes`` lock-step waves of
uniformly random valid actions (seeded, the same in both layouts) to the game's step cap:

* ``one_jvm``: ``TextWorldExpressPool``, slots stepped one after another (py4j calls on one gateway);
* ``jvm_per_slot_serial``: one ``TextWorldExpressJVM`` per slot, stepped one after another;
* ``jvm_per_slot_threads``: the same JVMs, each slot stepped in its own thread (what a per-slot
  layout is for: ScienceWorld's pool steps its JVMs in parallel because a step there takes ~30 ms).

Steps per second count every slot's steps; the ratios are measured in this run. What decides the
layout is the step cost next to the model's: a rollout step of the embedded model on the 2-core VM
takes ~0.1-0.7 s per wave (docs/hardware.md), so the environment's share is what the JSON's
``ms_per_wave_step`` shows against that.

Usage: ``python benchmarks/twx_pool_layout.py [--task twx-coin-3] [--slots 8] [--episodes 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import psutil

from empo2_lite.config import EnvConfig
from empo2_lite.env.textworldexpress.adapter import TextWorldExpressGame, TextWorldExpressJVM
from empo2_lite.env.textworldexpress.pool import TextWorldExpressPool


def java_rss_mb() -> float:
    """Resident memory of every java process this one started (py4j launches them as children)."""
    total = 0
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "java" in child.name():
                total += child.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return round(total / 2**20, 1)


def play(games: list[TextWorldExpressGame], task: str, episodes: int, step_all) -> dict:
    """``episodes`` waves of random valid actions on every game; step time only (resets apart)."""
    chooser = random.Random(0)
    steps, step_seconds, waves = 0, 0.0, 0
    for episode in range(episodes):
        for slot, game in enumerate(games):
            game.reset(task, episode * len(games) + slot)
        while True:
            live = [game for game in games if not game.done]
            if not live:
                break
            actions = [chooser.choice(game.valid_actions()) for game in live]
            began = time.perf_counter()
            step_all(live, actions)
            step_seconds += time.perf_counter() - began
            steps += len(live)
            waves += 1
    return {"steps": steps, "steps_per_second": round(steps / step_seconds, 1),
            "ms_per_wave_step": round(1000 * step_seconds / waves, 3)}


def serial(games, actions) -> None:
    for game, action in zip(games, actions):
        game.step(action)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="twx-coin-3")
    parser.add_argument("--slots", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=20)
    args = parser.parse_args()
    result: dict = {"task": args.task, "slots": args.slots, "episodes_per_slot": args.episodes,
                    "cpus": os.cpu_count()}

    began = time.perf_counter()
    with TextWorldExpressPool(args.slots, EnvConfig(name="textworldexpress")) as pool:
        started = time.perf_counter() - began
        games = [pool.game(slot) for slot in range(args.slots)]
        result["one_jvm"] = {"start_seconds": round(started, 2), "java_rss_mb": java_rss_mb(),
                             **play(games, args.task, args.episodes, serial)}

    began = time.perf_counter()
    jvms = [TextWorldExpressJVM() for _ in range(args.slots)]
    try:
        started = time.perf_counter() - began
        games = [TextWorldExpressGame(jvm.new_game()) for jvm in jvms]
        rss = java_rss_mb()
        result["jvm_per_slot_serial"] = {"start_seconds": round(started, 2), "java_rss_mb": rss,
                                         **play(games, args.task, args.episodes, serial)}
        with ThreadPoolExecutor(args.slots) as threads:
            def threaded(live, actions) -> None:
                list(threads.map(lambda pair: pair[0].step(pair[1]), zip(live, actions)))

            result["jvm_per_slot_threads"] = {"start_seconds": round(started, 2), "java_rss_mb": rss,
                                              **play(games, args.task, args.episodes, threaded)}
    finally:
        for jvm in jvms:
            jvm.close()

    one = result["one_jvm"]
    for name in ("jvm_per_slot_serial", "jvm_per_slot_threads"):
        result[f"{name}_vs_one_jvm"] = {
            "steps_per_second_ratio": round(result[name]["steps_per_second"] / one["steps_per_second"], 2),
            "java_rss_ratio": round(result[name]["java_rss_mb"] / max(one["java_rss_mb"], 1e-9), 2),
            "start_seconds_ratio": round(result[name]["start_seconds"] / max(one["start_seconds"], 1e-9), 2)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

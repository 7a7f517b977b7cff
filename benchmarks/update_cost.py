"""Cost of the update: packed trajectories vs one sample per step, and a cpu-demo iteration's phases.

Prints one JSON object:

* ``packed_vs_per_step``: the same scripted episodes (find-animal gold actions then ``look
  around``, ``--steps`` steps, SmolLM2 tokenizer and the embedded default model with LoRA r=8 on
  CPU) turned into training samples twice: packed (full history, one sequence per trajectory) and
  one sample per step (``history_window`` as long as the episode, so each sample holds the whole
  history so far: the same loss, computed the naive way). For each: model tokens processed by one
  update and its wall time, and the ratios.
* ``cpu_demo_iteration``: the per-phase seconds (rollout, tips, memory, update) of one iteration
  of the ``cpu-demo`` preset, read from its metrics.

Usage: ``python benchmarks/update_cost.py [--steps 10] [--skip-iteration]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from empo2_lite.algo.update import TrainSample, response_count, update_policy
from empo2_lite.config import PolicyConfig, RolloutConfig, UpdateConfig
from empo2_lite.env import ScienceWorldAdapter
from empo2_lite.env.pool import EnvPool
from empo2_lite.policy import load_policy
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import collect_rollouts, episode_specs

TASK, VARIATIONS = "find-animal", (0, 1)


def scripted_trajectories(policy, steps: int, history_window: int | None):
    with ScienceWorldAdapter() as adapter:
        scripts = {}
        for variation in VARIATIONS:
            adapter.reset(TASK, variation, gold=True)
            gold = adapter.gold_actions()[:-1]
            scripts[variation] = (gold + ["look around"] * steps)[:steps]

    def sampler(batch):
        responses = []
        for slot, prompt in enumerate(batch):
            variation = VARIATIONS[slot]
            ids = policy.tokenizer(scripts[variation].pop(0) + "\n", add_special_tokens=False).input_ids
            responses.append(SampledResponse(ids, [-1.0] * len(ids), policy.tokenizer.decode(ids), "newline"))
        return responses

    with EnvPool(len(VARIATIONS)) as pool:
        return collect_rollouts(policy, pool, episode_specs(TASK, VARIATIONS, 1, run_seed=0, purpose="benchmark", iteration=0),
                                RolloutConfig(max_steps=steps, history_window=history_window), sampler=sampler,
                                progress=False)


def time_update(policy, trajectories) -> dict:
    batch = [TrainSample.whole(sample, advantage) for trajectory, advantage in zip(trajectories, (1.0, -1.0))
             for sample in trajectory.without_tips]
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-6)
    began = time.perf_counter()
    # One optimiser step over every action of the batch, so both layouts do the same work.
    actions = sum(response_count(item.sample) for item in batch)
    metrics = update_policy(policy, optimizer, batch, UpdateConfig(mini_batch_actions=actions, micro_batch_tokens=8192),
                            temperature=1.0)
    return {"samples": len(batch), "model_tokens": int(metrics["tokens"]), "seconds": round(time.perf_counter() - began, 2)}


def cpu_demo_iteration() -> dict:
    from empo2_lite.runs import RunDir
    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.trainer import Trainer

    with tempfile.TemporaryDirectory() as root:
        os.environ["EMPO2_RUNS"] = root
        config = apply_overrides(preset("cpu-demo"), {"iterations": 1, "name": "bench"})
        [metrics] = Trainer(config, RunDir.named("bench")).train(progress=False)
    return {key.split("/", 1)[1]: value for key, value in metrics.items() if key.startswith("time/")} | {
        "mode": metrics["mode"], "episodes": config.group_size * config.variations_per_iteration,
        "max_steps": config.rollout.max_steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--skip-iteration", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    policy = load_policy(PolicyConfig(lora_rank=8, lora_alpha=16))
    packed = time_update(policy, scripted_trajectories(policy, args.steps, None))
    per_step = time_update(policy, scripted_trajectories(policy, args.steps, args.steps))
    result = {"benchmark": "update_cost", "model": "SmolLM2-135M-Instruct (embedded) + LoRA r=8, CPU",
              "steps_per_episode": args.steps, "episodes": len(VARIATIONS),
              "packed_vs_per_step": {"packed": packed, "one_sample_per_step": per_step,
                                     "token_ratio": round(per_step["model_tokens"] / packed["model_tokens"], 1),
                                     "time_ratio": round(per_step["seconds"] / packed["seconds"], 1)}}
    if not args.skip_iteration:
        result["cpu_demo_iteration"] = cpu_demo_iteration()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

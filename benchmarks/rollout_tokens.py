"""Token counts of multi-turn rollouts, and the CPU wall time of one rollout batch.

Prints one JSON object:

* ``tokens_per_action``: for 30-step find-animal episodes (SmolLM2 tokenizer, full history, two
  demonstrations, no tips), the mean prompt tokens the model prefills per generated action (the
  HF ``generate`` path re-reads the whole prompt each step) and the mean response tokens decoded.
  A scripted policy plays the gold actions and then ``look around``, so the counts are exact and
  machine-independent.
* ``training_tokens_per_trajectory``: tokens one update has to run per trajectory when the episode
  is packed into one sequence, vs one sample per step (each holding the whole history so far), and
  the ratio (goal: packed >= 10x fewer).
* ``cpu_rollout_batch``: wall time of one batch of 8 episodes sampled by the embedded default
  model (SmolLM2-135M) on this CPU, with a short step cap (``--steps``, default 3).

Usage: ``python benchmarks/rollout_tokens.py [--steps N] [--skip-wall-time]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from empo2_lite.config import PolicyConfig, RolloutConfig
from empo2_lite.env import ScienceWorldAdapter
from empo2_lite.env.pool import EnvPool
from empo2_lite.policy import load_policy
from empo2_lite.policy.sampling import SampledResponse
from empo2_lite.rollout import EpisodeSpec, collect_rollouts

TASK, VARIATIONS, STEPS = "find-animal", (0, 1), 30


def scripted_counts(policy) -> dict:
    """Token counts of 30-step episodes played by a scripted policy (gold actions, then looking)."""
    with ScienceWorldAdapter() as adapter:
        scripts = {}
        for variation in VARIATIONS:
            adapter.reset(TASK, variation, gold=True)
            gold = adapter.gold_actions()
            scripts[variation] = gold[:-1] + ["look around"] * (STEPS - len(gold) + 1)  # never finish early
    prefill, decode = [], []
    queues = {variation: list(actions) for variation, actions in scripts.items()}

    def sampler(batch: list[list[int]]) -> list[SampledResponse]:
        responses = []
        for slot, prompt in enumerate(batch):
            ids = policy.tokenizer(queues[VARIATIONS[slot]].pop(0) + "\n", add_special_tokens=False).input_ids
            prefill.append(len(prompt))
            decode.append(len(ids))
            responses.append(SampledResponse(ids, [0.0] * len(ids), policy.tokenizer.decode(ids), "newline"))
        return responses

    with EnvPool(len(VARIATIONS)) as pool:
        trajectories = collect_rollouts(policy, pool, [EpisodeSpec(TASK, v, 0) for v in VARIATIONS],
                                        RolloutConfig(max_steps=STEPS), sampler=sampler, progress=False)
    packed = [len(t.without_tips[0].input_ids) for t in trajectories]
    per_step = []
    for trajectory in trajectories:
        sample = trajectory.without_tips[0]
        ends = [i + 1 for i in range(len(sample.action_mask) - 1) if sample.action_mask[i] and not sample.action_mask[i + 1]]
        ends.append(len(sample.input_ids))
        per_step.append(sum(ends))  # step k's sample = the packed prefix up to the end of action k
    return {
        "episodes": len(trajectories),
        "steps_per_episode": [len(t.turns) for t in trajectories],
        "tokens_per_action": {"prefill_mean": round(statistics.mean(prefill), 1),
                              "decode_mean": round(statistics.mean(decode), 2)},
        "training_tokens_per_trajectory": {"packed": round(statistics.mean(packed)),
                                           "one_sample_per_step": round(statistics.mean(per_step)),
                                           "packed_reduction": round(statistics.mean(per_step) / statistics.mean(packed), 1)},
    }


def cpu_batch_wall_time(policy, steps: int) -> dict:
    """Seconds for one lock-step batch of 8 episodes (8 JVMs) sampled by ``policy``."""
    torch.manual_seed(0)
    specs = [EpisodeSpec(TASK, variation, 0) for variation in range(8)]
    began = time.perf_counter()
    with EnvPool(8) as pool:
        started = time.perf_counter()
        trajectories = collect_rollouts(policy, pool, specs, RolloutConfig(max_steps=steps), progress=False)
        rollout_s = time.perf_counter() - started
    return {"episodes": 8, "max_steps": steps, "torch_threads": torch.get_num_threads(),
            "pool_start_s": round(started - began, 1), "rollout_s": round(rollout_s, 1),
            "seconds_per_step_of_the_batch": round(rollout_s / max(len(t.turns) for t in trajectories), 2),
            "generated_tokens": sum(len(turn.response_ids) for t in trajectories for turn in t.turns)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="step cap for the timed CPU batch")
    parser.add_argument("--skip-wall-time", action="store_true", help="only the token counts")
    args = parser.parse_args()
    policy = load_policy(PolicyConfig(lora_rank=0))
    result = {"benchmark": "rollout_tokens", "model": "SmolLM2-135M-Instruct (embedded)", "task": TASK,
              "cpus": os.cpu_count(), **scripted_counts(policy)}
    if not args.skip_wall_time:
        result["cpu_rollout_batch"] = cpu_batch_wall_time(policy, args.steps)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

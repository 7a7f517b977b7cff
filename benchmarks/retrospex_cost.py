"""What Retrospex's candidates cost: one prefill per step and the candidates decoded from copies of the
episode's cache (``KVCacheSampler.sample_candidates``, the kit's sampler), against every candidate
re-reading the whole prompt (``sample_responses`` on ``candidates`` copies of it, how the kit drew
them before), on the same episodes.

Both play the actor-only arm (the base model choosing among its own candidates, no critic) of the
untrained embedded model on the first ``--variations`` dev variations of ``--task`` (one episode
each, the evaluation's temperature and seeds), on real ScienceWorld JVMs. The draws of a candidate
come from its own seed in both, so both play the same actions up to floating-point differences
between the layouts; the JSON says how many steps chose the same text.

Prints one JSON object: per way, seconds, steps, prompt tokens computed (machine-independent) and
seconds per episode; and the ratios of the two measured in this run.

Usage: ``python benchmarks/retrospex_cost.py [--task find-non-living-thing] [--variations 4]
[--candidates 6] [--max-steps 10]``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

from empo2_lite.baselines import RetrospexSettings
from empo2_lite.baselines.retrospex import RetrospexSampler
from empo2_lite.config import apply_overrides, preset
from empo2_lite.env.pool import EnvPool
from empo2_lite.evaluation import evaluation_specs
from empo2_lite.policy import load_policy
from empo2_lite.policy.sampling import sample_responses
from empo2_lite.rollout import collect_rollouts
from empo2_lite.seeding import candidate_seed
from empo2_lite.tasks import get_task


class ReReadingSampler(RetrospexSampler):
    """The earlier way: each candidate re-reads the whole prompt, episode by episode."""

    def sample(self, keys, prompts, with_logprobs=True, *, seeds=None, temperature=None, top_p=None,
               max_new_tokens=None):
        count, engine = self.settings.candidates, self.engine
        chosen = []
        for key, prompt, seed in zip(keys, prompts, seeds):
            drawn = sample_responses(self.policy, [prompt] * count, temperature=engine.temperature, top_p=engine.top_p,
                                     max_new_tokens=engine.max_new_tokens,
                                     seeds=[candidate_seed(seed, j) for j in range(count)])
            chosen.append(self.choose(self.states[key], drawn))
        self.last_computed = {key: len(prompt) * count for key, prompt in zip(keys, prompts)}
        return chosen

    def release(self, key):
        self.states.pop(key, None)
        return 0


class Counting:
    """Wraps a sampler to add up the prompt tokens it computed at every step."""

    def __init__(self, inner) -> None:
        self.inner, self.computed, self.actions = inner, 0, []

    def sample(self, keys, prompts, *args, **kwargs):
        responses = self.inner.sample(keys, prompts, *args, **kwargs)
        self.computed += sum(self.inner.last_computed.values())
        self.actions += [response.text.strip() for response in responses]
        return responses

    def __getattr__(self, name):
        return getattr(self.inner, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="find-non-living-thing")
    parser.add_argument("--variations", type=int, default=4)
    parser.add_argument("--candidates", type=int, default=6)
    parser.add_argument("--max-steps", type=int, default=10)
    args = parser.parse_args()
    config = apply_overrides(preset("cpu-solve"), {"task": args.task, "rollout.max_steps": args.max_steps,
                                                   "n_envs": args.variations})
    config.validate()
    task = get_task(args.task)
    settings = RetrospexSettings(candidates=args.candidates)
    policy = load_policy(replace(config.policy, lora_rank=0), config.rollout)
    rollout = replace(config.rollout, temperature=config.eval_temperature)
    specs = evaluation_specs(task, 1, split="dev", seed=0, purpose="retrospex-dev", iteration=0)[:args.variations]
    result = {"task": args.task, "variations": args.variations, "candidates": args.candidates,
              "max_steps": args.max_steps, "model": config.policy.model}
    with EnvPool(config.n_envs, config.env) as pool:
        for name, kind in (("one_prefill", RetrospexSampler), ("re_reading", ReReadingSampler)):
            sampler = Counting(kind(policy, settings, None, temperature=rollout.temperature, top_p=rollout.top_p,
                                    max_new_tokens=rollout.max_new_tokens))
            began = time.perf_counter()
            trajectories = collect_rollouts(policy, pool, specs, rollout, progress=False, sampler=sampler,
                                            observe=sampler.inner.observe)
            seconds = time.perf_counter() - began
            steps = sum(len(t.turns) for t in trajectories)
            result[name] = {"seconds": round(seconds, 1), "episodes": len(trajectories), "steps": steps,
                            "prompt_tokens_computed": sampler.computed,
                            "seconds_per_episode": round(seconds / len(trajectories), 1),
                            "return_mean": sum(t.episode_return for t in trajectories) / len(trajectories)}
            result[name + "_actions"] = sampler.actions
    first, second = result["one_prefill_actions"], result.pop("re_reading_actions")
    result["same_actions"] = sum(a == b for a, b in zip(first, second))
    result["compared_actions"] = min(len(first), len(second))
    result.pop("one_prefill_actions")
    result["ratio_seconds"] = round(result["re_reading"]["seconds"] / result["one_prefill"]["seconds"], 2)
    result["ratio_prompt_tokens"] = round(result["re_reading"]["prompt_tokens_computed"]
                                          / result["one_prefill"]["prompt_tokens_computed"], 2)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

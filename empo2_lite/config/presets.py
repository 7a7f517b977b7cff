"""Named presets, and what one iteration of each costs.

* ``cpu-smoke``: a tiny random model (built locally), one task, 2 variations x group 2, at most 4
  steps: an end-to-end iteration in seconds, for tests and CI.
* ``cpu-demo``: the embedded SmolLM2-135M-Instruct, one task, 10-step episodes: minutes on a CPU.
* ``cpu-learn``: the same model on find-animal with the settings under which training measurably
  improves it on a 2-core CPU (group of 8, a LoRA learning rate well above full fine-tuning's,
  5-step episodes): the preset of ``python -m empo2_lite compare`` and data/sample_runs/cpu-learn
  (docs/results-cpu.md says how it was chosen and what it reached). It keeps the 5-step episodes
  those results were measured with; ``--set rollout.max_steps=10`` is the longer variant.
* ``cpu-solve``: the family of settings the plan ``cpu-solve`` (issue #36) screens and trains on a
  2-core CPU: the embedded model on find-non-living-thing (the probe may pick a lifespan task and
  another step cap instead) in 10-step episodes, 2 variations x group 4 per iteration (8 episodes,
  135 s an iteration in the issue's pre-check), cpu-learn's learning rate. The study's screening
  chooses the warm start, the training temperature and the learning rate (docs/cpu-solve-plan.md).
* ``cpu-solve-chosen``: the setting that study chose on dev and trained the shipped agent with
  (docs/results-cpu-solve.md): ``cpu-solve`` at a LoRA learning rate of 3e-4 for 4 iterations,
  started from a warm start cloning 10 train variations (``WARM_START_PRESETS``). A preset cannot
  hold an adapter, so the warm start is its own command first: ``warm-start --preset
  cpu-solve-chosen --task find-non-living-thing``, then ``train --preset cpu-solve-chosen --from
  warm-start-find-non-living-thing``; training it without ``--from`` warns.
* ``cpu-twx``: the ``cpu-solve`` family on TextWorldExpress's coin collector with 3 rooms
  (``env.name = textworldexpress``, ``twx-coin-3``): the embedded model, 10-step episodes, one
  demonstration, 2 variations x group 4. **Unscreened: never trained yet** (issue #39 asks for its
  size to be checked with the untrained model on dev first: docs/textworldexpress-probe-2026-12-07.md);
  its plain iteration is measured (142 s), its memory iteration priced as cpu-solve's. Its study:
  ``study --plan cpu-twx``.
* ``gpu-24gb`` and ``gpu-48gb``: Qwen2.5-3B- and Qwen2.5-7B-Instruct with LoRA in bf16 and
  paper-like settings (group 8, full history, 32-token actions). **Unverified until measured on
  such a GPU** with real weights: one offline check on an H200 with same-shape random weights
  (docs/hardware.md) found their rollouts inside 22 and 44 GB; full iterations are not yet timed.
  Every episode of an iteration is in flight at once (``n_envs`` = episodes per iteration: 32 and
  64 JVMs, ~8 and ~16 GB of host memory at the ~256 MB per JVM measured there), so the decoding
  engine batches all of them and lock-step novelty scores every episode of the iteration alike
  (with two waves, the second wave's episodes were scored after all of the first wave's states).
* ``gpu-learn``: the embedded SmolLM2-135M-Instruct in bf16 on one CUDA GPU, sized to show the agent
  solving a task: find-non-living-thing (of the find tasks, the shortest gold paths, 7-11 steps in
  the kit's demonstrations, and the paper's widest gap between GRPO, 24.7, and EMPO², 100) in
  20-step episodes, 2 variations x group 8 per iteration (groups of 8 kept both outcomes in most
  groups of cpu-learn), 200 iterations, the ``slots`` decoding engine with the LoRA update merged
  for sampling.
  **Unscreened: these settings have never run** (no GPU was lent when it was written; choosing it
  warns). Its learning rate is one of the two that the study's fixed, declared screening compares
  on the dev split (the plan ``gpu``, ``empo2_lite/study/plans/gpu.yaml``; docs/gpu-study.md); the
  study trains with the one it chooses, not necessarily this one.

The cost of each preset lives next to it (``PRESET_COSTS``) so that a change of a preset and of
what it costs are made together; the notebooks turn it into an estimate before heavy cells.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from empo2_lite.config.checks import check_choice
from empo2_lite.config.sections import MemoryConfig, PolicyConfig, RolloutConfig, UpdateConfig
from empo2_lite.config.train import TrainConfig


def _cpu_smoke() -> TrainConfig:
    return TrainConfig(
        preset="cpu-smoke", name="smoke", iterations=2, variations_per_iteration=2, group_size=2, n_envs=4, p=0.5,
        policy=PolicyConfig(model="tiny:byte", lora_rank=4, lora_alpha=8),
        # The tiny model's 8,192 positions less a tip's reserve (closing turn 512, tip 12).
        rollout=RolloutConfig(max_steps=4, max_new_tokens=8, demonstrations=0, max_context_tokens=7668,
                              tip_block_tokens=512),
        memory=MemoryConfig(tip_max_new_tokens=12),
        # One episode per micro-batch: on a CPU a padded batch of rows costs twice their separate
        # forwards (the padding mask keeps attention off its fused kernel).
        update=UpdateConfig(learning_rate=1e-3, mini_batch_actions=16, micro_batch_tokens=1, log_delta=-8.0),
    )


def _cpu_demo() -> TrainConfig:
    return TrainConfig(
        preset="cpu-demo", name="demo", iterations=4, variations_per_iteration=1, group_size=4, n_envs=4,
        # One trajectory per micro-batch with checkpointing: CPU attention keeps its L x L weights
        # for the backward pass, so 4 packed trajectories in one micro-batch peaked at 11.7 GB of
        # RAM; this way it is 2.9 GB and no slower (docs/hardware.md).
        policy=PolicyConfig(lora_rank=8, lora_alpha=16, gradient_checkpointing=True),
        # 10-step episodes: with the KV cache kept across turns a step costs its new tokens only,
        # so twice the steps of the cache-less 5-step version fit about the same time.
        rollout=RolloutConfig(max_steps=10, max_new_tokens=16, demonstrations=1, max_context_tokens=4096,
                              tip_block_tokens=800),
        memory=MemoryConfig(tip_max_new_tokens=32),
        update=UpdateConfig(learning_rate=2e-5, mini_batch_actions=20, micro_batch_tokens=2048),
    )


def _cpu_learn() -> TrainConfig:
    return TrainConfig(
        preset="cpu-learn", name="learn", task="find-animal", iterations=8, variations_per_iteration=1, group_size=8,
        n_envs=8, eval_every=4,
        policy=PolicyConfig(lora_rank=8, lora_alpha=16, gradient_checkpointing=True),
        rollout=RolloutConfig(max_steps=5, max_new_tokens=16, demonstrations=1, max_context_tokens=4096,
                              tip_block_tokens=800),
        memory=MemoryConfig(tip_max_new_tokens=32),
        update=UpdateConfig(learning_rate=1e-3, mini_batch_actions=40, micro_batch_tokens=2048),
    )


def _cpu_solve() -> TrainConfig:
    return TrainConfig(
        preset="cpu-solve", name="solve", task="find-non-living-thing", iterations=5, variations_per_iteration=2,
        group_size=4, n_envs=8, eval_every=0,
        policy=PolicyConfig(lora_rank=8, lora_alpha=16, gradient_checkpointing=True),
        # 10 steps: find-non-living-thing's gold paths take 3-9 actions on train and dev variations.
        rollout=RolloutConfig(max_steps=10, max_new_tokens=16, demonstrations=1, max_context_tokens=4096,
                              tip_block_tokens=800),
        memory=MemoryConfig(tip_max_new_tokens=32),
        update=UpdateConfig(learning_rate=1e-3, mini_batch_actions=40, micro_batch_tokens=2048),
    )


def _cpu_solve_chosen() -> TrainConfig:
    config = _cpu_solve()
    config.preset, config.name, config.iterations = "cpu-solve-chosen", "solve-chosen", 4
    config.update.learning_rate = 3e-4  # the screening's choice over 1e-3 (docs/cpu-solve-plan.md)
    return config


def _cpu_twx() -> TrainConfig:
    config = _cpu_solve()
    config.preset, config.name, config.task = "cpu-twx", "twx", "twx-coin-3"
    config.env.name = "textworldexpress"
    return config


def _gpu_24gb() -> TrainConfig:
    return TrainConfig(
        preset="gpu-24gb", name="gpu24", iterations=100, variations_per_iteration=4, group_size=8, n_envs=32, eval_every=10,
        eval_episodes_per_variation=4,
        policy=PolicyConfig(model="Qwen/Qwen2.5-3B-Instruct", lora_rank=32, lora_alpha=64, gradient_checkpointing=True),
        rollout=RolloutConfig(max_context_tokens=8192, tip_block_tokens=1920),
        update=UpdateConfig(learning_rate=1e-5, mini_batch_actions=128, micro_batch_tokens=8192),
    )


def _gpu_48gb() -> TrainConfig:
    return TrainConfig(
        preset="gpu-48gb", name="gpu48", iterations=100, variations_per_iteration=8, group_size=8, n_envs=64, eval_every=10,
        eval_episodes_per_variation=4,
        policy=PolicyConfig(model="Qwen/Qwen2.5-7B-Instruct", lora_rank=64, lora_alpha=128, gradient_checkpointing=True),
        rollout=RolloutConfig(max_context_tokens=8192, tip_block_tokens=1920),
        update=UpdateConfig(learning_rate=5e-6, mini_batch_actions=128, micro_batch_tokens=8192),
    )


def _gpu_learn() -> TrainConfig:
    return TrainConfig(
        preset="gpu-learn", name="gpu-learn", task="find-non-living-thing", iterations=200, variations_per_iteration=2,
        group_size=8, n_envs=16, eval_every=10, eval_episodes_per_variation=2,
        checkpoint_every=10,  # a checkpoint (adapter + AdamW state) is ~60 MB: 200 of them would be 12 GB
        # The embedded model (LoRA r=16, alpha 32), bf16 on CUDA; checkpointing keeps an update's
        # activations small, so that the study's processes share one card (docs/gpu-study.md).
        policy=PolicyConfig(dtype="bfloat16", device="cuda", gradient_checkpointing=True),
        # 20 steps: room to explore past the 7-11-step gold paths. The longest 20-step prompt with
        # one demonstration is 4,664 tokens (rollout.worst_case_prompt_tokens); 6,144 + a tip's
        # reserve (512 + 32) stays inside the model's 8,192 positions.
        rollout=RolloutConfig(max_steps=20, max_new_tokens=16, demonstrations=1, max_context_tokens=6144,
                              tip_block_tokens=800, engine="slots"),
        memory=MemoryConfig(tip_max_new_tokens=32),
        # 16 episodes of up to 20 steps: 2-4 optimiser steps of 80 actions per iteration.
        update=UpdateConfig(learning_rate=3e-4, mini_batch_actions=80, micro_batch_tokens=4096),
    )


PRESET_BUILDERS: dict[str, Callable[[], TrainConfig]] = {
    "cpu-smoke": _cpu_smoke, "cpu-demo": _cpu_demo, "cpu-learn": _cpu_learn, "gpu-24gb": _gpu_24gb, "gpu-48gb": _gpu_48gb,
    "gpu-learn": _gpu_learn, "cpu-solve": _cpu_solve, "cpu-solve-chosen": _cpu_solve_chosen,
    "cpu-twx": _cpu_twx,
}
PRESETS = tuple(PRESET_BUILDERS)
WARM_START_PRESETS = {"cpu-solve-chosen": 10}
"""Presets whose settings were chosen (and their costs measured) for training from a warm start of
this many train variations (``policy.init_adapter``): training one without a warm start warns."""
NO_GPU_RUN = "no GPU run of the kit so far"
"""Why GPU-only settings are unverified: the reason the kit's warning for settings never run gives."""
UNSCREENED_PRESETS = {"gpu-learn": NO_GPU_RUN,
                      "cpu-twx": "its study, `study --plan cpu-twx`, has not finished"}
"""Presets whose settings were chosen without a screening, each with why: training or evaluating
with one warns (``jobs``, with the kit's warning for settings never run), until a study on the
hardware it is meant for has run it (docs/gpu-study.md)."""


def preset(name: str) -> TrainConfig:
    """A fresh copy of a named preset."""
    check_choice("preset", name, PRESETS)
    return PRESET_BUILDERS[name]()


@dataclass(frozen=True)
class PresetCost:
    """What one iteration of a preset costs, and where that number comes from."""

    iteration_seconds: float
    """One training iteration with the preset's own episode count."""
    episode_seconds: float
    """One evaluation episode (test split, temperature 0.4)."""
    peak_memory_gb: float
    """Peak RAM, ScienceWorld JVMs included (CPU presets), or GPU memory (GPU presets)."""
    source: str
    """"measured on ..." or "estimate"."""
    memory_iteration_seconds: float = 0.0
    """One EMPO² iteration that draws memory rollouts and shows tips (probability ``p``), where it has
    been measured (0: not measured, priced as a plain one). Such an iteration costs several plain
    ones on a CPU: with tips retrieved per step, each step is its own prompt of ~2,000 tokens for the
    old log-probs and the update instead of one packed episode (docs/results-cpu-solve.md)."""


# cpu-smoke: the smoke notebooks on the 2-core VM (model load and JVM start included); cpu-demo:
# `make demo` there with 10-step episodes and the KV cache (44-68 s per iteration, 6.8 s per test
# episode, 3.0 GB RSS plus 4 JVMs); gpu-24gb:
# one H200 iteration with 3-step episodes (48.8 s; 8.6 s for 16 test episodes) scaled to 30 steps;
# gpu-48gb: a guess from the model size. cpu-learn: its comparison runs on the 2-core VM (GRPO
# ~60 s and EMPO² ~70 s per iteration, ~5 s per test episode, 4.8 GB RSS plus 8 JVMs of ~0.25 GB).
# gpu-learn: a guess, never run: 16 episodes of <= 20 steps decoded together, ~12 tokens per action
# at ~20 ms per token step (a 135M model is launch-bound on a GPU), a few seconds of update; GPU
# memory: the context, the bf16 weights, the slots' keys and values, and the update's logits.
# cpu-solve: issue #36's pre-check on the 2-core VM, alone on it (GRPO, find-non-living-thing, 10-step
# cap, 2 variations x group 4: 135 s an iteration; 20 evaluation episodes ~2.3 min, ~7 s each;
# cpu-learn's 4.8 GB RSS plus 8 JVMs); its one EMPO² memory iteration with tips (off-policy) took 939 s
# in the study's seed 0, with a low-priority job beside it for part of it (docs/results-cpu-solve.md).
# cpu-solve-chosen: the CPU solve study's compared runs at that setting (GRPO and GiGPO, seeds 0 and 1:
# 113-142 s an iteration, ~130 on average; their 20 test episodes 92-103 s, ~5 s each; 4.4 GB peak RSS
# plus 8 JVMs of ~0.25 GB) and the same memory iteration.
PRESET_COSTS = {
    "cpu-smoke": PresetCost(15.0, 1.5, 3.0, "measured on a 2-core CPU, see docs/hardware.md"),
    "cpu-demo": PresetCost(60.0, 7.0, 4.5, "measured on a 2-core CPU, see docs/hardware.md"),
    "cpu-learn": PresetCost(70.0, 5.0, 7.0, "measured on a 2-core CPU, see docs/results-cpu.md"),
    "gpu-24gb": PresetCost(480.0, 5.4, 22.0, "estimate scaled from a 3-step iteration on an H200 (random weights), docs/hardware.md"),
    "gpu-48gb": PresetCost(1200.0, 30.0, 44.0, "estimate: not yet measured on a GPU"),
    "gpu-learn": PresetCost(10.0, 0.4, 6.0, "estimate: never run, unscreened (docs/gpu-study.md)"),
    "cpu-solve": PresetCost(135.0, 7.0, 7.0, "measured on a 2-core CPU alone, issue #36's pre-check", 939.0),
    "cpu-solve-chosen": PresetCost(130.0, 5.0, 6.5, "measured on a 2-core CPU, docs/results-cpu-solve.md", 939.0),
    "cpu-twx": PresetCost(142.0, 5.0, 4.6, "measured on a 2-core CPU alone: one EMPO² iteration and 20 dev episodes "
                          "per game, docs/textworldexpress-probe-2026-12-07.md; a memory iteration priced as "
                          "cpu-solve's", 939.0),
}

"""Old log-probs come from the update's own forward pass in every mode, whatever the sampler
recorded: with the recorded values deliberately wrong, the first ratio is still 1 (float32), except
off-policy with the with-tips old log-probs, where it is the tip-free over the with-tips
probability by design. The tip view and the tip-free view are matched by episode step."""

from __future__ import annotations

import pytest
import torch

from empo2_lite import iteration as phases
from empo2_lite.algo.modes import Mode
from empo2_lite.algo.update import action_logprobs, copy_old_logprobs, response_index
from empo2_lite.config import apply_overrides, preset
from empo2_lite.iteration import IterationBatch
from empo2_lite.runs import RunDir
from empo2_lite.trainer import Trainer
from empo2_lite.trajectory import TokenSample
from golden_runs import varying_pool

PERTURBATION = 0.75


@pytest.fixture(scope="module")
def trainer_with_tips(tiny_smollm2_model, tmp_path_factory):
    """A cpu-smoke trainer whose memory already holds a tip for every train variation played, and
    which shows every stored tip (relevance threshold 0), on replayed transitions."""
    config = apply_overrides(preset("cpu-smoke"), {"policy.model": str(tiny_smollm2_model), "name": "old-logprobs",
                                                   "task": "identify-life-stages-2", "memory.relevance_threshold": 0.0,
                                                   "update.micro_batch_tokens": 100_000, "rollout.max_steps": 2,
                                                   "variations_per_iteration": 1})
    trainer = Trainer(config, RunDir(tmp_path_factory.mktemp("runs") / "old-logprobs"))
    pool = varying_pool(config.n_envs)
    first = IterationBatch(0, Mode.PLAIN, trainer.task.train_variations[:config.variations_per_iteration], [0])
    phases.collect(first, trainer.policy, pool, config, trainer.task, trainer.memory, trainer.novelty, trainer.sampler)
    phases.store_tips(first, trainer.memory, config)
    return trainer, pool, first.variations


def batch_ready_to_update(trainer, pool, variations, mode: Mode) -> IterationBatch:
    config = trainer.config
    batch = IterationBatch(1, mode, variations, [trainer.memory.slot_size(config.task, v) for v in variations])
    phases.collect(batch, trainer.policy, pool, config, trainer.task, trainer.memory, trainer.novelty, trainer.sampler)
    phases.rewards(batch, config)
    phases.advantages(batch, config)
    phases.training_samples(batch, config)
    return batch


def perturb(samples: list[TokenSample]) -> None:
    for sample in samples:
        sample.old_logprobs = [value + PERTURBATION if keep else value
                               for value, keep in zip(sample.old_logprobs, sample.action_mask)]


def first_ratios(trainer, batch: IterationBatch) -> torch.Tensor:
    """exp(current - old) of every action token the update reads, before any optimiser step."""
    samples = [item.sample for item in batch.samples]
    with torch.no_grad():
        current, _ = action_logprobs(trainer.policy, samples, trainer.config.logprob_temperature)
    old = [sample.old_logprobs[t] for sample in samples for t in range(1, len(sample.input_ids))
           if sample.action_mask[t]]
    return torch.exp(torch.cat(current) - torch.tensor(old))


def by_step(samples: list[TokenSample], values: list[float] | None = None) -> list[float]:
    """The action tokens' old log-probs (or ``values``, one per action token in sample order),
    ordered by episode step."""
    rows = []
    for sample in samples:
        responses = response_index(sample.action_mask)
        rows += [(sample.steps[responses[t]], t, sample.old_logprobs[t]) for t in range(1, len(sample.input_ids))
                 if sample.action_mask[t]]
    if values is not None:
        rows = [(step, t, value) for (step, t, _), value in zip(rows, values)]
    return [value for _, _, value in sorted(rows)]


@pytest.mark.parametrize("mode, old_view", [(Mode.PLAIN, "with_tips"), (Mode.ON_POLICY_WITH_TIPS, "with_tips"),
                                            (Mode.OFF_POLICY, "without_tips"), (Mode.OFF_POLICY, "with_tips")])
def test_the_first_ratio_ignores_what_the_sampler_recorded(trainer_with_tips, mode, old_view):
    trainer, pool, variations = trainer_with_tips
    trainer.config.off_policy_old_logprob = old_view
    batch = batch_ready_to_update(trainer, pool, variations, mode)
    assert all(t.used_tips for t in batch.played) == mode.uses_memory  # the views differ in memory modes
    for trajectory in batch.played:
        perturb(trajectory.with_tips + trajectory.without_tips)
    phases.old_logprobs(batch, trainer.policy, trainer.config)
    metrics = phases.metrics(batch, trainer.memory)
    if mode is Mode.OFF_POLICY and old_view == "without_tips":  # scored on another view than sampled
        assert batch.logprob_gap is None and "diagnostics/logprob_gap" not in metrics
    else:  # the recorded values were off by that
        assert batch.logprob_gap == pytest.approx(PERTURBATION, abs=1e-3) == metrics["diagnostics/logprob_gap"]
    assert batch.times["old_logprobs"] > 0
    ratios = first_ratios(trainer, batch)
    if mode is Mode.OFF_POLICY and old_view == "with_tips":
        assert (ratios - 1).abs().max() > 1e-3  # tip-free over with-tips probabilities, by design
        for trajectory in batch.played:  # the tip-free tokens carry the with-tips forward's values
            with torch.no_grad():
                expected, _ = action_logprobs(trainer.policy, trajectory.with_tips, trainer.config.logprob_temperature)
            assert torch.allclose(torch.tensor(by_step(trajectory.with_tips, torch.cat(expected).tolist())),
                                  torch.tensor(by_step(trajectory.without_tips)), atol=1e-6)
    else:
        assert (ratios - 1).abs().max() < 1e-6


def test_old_log_probs_cross_views_by_episode_step():
    """Step 1 showed tips (a sample of its own in the tip view); the packed tip-free sample holds
    steps 0..2. Each response takes the values of the same step's response in the other view."""
    def sample(parts: list[tuple[list[int], list[float] | None, int | None]]) -> TokenSample:
        built = TokenSample()
        for ids, logprobs, step in parts:
            built.extend(ids, logprobs is not None, logprobs, step)
        return built

    tip_view = [sample([([1, 2], None, None), ([5, 6], [-0.5, -0.6], 0), ([3], None, None), ([9], None, None),
                        ([7], [-0.7], 2)]),
                sample([([1, 2, 8], None, None), ([4, 4], [-0.4, -0.45], 1)])]
    tip_free = sample([([1, 2], None, None), ([5, 6], [0.0, 0.0], 0), ([3], None, None), ([4, 4], [0.0, 0.0], 1),
                       ([9], None, None), ([7], [0.0], 2)])
    copy_old_logprobs(tip_view, [tip_free])
    assert [v for v, keep in zip(tip_free.old_logprobs, tip_free.action_mask) if keep] == [-0.5, -0.6, -0.4, -0.45, -0.7]
    tip_free.input_ids[-1] = 8  # another token at step 2: the views do not hold the same responses
    with pytest.raises(ValueError, match="step 2"):
        copy_old_logprobs(tip_view, [tip_free])


def test_the_batch_owns_its_samples_and_old_logprobs_fills_them_explicitly(trainer_with_tips):
    """The update reads the batch's own copies, not the trajectories' records through a shared
    reference; ``old_logprobs`` writes the recomputed values into them, by episode step."""
    trainer, pool, variations = trainer_with_tips
    trainer.config.off_policy_old_logprob = "with_tips"
    batch = batch_ready_to_update(trainer, pool, variations, Mode.OFF_POLICY)
    records = {id(sample) for trajectory in batch.played for sample in trajectory.with_tips + trajectory.without_tips}
    assert batch.views == phases.update_views(Mode.OFF_POLICY, "with_tips")
    assert not records & {id(item.sample) for item in batch.samples}
    assert len(batch.sample_episodes) == len(batch.samples)
    for item in batch.samples:  # poison the copies: only an explicit fill can mend them
        item.sample.old_logprobs = [value + 5.0 if keep else value
                                    for value, keep in zip(item.sample.old_logprobs, item.sample.action_mask)]
    phases.old_logprobs(batch, trainer.policy, trainer.config)
    for episode, trajectory in enumerate(batch.played):
        mine = [item.sample for item, owner in zip(batch.samples, batch.sample_episodes) if owner == episode]
        assert by_step(mine) == by_step(trajectory.with_tips)  # the with-tips forward's values, by step
    with pytest.raises(RuntimeError, match="run the training_samples phase first"):
        phases.old_logprobs(IterationBatch(2, Mode.PLAIN, variations, [0]), trainer.policy, trainer.config)

"""The statistics of a batch of episodes, computed in one place for training, evaluation and the
frozen-weight memory loop.

Episodes lost to the environment (``end_reason == "env_failure"``) are counted, not scored: every
statistic but ``env_failures`` and ``end_reasons`` is over the played episodes only.

**Standard error** (``return_se``): the episodes of one variation are not independent samples of
the task (a variation fixes the room layout and the objects), so the error of the mean return is
taken over variations: the sample std of the per-variation mean returns divided by the square
root of the number of variations. With fewer than two variations it cannot be estimated: nan.
"""

from __future__ import annotations

import collections
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from empo2_lite.env.spec import environment_of
from empo2_lite.trajectory import Trajectory, played


@dataclass(frozen=True)
class BatchSummary:
    """What a batch of episodes achieved and cost. Returns are nan when nothing was played; the
    per-step means are 0 then (no step was taken)."""

    episodes: int
    """Played episodes (those not lost to the environment)."""
    env_failures: int
    """Episodes lost to a crashed or hung JVM."""
    return_mean: float
    return_std: float
    """Population std of the played episodes' returns."""
    return_se: float
    """Standard error of ``return_mean`` over variations (module docstring)."""
    return_max: float
    success_rate: float
    per_variation: dict[str, float]
    """Mean return of each variation (keys are variation ids as strings, as in JSON)."""
    per_variation_success: dict[str, float]
    """Share of each variation's episodes that succeeded: what a success rate's gain is paired by."""
    steps_mean: float
    tips_shown_mean: float
    """Tips shown per step."""
    tip_block_share: float
    """Share of steps that showed a tip block (in a memory batch: of its memory steps)."""
    tips_dropped_budget: int
    """Retrieved tips left out of their step's block by its token budget."""
    novelty_mean: float
    """Novelty reward per step."""
    tokens_generated: int
    tokens_prefilled: int
    tokens_prefill_computed: int
    """Of the prompt tokens, those the model computed (fewer than prefilled with the KV cache)."""
    kv_cache_peak_bytes: int
    """The largest KV cache any one episode held (0 without the cache)."""
    end_reasons: dict[str, int]
    """Every episode (environment failures included) counted under its end reason, by reason."""
    response_tokens_mean: float
    """Generated tokens per response."""
    length_limit_share: float
    """Share of responses cut at ``max_new_tokens`` (no newline or end token): a high share means
    the model rambles and its actions are truncated."""
    actions_as_written: float
    """Share of steps whose action the environment executed as the model wrote it, not replaced by
    its projection to a valid action (``Turn.corrected``): how much of the behaviour is the model's
    own. An untrained small model's returns can come from the correction's choices; a warm start
    raises it."""
    extras: dict[str, float] = field(default_factory=dict)
    """The environment's own statistics (``Environment.summary_extras``; ScienceWorld:
    ``success_official_rate``, ``wrong_focus_share``); empty for a batch with no episode."""
    evaluation_fields: tuple[str, ...] = ()
    """Which ``extras`` an evaluation row carries (``Environment.evaluation_fields``)."""
    metric_names: dict[str, str] = field(default_factory=dict)
    """Where each of ``extras`` is logged in ``metrics.jsonl`` (``Environment.metric_names``)."""

    def evaluation_record(self) -> dict[str, Any]:
        """The fields an evaluation row of ``eval.jsonl`` carries, in their order there (the
        environment's fields right after the success rate)."""
        return {"episodes": self.episodes, "env_failures": self.env_failures, "return_mean": self.return_mean,
                "return_std": self.return_std, "return_se": self.return_se, "success_rate": self.success_rate,
                **{name: self.extras[name] for name in self.evaluation_fields if name in self.extras},
                "per_variation": self.per_variation, "per_variation_success": self.per_variation_success,
                "end_reasons": self.end_reasons, "actions_as_written": self.actions_as_written}

    def extra_metrics(self) -> dict[str, float]:
        """``extras`` under their ``metrics.jsonl`` names."""
        return {self.metric_names.get(name, f"environment/{name}"): value for name, value in self.extras.items()}


def summarize(trajectories: Sequence[Trajectory]) -> BatchSummary:
    """The statistics of ``trajectories`` (see ``BatchSummary``); the environment's extras come from
    the environment of their task (every trajectory of a batch plays one environment)."""
    scored = played(trajectories)
    environments = {environment_of(t.task).name for t in trajectories}
    if len(environments) > 1:
        raise ValueError(f"trajectories: one batch mixes environments {sorted(environments)}; summarise each apart")
    environment = environment_of(trajectories[0].task) if trajectories else None
    scores = [t.score for t in scored]
    turns = [turn for t in scored for turn in t.turns]
    variations = sorted({t.variation for t in scored})
    per_variation = {variation: statistics.mean([t.score for t in scored if t.variation == variation])
                     for variation in variations}
    means = list(per_variation.values())
    return BatchSummary(
        episodes=len(scored),
        env_failures=len(trajectories) - len(scored),
        return_mean=statistics.mean(scores) if scores else float("nan"),
        return_std=statistics.pstdev(scores) if scores else float("nan"),
        return_se=statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else float("nan"),
        return_max=max(scores) if scores else float("nan"),
        success_rate=sum(t.success for t in scored) / max(len(scored), 1),
        per_variation={str(variation): mean for variation, mean in per_variation.items()},
        per_variation_success={str(variation): statistics.mean([float(t.success) for t in scored
                                                                if t.variation == variation])
                               for variation in variations},
        steps_mean=statistics.mean([len(t.turns) for t in scored] or [0]),
        tips_shown_mean=statistics.mean([len(turn.tips) for turn in turns] or [0]),
        tip_block_share=sum(bool(turn.tips) for turn in turns) / max(len(turns), 1),
        tips_dropped_budget=sum(turn.tips_dropped for turn in turns),
        novelty_mean=statistics.mean([turn.novelty for turn in turns] or [0.0]),
        tokens_generated=sum(len(turn.response_ids) for turn in turns),
        tokens_prefilled=sum(turn.prompt_tokens for turn in turns),
        tokens_prefill_computed=sum(turn.prompt_tokens_computed for turn in turns),
        kv_cache_peak_bytes=max([t.kv_cache_peak_bytes for t in trajectories] or [0]),
        end_reasons=dict(sorted(collections.Counter(t.end_reason for t in trajectories).items())),
        response_tokens_mean=statistics.mean([len(turn.response_ids) for turn in turns] or [0]),
        length_limit_share=sum(turn.finish == "length" for turn in turns) / max(len(turns), 1),
        actions_as_written=sum(not turn.corrected for turn in turns) / max(len(turns), 1),
        extras=environment.summary_extras(scored) if environment else {},
        evaluation_fields=environment.evaluation_fields if environment else (),
        metric_names=dict(environment.metric_names) if environment else {},
    )

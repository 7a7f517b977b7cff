"""``compare``: algorithms over seeds at one preset, beside the untrained baselines, as a study plan
without a screening (``compare_plan``), its pieces played one after another in this process.

One implementation of "algorithms x seeds + references + paired gains": the pieces are the
study's (``phases.compared_pieces`` and ``phases.reference_pieces``, kinds of ``pieces.PIECE_KINDS``),
the table is ``comparison.tabulate``. What ``compare`` keeps of its own is its command line and its
layout, every piece in one folder (the plan's ``main`` is '.')::

    <algo>-s<seed>/         a trained run: metrics.jsonl per iteration, eval.jsonl (periodic + final)
    naive-s<seed>/          the preset's base model, untrained, on the test split
    memory-only-s<seed>/    the base model with EMPO²'s growing tip memory, ``trials`` times, no training (not Reflexion)
    reflexion-s<seed>/      with ``baselines`` naming it: Reflexion, ``trials`` attempts per variation, and its control
    retrospex-s<seed>/      with ``baselines`` naming it: Retrospex with the critic ``critic``, and its actor-only arm
    logs/<piece>.json       each piece's start and end times (what it cost)

Every piece is skipped when it is already done, so the experiment can be stopped and rerun, or
split across processes (``python -m empo2_lite compare --only grpo-s1`` in parallel, then a plain
``compare`` to collect). ``python -m empo2_lite study --plan`` runs the same with a clock, k
processes at once and a screening on dev.

This module imports no torch: the command line checks its input here before any model loads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from empo2_lite.comparison import comparison_table, run_name, training_config
from empo2_lite.config import (ALGOS, BASELINES, REFLEXION_BASELINE, RETROSPEX_BASELINE, ConfigError, TrainConfig,
                               check_choice, check_integer)
from empo2_lite.study.phases import compared_pieces, reference_pieces
from empo2_lite.study.plan import Plan
from empo2_lite.study.schedule import run_inline

if TYPE_CHECKING:
    import pandas as pd

    from empo2_lite.evaluation import PoolFactory

COMPARED = ("empo2", "grpo")
"""The algorithms this experiment trains by default: the paper's Table 1 pair. Any algorithms of the
table can be given instead (``algos``); each trains into its own ``<algo>-s<seed>`` pieces."""


COMPARE_BASELINES = (*BASELINES, REFLEXION_BASELINE, RETROSPEX_BASELINE)
"""The baselines ``compare`` can play beside the algorithms (default: ``BASELINES``)."""


def pieces(seeds: Sequence[int], algos: Sequence[str] = COMPARED, baselines: Sequence[str] = BASELINES) -> list[str]:
    """Every piece of the experiment by name: the baselines first, then the algorithms, each per seed."""
    return [*(run_name(kind, seed) for seed in seeds for kind in baselines),
            *(run_name(algo, seed) for seed in seeds for algo in algos)]


def check_comparison(preset_name: str, seeds: Sequence[int], *, task: str | None = None,
                     only: Sequence[str] | None = None, trials: int = 3, algos: Sequence[str] = COMPARED,
                     baselines: Sequence[str] = BASELINES, critic: str | None = None) -> dict[str, TrainConfig]:
    """Refuse bad input (a preset, task, repeated seed, algorithm or baseline, unknown algorithm,
    baseline, piece name or trial count, a Retrospex without its critic or a critic of another
    task or model) in one line, and return the trained pieces' validated configs by name; nothing
    heavy is imported or started."""
    for flag, noun, values in (("--seeds", "seed", seeds), ("--algos", "algorithm", algos),
                               ("--baselines", "baseline", baselines)):
        repeated = sorted({value for value in values if list(values).count(value) > 1})
        if repeated:
            raise ConfigError(f"{flag}: {', '.join(map(str, repeated))} given twice; give each {noun} once")
    if not algos:
        raise ConfigError(f"--algos: give at least one of: {', '.join(ALGOS)}")
    for algo in algos:
        check_choice("--algos", algo, ALGOS)
    for baseline in baselines:
        check_choice("--baselines", baseline, COMPARE_BASELINES)
    if (RETROSPEX_BASELINE in baselines) != (critic is not None):
        raise ConfigError(f"--critic: give it when --baselines has {RETROSPEX_BASELINE}, and only then "
                          "(make one with `python -m empo2_lite critic`)")
    check_integer("--trials", trials, minimum=1)
    names = pieces(seeds, algos, baselines)
    unknown = sorted(set(only or ()) - set(names))
    if unknown:
        raise ConfigError(f"--only: {', '.join(unknown)} is not a piece of this experiment; choose from {', '.join(names)}")
    configs = {run_name(algo, seed): training_config(preset_name, algo, seed, task)
               for algo in algos for seed in seeds}
    for config in configs.values():
        config.validate()
    if critic is not None:
        from empo2_lite.baselines.critic_job import critic_folder

        config = next(iter(configs.values()))
        critic_folder(critic, config.task, config.policy.model)
    return configs


def compare_plan(preset_name: str, seeds: Sequence[int], *, task: str, trials: int = 3,
                 algos: Sequence[str] = COMPARED, baselines: Sequence[str] = BASELINES,
                 critic: str | None = None) -> Plan:
    """``compare`` as a plan: no screening, no clock, one process, the baselines asked for (default
    naive and memory-only), the preset's iterations, every piece in the study's folder itself."""
    return Plan(preset=preset_name, algos=list(algos), seeds=list(seeds), references={".": {}}, budget_s=math.inf,
                task=task, baselines=list(baselines), trials=trials, main=".", name="compare", critic=critic)


def run_comparison(root: str | Path, preset_name: str, seeds: Sequence[int], *, task: str | None = None,
                   only: Sequence[str] | None = None, trials: int = 3, algos: Sequence[str] = COMPARED,
                   baselines: Sequence[str] = BASELINES, critic: str | None = None,
                   progress: bool = True, make_pool: PoolFactory | None = None,
                   trainer_class: type | None = None) -> pd.DataFrame:
    """Play every piece not yet done (or those in ``only``), then return ``comparison_table(root)``.

    Bad input is refused (``check_comparison``) before any model loads. ``critic``: the Retrospex
    critic's folder (a name under the runs root or a path; it is passed on as an absolute path, since
    the pieces run under ``root``). ``make_pool`` and ``trainer_class`` are passed to the jobs
    (tests replay recorded episodes).
    """
    configs = check_comparison(preset_name, seeds, task=task, only=only, trials=trials, algos=algos,
                               baselines=baselines, critic=critic)
    if critic is not None:
        from empo2_lite.baselines.critic_job import critic_folder

        critic = str(critic_folder(critic).resolve())
    plan = compare_plan(preset_name, seeds, task=next(iter(configs.values())).task, trials=trials, algos=algos,
                        baselines=baselines, critic=critic)
    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    every = {piece.name: piece for piece in [*reference_pieces(plan, root), *compared_pieces(plan, root, {}, None)]}
    chosen = [every[name] for name in only or pieces(seeds, algos, baselines)]
    run_inline(chosen, progress=progress, logs=root / "logs", make_pool=make_pool, trainer_class=trainer_class)
    return comparison_table(root)

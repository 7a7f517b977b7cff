"""The study: the kit's reproduction job as a library, a command and data.

A study screens settings on the dev split, trains several algorithms over seeds with the choice,
plays the untrained references, evaluates the test split once, tabulates the gains with their
paired standard errors, draws the figures and packs the runs (issue #27's protocol). Its parts:

* ``plan``: the plan, a typed ``Plan`` read from YAML and checked before any torch import;
  ``plans/*.yaml`` ship with the kit (``gpu``, ``cpu``, ``cpu-solve``: issue #36, in parts).
* ``probe``: the untrained model on dev under declared tasks and settings; the plan's rule picks one.
* ``phases``: the probe, phase 1 (warm starts, screening), the choice on dev, phase 2 (compared runs
  and references), OOD; a plan in parts runs one part's stages per call (``--part``).
* ``pieces``: the kinds of piece, as a table (train, reference, probe, warm-start, ood), and the
  piece process.
* ``schedule``: k piece processes at a time, each in its own process group, ended with the study.
* ``estimate``: each phase's minutes from the preset's costs; a plan over budget is refused.
* ``report``: ``study.json``, tables and figures, the archive; ``parts``: files split to travel.
* ``runner``: ``run(plan, work)``, what the command line (``python -m empo2_lite study``),
  ``make study`` and notebooks call; ``compare``: the ``compare`` command, a plan without screening.

Importing this package loads no torch and no pandas; ``run`` loads what it needs when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from empo2_lite.study.plan import PLANS, Plan, read_plan

__all__ = ["PLANS", "Plan", "read_plan", "run"]


def run(plan: Plan | str | Path, work: str | Path, **options: Any) -> dict:
    """``runner.run``: the whole study of ``plan`` in ``work``, continued when it ran there before."""
    from empo2_lite.study.runner import run as run_study

    return run_study(plan, work, **options)

"""Seeded cpu-smoke runs whose every output is pinned in ``tests/data/golden/``.

They guard refactors of the training loop: an EMPO² run whose three iterations draw each mode
once (seed 15: plain, on-policy with tips, off-policy) and a GRPO run, both on
identify-life-stages-2's recorded starts with the policy's own actions (no Java), each evaluated
on the dev split after its last iteration. The tiny model's actions are almost never recorded ones,
so ``VaryingAnswers`` answers them with an observation naming the action and a score computed from
its text: returns (and novelty) then differ within a group, and the advantages and losses are not
all zero. What is pinned: every
metric but times and peak process memory, the evaluation rows but their seconds, and the memory
file. A change that is meant to alter them regenerates the files::

    .venv/bin/python tests/golden_runs.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "data" / "golden"
RUNS = {
    "empo2": {"algo": "empo2", "seed": 15, "iterations": 3, "eval_every": 3},
    "grpo": {"algo": "grpo", "seed": 15, "iterations": 2, "eval_every": 2},
}
VOLATILE_PREFIXES = ("time/", "memory/peak_")
"""Metrics that measure the machine, not the run."""
VOLATILE_EVAL_KEYS = ("seconds",)


def _stable(row: dict, drop_prefixes: tuple[str, ...] = (), drop_keys: tuple[str, ...] = ()) -> dict:
    return {key: value for key, value in row.items() if not key.startswith(drop_prefixes) and key not in drop_keys}


def varying_pool(size: int):
    """A replay pool whose answer to an unrecorded action depends on the action (see the module docstring)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    from replay_pool import ReplayPool

    class VaryingAnswers(ReplayPool):
        @staticmethod
        def _fixed_answer(slot, text: str) -> dict:
            score = sum(text.encode()) % 41 - 20
            return {"observation": f"You tried {text.strip()!r}. Nothing else happens.", "reward": score - slot.score,
                    "score": score, "success": False, "success_official": False, "action": text.strip(),
                    "info": {"corrected": False, "ambiguity_options": [], "end_reason": None}}

    return VaryingAnswers(size, unrecorded="fixed")


def play(name: str) -> dict:
    """Train run ``name`` of ``RUNS`` in a scratch folder and return its pinned outputs."""

    from empo2_lite.config import apply_overrides, preset
    from empo2_lite.runs import RunDir, runs_under
    from empo2_lite.trainer import Trainer

    config = apply_overrides(preset("cpu-smoke"), {**RUNS[name], "name": name, "task": "identify-life-stages-2"})
    with tempfile.TemporaryDirectory() as root, runs_under(root):
        run = RunDir.named(name)
        Trainer(config, run).train(progress=False, pool=varying_pool(config.n_envs))
        memory = run.memory_path.read_text().splitlines() if run.memory_path.exists() else []
        return {"metrics": [_stable(row, VOLATILE_PREFIXES) for row in run.read_metrics()],
                "evals": [_stable(row, drop_keys=VOLATILE_EVAL_KEYS) for row in run.read_evals()],
                "memory": [json.loads(line) for line in memory]}


def golden_path(name: str) -> Path:
    return GOLDEN / f"cpu-smoke-{name}.json"


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in RUNS:
        golden_path(name).write_text(json.dumps(play(name), indent=1, sort_keys=True) + "\n")
        print(f"wrote {golden_path(name)}")


if __name__ == "__main__":
    main()

"""Copy a CPU study's folder into the repository after a part (issues #36 and #39): what the next part
needs on another machine, the shipped results, and the demo's agent. A session's ``runs/`` does not
outlive it, and a study of four parts takes longer than one session.

    python scripts/ship_study.py --study cpu-solve     # runs/cpu-solve (or --work FOLDER)
    python scripts/ship_study.py --study cpu-twx       # runs/cpu-twx

writes, each replaced whole (written beside it, then renamed):

* ``data/<study>-parts/study/``: the study folder without checkpoints, TensorBoard files, step logs
  and pid files, except the warm starts' checkpoints, which later parts start from: copy it back to
  the study's own path and run the next part (docs/cpu-solve-plan.md);
* ``data/sample_runs/<study>/``: the same without any checkpoint and PDF figure (what the tables,
  figures and the gallery read), plus ``agent/``: the compared run with the best test success (then
  return; on a tie, the first by name) and its warm start, packed by ``shipped_agent.ship_agent`` for
  ``make demo``; before any compared run has finished (after part 1), no agent.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from empo2_lite.runs import RunDir
from empo2_lite.shipped_agent import ship_agent
from empo2_lite.study.report import LEFT_OUT

ROOT = Path(__file__).resolve().parents[1]
COMPARED = ("empo2", "gigpo", "grpo")


def copy_tree(work: Path, out: Path, keep_warm_start: bool) -> None:
    """``work`` into ``out`` (replaced) without what neither the next part nor a table reads."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        in_warm_start = keep_warm_start and Path(folder).parent.name == "warm-start"
        return {name for name in names
                if (name in LEFT_OUT and not (in_warm_start and name == "checkpoints"))
                or name.endswith((".pid", ".lock", ".pdf"))}

    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(work, staging, ignore=ignore)
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def best_compared_run(work: Path) -> tuple[Path, str]:
    """The compared run with the highest test success rate, then test return, and why."""
    scored = []
    for path in sorted((work / "main").glob("*")):  # no main/ before part 2
        if not path.name.startswith(tuple(f"{algo}-s" for algo in COMPARED)):
            continue
        tests = [row for row in RunDir(path).read_evals() if row.get("split", "test") == "test" and row.get("kind") == "final"]
        if tests and RunDir(path).latest_checkpoint() is not None:
            scored.append((tests[-1]["success_rate"], tests[-1]["return_mean"], path))
    if not scored:
        raise LookupError(f"{work / 'main'}: no compared run with a test row and a checkpoint yet")
    success, mean, path = max(scored, key=lambda item: (item[0], item[1]))  # a tie: the first by name
    tied = [other.name for s, m, other in scored if (s, m) == (success, mean) and other != path]
    others = ", ".join(f"{p.name} {s:.2f}/{m:.1f}" for s, m, p in sorted(scored, key=lambda item: item[2].name))
    tie = f"; tied with {', '.join(tied)}, the first by name is taken" if tied else ""
    return path, (f"the best test success rate, then return, of the {len(scored)} compared runs with a checkpoint "
                  f"({path.name}: {success:.2f}, {mean:.1f}{tie}; all: {others})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--study", default="cpu-solve", help="the study's name: its folders' defaults")
    parser.add_argument("--work", type=Path, help="the study folder (default runs/<study>)")
    parser.add_argument("--parts", type=Path, help="default data/<study>-parts/study")
    parser.add_argument("--out", type=Path, help="default data/sample_runs/<study>")
    args = parser.parse_args()
    work = (args.work or ROOT / "runs" / args.study).resolve()
    if not work.is_dir():
        raise SystemExit(f"--work: no study folder at {work}")
    parts = args.parts or ROOT / "data" / f"{args.study}-parts" / "study"
    out = args.out or ROOT / "data" / "sample_runs" / args.study
    copy_tree(work, parts, keep_warm_start=True)
    copy_tree(work, out, keep_warm_start=False)
    try:
        run, why = best_compared_run(work)
    except LookupError as missing:
        record = f"not packed: {missing}"
    else:
        record = ship_agent(run, out / "agent", why=why)
    print(json.dumps({"parts": str(parts), "out": str(out), "agent": record}, indent=1))


if __name__ == "__main__":
    main()

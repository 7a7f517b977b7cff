"""Every number docs/results-cpu-solve.md states, computed from the study folder (issue #36).

    python scripts/cpu_solve_numbers.py [--work data/sample_runs/cpu-solve]

Prints, as JSON: per policy its test rows over seeds (solved of 20, ScienceWorld's score > 70,
return, end reasons, actions as written), their mean and std over seeds; the paired gains in test
success and return (``comparison.paired_gain``: each variation averaged over seeds, then the 20
differences) of each algorithm over the better untrained reference, over the warm start alone, and
of EMPO² over GRPO; training success and return per iteration and seed; EMPO²'s memory iterations
(with tips shown, tips per step there) and what its memory holds per variation; GiGPO's step-group
share; minutes per run. The document is
written from this output, and tests/test_cpu_solve_results.py checks the document against it.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from empo2_lite.comparison import paired_gain
from empo2_lite.runs import RunDir

ROOT = Path(__file__).resolve().parents[1]
ALGOS = ("grpo", "empo2", "gigpo")
REFERENCES = {"untrained": "main/naive", "untrained, no demonstration": "reference-d0/naive",
              "untrained + memory": "main/memory-only", "warm start alone": "main/warm-start"}


def test_rows(work: Path, prefix: str) -> list[dict]:
    """The last test row of each seed's run ``prefix-s<seed>``, in seed order."""
    rows = []
    for path in sorted(work.glob(f"{prefix}-s*"), key=lambda path: int(path.name.rsplit("-s", 1)[1])):
        tests = [row for row in RunDir(path).read_evals() if row.get("split", "test") == "test"]
        if tests:
            rows.append({**tests[-1], "run": path.name})
    return rows


def spread(values: list[float]) -> dict:
    return {"values": values, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None}


def policy_summary(rows: list[dict]) -> dict:
    return {"seeds": len(rows),
            "solved": spread([round(row["success_rate"] * row["episodes"]) for row in rows]),
            "success_pct": spread([100 * row["success_rate"] for row in rows]),
            "official_pct": spread([100 * row.get("success_official_rate", 0.0) for row in rows]),
            "return": spread([row["return_mean"] for row in rows]),
            "return_se": [row["return_se"] for row in rows],
            "end_reasons": [row["end_reasons"] for row in rows],
            "actions_as_written": [row.get("actions_as_written") for row in rows]}


def gains(better: list[dict], worse: list[dict]) -> dict:
    success, success_se = paired_gain([row["per_variation_success"] for row in better],
                                      [row["per_variation_success"] for row in worse])
    value, value_se = paired_gain([row["per_variation"] for row in better], [row["per_variation"] for row in worse])
    return {"success_points": 100 * success, "success_se": 100 * success_se, "return": value, "return_se": value_se}


def episodes(row: dict) -> int:
    """An iteration's played episodes: every episode is counted under its end reason."""
    return sum(count for key, count in row.items() if key.startswith("episodes/end_") and key != "episodes/end_env_failure")


def training(work: Path, algo: str) -> dict:
    """Per seed: each iteration's mode, training success (solved of its episodes) and return."""
    table = {}
    for path in sorted(work.glob(f"main/{algo}-s*")):
        rows = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines() if line.strip()]
        table[path.name] = [{"iteration": row["iteration"] + 1, "mode": row["mode"],
                             "solved": round(row["charts/success_rate"] * episodes(row)), "episodes": episodes(row), "return": row["charts/return_mean"],
                             "tips_shown_mean": row.get("charts/tips_shown_mean", 0),
                             "step_group_share": row.get("diagnostics/step_group_share"),
                             "actions_as_written": row.get("diagnostics/actions_as_written"),
                             "seconds": sum(value for key, value in row.items() if key.startswith("time/"))}
                            for row in rows]
    return table


def tips(work: Path, run: str, count: int = 6) -> dict:
    """What a run's memory holds per variation: its most frequent tips, each with how many entries
    hold it and the best final score of the episodes that wrote it."""
    path = work / "main" / run / "memory.jsonl"
    if not path.exists():
        return {}
    by_variation: dict[int, dict[str, list[int]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            by_variation.setdefault(entry["variation"], {}).setdefault(entry["tip"], []).append(entry["score"])
    return {str(variation): [{"tip": tip, "entries": len(scores), "best_score": max(scores)}
                             for tip, scores in sorted(found.items(), key=lambda item: -len(item[1]))[:count]]
            for variation, found in sorted(by_variation.items())}


def fmt(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown(out: dict) -> str:
    """The document's tables: test results per policy (per seed and over seeds), the paired gains,
    training per iteration."""
    lines = ["| policy | solved of 20, per seed | success % (std over seeds) | score > 70 % | test return, per seed | "
             "return (std) | actions as written |", "|---|---|---|---|---|---|---|"]
    for name, policy in out["policies"].items():
        solved, success, official, value = (policy[key] for key in ("solved", "success_pct", "official_pct", "return"))
        written = [share for share in policy["actions_as_written"] if share is not None]
        lines.append(f"| {name} | {', '.join(str(v) for v in solved['values'])} | {fmt(success['mean'])} "
                     f"({fmt(success['std'])}) | {fmt(official['mean'], 0)} | "
                     f"{', '.join(fmt(v) for v in value['values'])} | {fmt(value['mean'])} ({fmt(value['std'])}) | "
                     f"{fmt(statistics.mean(written), 2) if written else '-'} |")
    lines += ["", "| gain, paired by test variation | success, points (se) | return (se) |", "|---|---|---|"]
    for name, gain in out["gains"].items():
        lines.append(f"| {name} | {fmt(gain['success_points'], signed=True)} ({fmt(gain['success_se'])}) | "
                     f"{fmt(gain['return'], signed=True)} ({fmt(gain['return_se'])}) |")
    lines += ["", "| run | iteration 1 | 2 | 3 | 4 | minutes |", "|---|---|---|---|---|---|"]
    for algo, runs in out["training"].items():
        for run, iterations in runs.items():
            cells = [f"{row['solved']}/{row['episodes']}, {fmt(row['return'])}" + (f" ({row['mode'].replace('_', ' ')})"
                                                                   if row["mode"] != "plain" else "")
                     for row in iterations]
            lines.append(f"| {run} | {' | '.join(cells)} | {fmt(sum(row['seconds'] for row in iterations) / 60)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "sample_runs" / "cpu-solve")
    parser.add_argument("--markdown", action="store_true", help="print the document's tables instead of JSON")
    args = parser.parse_args()
    rows = {name: test_rows(args.work, folder) for name, folder in REFERENCES.items()}
    rows.update({algo: test_rows(args.work, f"main/{algo}") for algo in ALGOS})
    untrained = max(("untrained", "untrained, no demonstration"),
                    key=lambda name: statistics.mean(row["success_rate"] for row in rows[name]) if rows[name] else -1)
    out = {"policies": {name: policy_summary(found) for name, found in rows.items() if found},
           "better_untrained": untrained,
           "gains": {f"{algo} over {reference}": gains(rows[algo], rows[reference])
                     for algo in ALGOS for reference in (untrained, "warm start alone") if rows[algo] and rows[reference]},
           "training": {algo: training(args.work, algo) for algo in ALGOS},
           "empo2_tips": {path.name: tips(args.work, path.name) for path in sorted(args.work.glob("main/empo2-s*"))}}
    if rows["empo2"] and rows["grpo"]:
        out["gains"]["empo2 over grpo"] = gains(rows["empo2"], rows["grpo"])
    print(markdown(out) if args.markdown else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The paper's two other baselines on the CPU solve study's setting (issue #38): every number
docs/results-cpu-solve.md states about Reflexion and Retrospex, from their run folders.

    python scripts/cpu_solve_baselines.py [--baselines data/sample_runs/cpu-solve/baselines]
                                          [--study data/sample_runs/cpu-solve] [--markdown]

Reflexion and Retrospex ran with ``compare --preset cpu-solve --task find-non-living-thing
--baselines reflexion retrospex --critic critic-cpu-solve --trials 3 --only <piece>``: the study's
untrained reference settings (10-step cap, one demonstration, temperature 0.4, the 20 test
variations once per seed), so that the study's untrained rows (``main/naive-s<seed>``) are their
Naive. Prints, as JSON, per arm its rows over the seeds (solved of 20, success, return, end
reasons), the paired gains in test success and return over the untrained model (each variation
averaged over each side's seeds, the untrained model's three always, then the 20 differences:
``comparison.paired_gain``; a beam draws no random number, so one seed of Retrospex's beam stands for
all three), Reflexion's reflections
and per-trial record, Retrospex's re-ranking record (beam candidates, and the first measurement's
sampled ones in ``retrospex-sampled/``), and each piece's wall seconds per episode
played (from ``compare``'s ``logs/<piece>.json``), beside the untrained model's from the study's logs.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from empo2_lite.comparison import paired_gain
from empo2_lite.runs import RunDir

ROOT = Path(__file__).resolve().parents[1]
PIECES = {"reflexion": ("", "reflexion"), "retrospex": ("", "retrospex"),
          "retrospex-sampled": ("retrospex-sampled", "retrospex")}
"""Each group of pieces: its sub-folder of the baselines folder and its kind. Retrospex's beam
candidates (the default) sit beside Reflexion; its first measurement, with sampled candidates
(``retrospex.search: sample``), in ``retrospex-sampled/``."""
ARMS = {
    "Reflexion, best of 3 trials": ("reflexion", ()),
    "Reflexion, trial 1": ("reflexion", ("trial_1",)),
    "Reflexion, last trial": ("reflexion", ("last_trial",)),
    "control: best of 3, reflections withheld": ("reflexion", ("control", "best_of_k")),
    "Retrospex, beam of 6 (critic re-ranks)": ("retrospex", ()),
    "actor-only arm, beam of 6 (lambda = 1)": ("retrospex", ("actor_only",)),
    "Retrospex, 6 samples (critic re-ranks)": ("retrospex-sampled", ()),
    "actor-only arm, 6 samples (lambda = 1)": ("retrospex-sampled", ("actor_only",)),
}
"""Each reported arm: its group of pieces and where its evaluation record sits in the piece's test row."""


def seeds_of(folder: Path, kind: str) -> list[int]:
    return sorted(int(path.name.rsplit("-s", 1)[1]) for path in folder.glob(f"{kind}-s*")
                  if any(row.get("split") == "test" for row in RunDir(path).read_evals()))


def test_row(folder: Path, name: str) -> dict:
    """The last test row of run ``name`` under ``folder``."""
    return [row for row in RunDir(folder / name).read_evals() if row.get("split", "test") == "test"][-1]


def record(row: dict, path: tuple[str, ...]) -> dict:
    for key in path:
        row = row[key]
    return row


def spread(values: list[float]) -> dict:
    return {"values": values, "mean": statistics.mean(values),
            "std": statistics.stdev(values) if len(values) > 1 else None}


def arm_summary(records: list[dict], naive: list[dict]) -> dict:
    gain, gain_se = paired_gain([r["per_variation"] for r in records], [n["per_variation"] for n in naive])
    success, success_se = paired_gain([r["per_variation_success"] for r in records],
                                      [n["per_variation_success"] for n in naive])
    return {"seeds": len(records),
            "solved": spread([round(r["success_rate"] * r["episodes"]) for r in records]),
            "success_pct": spread([100 * r["success_rate"] for r in records]),
            "return": spread([r["return_mean"] for r in records]),
            "end_reasons": [r["end_reasons"] for r in records],
            "success_gain_over_untrained_pts": 100 * success, "success_gain_se_pts": 100 * success_se,
            "return_gain_over_untrained": gain, "return_gain_se": gain_se}


def piece_seconds(baselines: Path, name: str) -> float | None:
    """A piece's wall seconds, model load included, from ``compare``'s ``logs/<piece>.json``."""
    path = baselines / "logs" / f"{name}.json"
    if not path.exists():
        return None
    log = json.loads(path.read_text())
    return log["evaluated"] - log["started"]


def collect(baselines: Path, study: Path) -> dict:
    out: dict = {"arms": {}, "cost": {}, **{group: {} for group in PIECES}}
    naive_rows = {seed: test_row(study / "main", f"naive-s{seed}") for seed in (0, 1, 2)}

    def pieces(group: str) -> tuple[Path, str, list[int]]:
        sub, kind = PIECES[group]
        folder = baselines / sub
        return folder, kind, seeds_of(folder, kind)

    for label, (group, path) in ARMS.items():
        folder, kind, seeds = pieces(group)
        if not seeds:
            continue
        rows = [test_row(folder, f"{kind}-s{seed}") for seed in seeds]
        out["arms"][label] = {"group": group, "seeds_played": seeds,
                              **arm_summary([record(row, path) for row in rows], list(naive_rows.values()))}
    folder, kind, seeds = pieces("reflexion")
    for seed in seeds:
        row = test_row(folder, f"{kind}-s{seed}")
        out["reflexion"][seed] = {"reflections": row["reflections"], "solved_at": row["solved_at"],
                                  "control_solved_at": row["control"]["solved_at"],
                                  "episodes_played": row["episodes_played"] + row["control"]["episodes_played"]
                                  - len(row["per_variation"])}  # trial 1 is shared by both arms
    for group in ("retrospex", "retrospex-sampled"):
        folder, kind, seeds = pieces(group)
        for seed in seeds:
            row = test_row(folder, f"{kind}-s{seed}")
            out[group][seed] = {"reranking": row["reranking"], "actor_only_reranking": row["actor_only"]["reranking"],
                                "episodes_played": 2 * row["episodes"]}
    naive_logs = [json.loads((study / "logs" / f"naive-s{seed}.json").read_text()) for seed in (0, 1, 2)]
    out["cost"]["untrained"] = {"seconds_per_episode": [round((log["evaluated"] - log["started"]) / 20, 1)
                                                        for log in naive_logs]}
    for group in PIECES:
        folder, kind, _ = pieces(group)
        per_episode = []
        for seed, info in out[group].items():
            seconds = piece_seconds(folder, f"{kind}-s{seed}")
            per_episode.append(None if seconds is None else round(seconds / info["episodes_played"], 1))
        if per_episode:
            out["cost"][group] = {"seconds_per_episode": per_episode}
    return out


def fmt(value: float | None, digits: int = 1, signed: bool = False) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def markdown(out: dict) -> str:
    """The arms' table and the cost table, as docs/results-cpu-solve.md shows them."""
    lines = ["| arm | solved of 20, per seed | success | return, per seed | return | gain over untrained: "
             "success, pts (se) | return (se) |", "|---|---|---|---|---|---|---|"]
    for label, arm in out["arms"].items():
        lines.append(f"| {label} | {', '.join(str(v) for v in arm['solved']['values'])} | "
                     f"{fmt(arm['success_pct']['mean'], 0)}% | {', '.join(fmt(v) for v in arm['return']['values'])} | "
                     f"{fmt(arm['return']['mean'])} | {fmt(arm['success_gain_over_untrained_pts'], 1, True)} "
                     f"({fmt(arm['success_gain_se_pts'])}) | {fmt(arm['return_gain_over_untrained'], 1, True)} "
                     f"({fmt(arm['return_gain_se'])}) |")
    lines += ["", "| piece | episodes played per seed | wall seconds per episode, per seed |", "|---|---|---|",
              f"| untrained (the study's) | 20 | {', '.join(fmt(v) for v in out['cost']['untrained']['seconds_per_episode'])} |"]
    for group in PIECES:
        if group in out["cost"]:
            played = ", ".join(str(info["episodes_played"]) for info in out[group].values())
            lines.append(f"| {group} | {played} | {', '.join(fmt(v) for v in out['cost'][group]['seconds_per_episode'])} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baselines", type=Path, default=ROOT / "data/sample_runs/cpu-solve/baselines")
    parser.add_argument("--study", type=Path, default=ROOT / "data/sample_runs/cpu-solve")
    parser.add_argument("--markdown", action="store_true", help="print the arms' table as markdown")
    args = parser.parse_args()
    out = collect(args.baselines, args.study)
    print(markdown(out) if args.markdown else json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One solved test episode of the CPU solve study's agent, beside the untrained model and the warm
start alone on the same test variation with the same sampling seed (issue #36: "the transcript of
one solved test episode beside the untrained model's on the same variation").

    python scripts/cpu_solve_transcripts.py --work runs/cpu-solve

The agent is the run ``ship_study.py`` ships (the best compared run by test success, then
return). Its final test evaluation says which test variations it solved; each is played again with
``watch.watch_run`` (the evaluation's temperature and settings) in order, with the sampling seed 0,
until one scores 100: an evaluation episode used its own seed, so a replay need not solve what the
evaluation solved, and every try is listed. The untrained base model (no warm start, no adapter)
and the warm start alone then play that variation with the same seed. Writes
``docs/cpu-solve-transcripts.md``, and the three transcripts as ``watch-*.txt`` into the study folder,
where the gallery notebook shows them (``ship_study.py`` then ships them with the runs); about a
minute on 2 cores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from ship_study import best_compared_run  # noqa: E402

from empo2_lite.runs import RunDir  # noqa: E402
from empo2_lite.watch import transcript, watch_run  # noqa: E402

SEED = 0


def solved_variations(run: Path) -> list[int]:
    """The test variations the run's final evaluation solved, in order."""
    [final] = [row for row in RunDir(run).read_evals() if row.get("kind") == "final" and row.get("split") == "test"][-1:]
    return [int(variation) for variation, success in final["per_variation_success"].items() if success == 1.0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "cpu-solve", help="the study folder")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "cpu-solve-transcripts.md")
    args = parser.parse_args()
    run, why = best_compared_run(args.work)
    tries, solved = [], None
    for variation in solved_variations(run):
        episode = watch_run(run, variation=variation, seed=SEED)
        tries.append(f"variation {variation}: score {episode.score} ({episode.end_reason})")
        print(tries[-1], flush=True)
        if episode.score == 100:
            solved = episode
            break
    if solved is None:
        raise SystemExit(f"{run.name}: no replay of a solved test variation scored 100 ({'; '.join(tries)})")
    untrained = watch_run(run, variation=solved.variation, seed=SEED, untrained=True)
    warm = watch_run(run, variation=solved.variation, seed=SEED, warm_start_only=True)
    config = RunDir(run).config()
    sections = [
        "# One solved test episode, beside the untrained model and the warm start alone",
        "",
        f"Written by `scripts/cpu_solve_transcripts.py` from the study's agent, `{run.name}` ({why}). The three "
        f"episodes play test variation {solved.variation} of {config.task} with the same sampling seed ({SEED}), the "
        f"evaluation's temperature and a {config.rollout.max_steps}-step cap; only the weights differ. `>` is the "
        "command that ran; \"wrote\" is what the model wrote when the action correction replaced it with the "
        "closest valid action.",
        "",
        "Replays of the variations its test evaluation solved, in order, until one scored 100 (a replay uses its "
        "own seed, not the evaluation's): " + "; ".join(tries) + ".",
    ]
    for title, episode in ((f"The agent ({run.name}: warm start, then RL)", solved),
                           ("The untrained model (no warm start, no RL)", untrained),
                           ("The warm start alone (no RL)", warm)):
        sections += ["", f"## {title}: score {episode.score}, {episode.end_reason}", "", "```",
                     transcript(episode), "```"]
    args.out.write_text("\n".join(sections) + "\n")
    for stale in args.work.glob("watch-*.txt"):
        stale.unlink()
    for order, (label, episode) in enumerate((("untrained", untrained), ("warm-start", warm), (f"agent-{run.name}", solved)),
                                             start=1):
        (args.work / f"watch-{order}-{label}-v{solved.variation}.txt").write_text(transcript(episode) + "\n")
    print(f"wrote {args.out} and 3 watch-*.txt in {args.work}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

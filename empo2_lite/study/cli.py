"""``python -m empo2_lite study``: the command line of ``study.run``.

    python -m empo2_lite study --plan cpu --work runs/cpu-study          # a shipped plan, or a YAML file
    python -m empo2_lite study --plan gpu --estimate                     # each phase's minutes; runs nothing
    python -m empo2_lite study --rehearse                                # the GPU plan's rehearsal on a CPU
    python -m empo2_lite study --plan gpu --budget 310 --out "$OUT"      # a time box; the archive in $OUT
    python -m empo2_lite study --plan cpu-solve --part 1                 # one part of a plan in parts

Run again with the same ``--work``, a study continues where it stopped. The parser is built here
without importing anything heavy; the handler imports the study when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from empo2_lite.config import parse_set_arguments


def add_study_parser(commands: argparse._SubParsersAction) -> None:
    """The ``study`` command and its flags."""
    study = commands.add_parser("study", help="a study from a plan: screening on dev, algorithms x seeds, untrained "
                                              "references, the test split once, tables, figures, archive")
    study.add_argument("--plan", default="gpu", help="a plan file (YAML) or a shipped plan: gpu (default), cpu, "
                                                       "cpu-solve")
    study.add_argument("--work", type=Path, help="the study's folder; run again on it, a study continues (default: "
                                                 "<runs root>/<plan name>, -rehearsal appended with --rehearse)")
    study.add_argument("--estimate", action="store_true", help="print each phase's minutes and stop")
    study.add_argument("--rehearse", action="store_true",
                       help="the plan's rehearse block: the tiny model on a CPU, about two minutes")
    study.add_argument("--budget", type=float, dest="budget_s", help="seconds for everything (default: the plan's)")
    study.add_argument("--k", type=int, help="pieces at once (default: the plan's)")
    study.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a setting of every piece, e.g. --set rollout.engine=kv-cache (repeatable)")
    study.add_argument("--out", type=Path, default=os.environ.get("OUT") or None,
                       help="where the archive goes (default $OUT; none without)")
    study.add_argument("--started-at", type=float, help="epoch seconds the budget counts from (default: now)")
    study.add_argument("--part", type=int, help="run only this part of a plan in parts (1, 2, ...; its stages, "
                                                "under the plan's part_limit_s); default: everything")
    study.set_defaults(handler=cmd_study)


def cmd_study(args: argparse.Namespace) -> int:
    """Read and check the plan, print its estimate (and stop with ``--estimate``), run the study,
    print its tables."""
    from empo2_lite.runs import runs_root
    from empo2_lite.study.estimate import check_budget, estimate
    from empo2_lite.study.plan import part_stages, read_plan
    from empo2_lite.study.runner import run

    plan = read_plan(args.plan, args.rehearse, parse_set_arguments(args.set), budget_s=args.budget_s, k=args.k)
    part_stages(plan, args.part)  # a part the plan lacks is refused before anything runs
    found = estimate(plan)
    for line in found.lines(plan) if found else [f"{plan.name}: {plan.preset} has no measured cost; no estimate"]:
        print(line)
    check_budget(plan, found)
    if args.estimate:
        return 0
    work = args.work or runs_root() / (plan.name + ("-rehearsal" if args.rehearse else ""))
    print(f"study folder: {work}", flush=True)
    try:
        record = run(plan, work, out=args.out, started_at=args.started_at, check_estimate=False, part=args.part)
    except KeyboardInterrupt:
        print(f"study: interrupted (Ctrl-C or SIGTERM); every piece it started was ended; the same command with "
              f"--work {work} continues it", file=sys.stderr)
        return 130
    for folder, table in record.get("tables", {}).items():
        print(f"\n== against the untrained model in {folder}/ (test split)\n{table}")
    if record.get("peaks"):
        print(f"peaks of one training process (MB): {record['peaks']}, {plan.k} processes at once")
    untested = record.get("phase2", {}).get("untested")
    if untested:
        print(f"not tested yet: {', '.join(untested)}; run the same command again to train them on and test them",
              file=sys.stderr)
    print(f"study: {time.time() - record['calls'][-1]['started_at']:.0f} s since the start")
    return 0

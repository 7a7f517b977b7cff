"""``study.run(plan, work)``: a whole study in one call, the one function that the command line
(``python -m empo2_lite study``), ``make study`` and the notebooks call alike.

In order: the plan is read and checked and its estimate refused when over budget (nothing has run
yet); ``work`` is locked (a second study in the same folder is refused while the first runs); the
phases run (``phases.run_study``), continuing the record of an earlier call on the same folder;
then the tables and figures (``report.collect``), ``study.json``, and the archive when ``out`` is
given. The record and the archive are written whatever failed before them. Ctrl-C or SIGTERM stops
every piece the study started (``schedule.run_pieces``) and leaves the folder ready to be resumed.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from empo2_lite.config import ConfigError
from empo2_lite.study.estimate import check_budget, estimate
from empo2_lite.study.phases import run_study
from empo2_lite.study.plan import Plan, read_plan
from empo2_lite.study.report import RECORD, collect, pack, write_record
from empo2_lite.study.schedule import Piece, end_leftover_pieces, piece_command

LOCK = ".study.lock"
"""The lock file in a study's folder (held with ``flock`` while a study runs there: the kernel lets
go of it when the process ends, however it ends)."""


@contextmanager
def locked(work: Path) -> Iterator[None]:
    """Hold ``work``'s lock, or refuse in one line naming the process that holds it."""
    work.mkdir(parents=True, exist_ok=True)
    handle = open(work / LOCK, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConfigError(f"--work: a study is running in {work} already (pid {holder}); wait for it, or give "
                          "another folder") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextmanager
def interrupted_by_sigterm() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt as Ctrl-C does, so that the same clean-up runs (the main
    thread only: elsewhere the handler cannot be set and SIGTERM keeps its default)."""
    try:
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(plan: Plan | str | Path, work: str | Path, *, out: str | Path | None = None,
        started_at: float | None = None, command: Callable[[Piece], list[str]] = piece_command,
        check_estimate: bool = True, part: int | None = None) -> dict:
    """Run the study of ``plan`` (a ``Plan``, a plan file or a shipped plan's name) in ``work``,
    continuing what an earlier call there left; return its record (``study.json``). ``out``: where
    the archive goes (none without). ``started_at``: the epoch second the budget counts from
    (default now; the device wrapper passes its own start, so that the machine's setup counts).
    ``part``: only the stages of that part of the plan (``Plan.parts``), under its own clock."""
    plan = plan if isinstance(plan, Plan) else read_plan(plan)
    if check_estimate:
        check_budget(plan, estimate(plan))
    work = Path(work).resolve()
    started_at = time.time() if started_at is None else started_at
    with locked(work), interrupted_by_sigterm():
        for pid in end_leftover_pieces(work / "logs"):
            print(f"ended piece process {pid}, left running by an earlier study in {work}", flush=True)
        path = work / RECORD
        record: dict = json.loads(path.read_text()) if path.exists() else {}
        try:
            run_study(plan, work, started_at, record, command=command, part=part)
            record.update(collect(plan, work))
        finally:
            write_record(work, record)
            if out is not None:
                for archive in pack(work, Path(out), name=plan.name):
                    print(f"archive: {archive} ({archive.stat().st_size / 2**20:.1f} MiB)", flush=True)
    return record

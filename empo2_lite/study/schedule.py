"""How a study runs its pieces: each a process of its own, at most k at a time, killed at its
phase's end or when the study stops (``phases.py`` plans the phases; ``pieces.py`` is what each
process does).

Why processes, each in a session of its own: several runs share one card with nothing to
synchronise (their own CUDA context, JVMs and interpreter), a piece that hangs or runs out of
memory is ended alone, and ending its process group ends its JVMs with it, by its id. The other
side of a session of its own: Ctrl-C at the terminal reaches the study, not its pieces, so
``run_pieces`` ends every group it started whatever way it leaves (an interrupt, SIGTERM turned
into one by ``runner.run``, an error); a study killed outright (SIGKILL) leaves pid files that the
next study in its folder reads to end what it left (``end_leftover_pieces``), so that a resumed
study never races the pieces of the last.

A piece whose results are on disk already is not started again (``PieceKind.done``). While pieces
run, one line per piece says how far it got whenever that changes: its name, the phase, its
iteration of the planned, the time since it started and an estimate of the time left. This module
imports nothing heavy, so the orchestrator stays light until a model is needed.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from empo2_lite.runs import write_atomic
from empo2_lite.study.pieces import PIECE_KINDS, PieceKind

KIT = Path(__file__).resolve().parents[2]
"""The folder that holds the ``empo2_lite`` package: on the pieces' ``PYTHONPATH``, so that every
piece runs this kit, installed or not."""
PROGRESS_EVERY_S = 5.0
"""How often the running pieces' progress is read."""
PID_SUFFIX = ".pid"
"""``logs/<piece>.pid`` while a piece runs (``end_leftover_pieces``)."""


@dataclass
class Piece:
    """One process of the study: its name (and its log's) and its spec (``pieces.py``)."""

    name: str
    spec: dict


def piece_command(piece: Piece) -> list[str]:
    """How a piece is started: ``python -m empo2_lite.study.pieces`` with its spec."""
    return [sys.executable, "-m", "empo2_lite.study.pieces", json.dumps(piece.spec)]


def kind_of(piece: Piece) -> PieceKind | None:
    """The piece's entry of ``PIECE_KINDS`` (None: a stand-in without one, in tests)."""
    return PIECE_KINDS.get(piece.spec.get("kind", ""))


def done_before(piece: Piece) -> bool:
    """Whether the piece's results are on disk already."""
    kind = kind_of(piece)
    return kind is not None and kind.done(piece.spec)


def clock(began: float) -> str:
    """``[  80 s]``: seconds since the study began."""
    return f"[{time.time() - began:4.0f} s]"


def minutes(seconds: float) -> str:
    """``4:05`` (minutes:seconds)."""
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def run_pieces(pieces: list[Piece], k: int, stop_at: float, logs: Path, *,
               command: Callable[[Piece], list[str]] = piece_command, began: float | None = None,
               phase: str = "") -> dict[str, dict]:
    """Run ``pieces`` as processes, at most ``k`` at a time and in order, each in a session of its
    own with its output in ``logs/<name>.log`` and its report in ``logs/<name>.json``; a piece done
    before is skipped. At ``stop_at`` the pieces still running are killed (their process groups:
    the JVMs go with them) and those not started are not; so are they if this function leaves
    early (an interrupt). Returns per piece: exit status (None: killed, or never started), its
    seconds and its report; prints a line as each ends, with the end of its log if it failed."""
    began = time.time() if began is None else began
    waiting, running, outcomes = [], {}, {}
    for piece in pieces:
        if done_before(piece):
            print(f"{clock(began)} {phase} {piece.name}: done before, not run again", flush=True)
            outcomes[piece.name] = {"exit": 0, "seconds": 0.0, "done_before": True}
        else:
            waiting.append(piece)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1",
                   "PYTORCH_CUDA_ALLOC_CONF": "expandable_segments:True",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(KIT), os.environ.get("PYTHONPATH")])),
                   **{name: str(max(1, (os.cpu_count() or 1) // k)) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    shown: dict[str, tuple] = {}
    read_at = 0.0
    try:
        while waiting or running:
            while waiting and len(running) < k and time.time() < stop_at:
                piece = waiting.pop(0)
                spec = {**piece.spec, "report": str(logs / f"{piece.name}.json")}
                log = open(logs / f"{piece.name}.log", "w")
                process = subprocess.Popen(command(Piece(piece.name, spec)), stdout=log, stderr=subprocess.STDOUT,
                                           env=environment, start_new_session=True)
                (logs / f"{piece.name}{PID_SUFFIX}").write_text(str(process.pid))
                running[piece.name] = (piece, process, log, time.time())
            stopping = time.time() >= stop_at
            if time.time() >= read_at:
                read_at = time.time() + PROGRESS_EVERY_S
                for piece, _, _, started in running.values():
                    _print_progress(piece, started, phase, began, shown)
            for name, (piece, process, log, started) in list(running.items()):
                if process.poll() is None and not stopping:
                    continue
                if process.poll() is None:
                    print(f"{clock(began)} {phase} {name}: killed at the phase's end", flush=True)
                _end_group(process, logs / f"{name}{PID_SUFFIX}")
                log.close()
                report_path = logs / f"{name}.json"
                report = json.loads(report_path.read_text()) if report_path.exists() else {}
                outcomes[name] = {"exit": process.returncode if process.returncode >= 0 else None,
                                  "seconds": round(time.time() - started, 1), **report}
                del running[name]
                _print_end(name, outcomes[name], logs / f"{name}.log", began, phase)
            if stopping and waiting:
                print(f"{clock(began)} {phase} not started (the phase's end came first): "
                      + ", ".join(piece.name for piece in waiting), flush=True)
                outcomes.update({piece.name: {"exit": None, "seconds": 0.0, "not_started": True} for piece in waiting})
                waiting = []
            time.sleep(0.2 if running else 0)
    finally:
        for name, (_, process, log, _) in running.items():  # an interrupt: no piece outlives the study
            _end_group(process, logs / f"{name}{PID_SUFFIX}")
            log.close()
    return outcomes


def run_inline(pieces: list[Piece], *, progress: bool = True, logs: Path | None = None,
               **job_options: Any) -> dict[str, dict]:
    """Play ``pieces`` one after another in this process, without a clock, each skipped when done
    before (``compare``: the same pieces as a study's; ``job_options`` reach the jobs). With ``logs``,
    each piece played leaves its report in ``logs/<name>.json`` as a study's piece does (its start
    and end times: what a baseline costs per episode is read from them)."""
    outcomes = {}
    for piece in pieces:
        if done_before(piece):
            outcomes[piece.name] = {"exit": 0, "done_before": True}
            continue
        outcomes[piece.name] = {"exit": 0, **kind_of(piece).play(piece.spec, time.time(), progress=progress,
                                                                 **job_options)}
        if logs is not None:
            logs.mkdir(parents=True, exist_ok=True)
            write_atomic(logs / f"{piece.name}.json", json.dumps(outcomes[piece.name]) + "\n")
    return outcomes


def _end_group(process: subprocess.Popen, pid_file: Path) -> None:
    """Kill what is left of a piece's process group (the piece itself when it is still running; a
    JVM of a piece that crashed), then reap the piece and forget its pid file."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    pid_file.unlink(missing_ok=True)


def end_leftover_pieces(logs: Path) -> list[int]:
    """Kill the process groups of pieces that a study killed outright (SIGKILL leaves no time to end
    them) left running, from their pid files in ``logs``: a piece process of this kit only, so that
    a pid the system gave to another process since is left alone. Returns the pids ended."""
    import psutil

    ended = []
    for path in sorted(logs.glob(f"*{PID_SUFFIX}")) if logs.is_dir() else []:
        pid = int(path.read_text() or 0)
        try:
            if pid and "empo2_lite.study.pieces" in psutil.Process(pid).cmdline():
                os.killpg(pid, signal.SIGKILL)
                ended.append(pid)
        except (psutil.Error, ProcessLookupError, PermissionError):
            pass
        path.unlink(missing_ok=True)
    return ended


def _print_progress(piece: Piece, started: float, phase: str, began: float, shown: dict[str, tuple]) -> None:
    """The piece's line when its progress changed since the last one: name, phase, iteration of
    the planned, time since it started, and the time left at its pace so far."""
    kind = kind_of(piece)
    if kind is None:
        return
    try:
        done, planned = kind.progress(piece.spec)
    except (OSError, ValueError):  # a file being written: read it next time
        return
    if shown.get(piece.name) == (done, planned):
        return
    shown[piece.name] = (done, planned)
    elapsed = time.time() - started
    clock_ends = min(started + (piece.spec.get("train_seconds") or math.inf), piece.spec.get("train_until") or math.inf)
    pace = elapsed / done * (planned - done) if planned and done else math.inf
    eta = min(pace, clock_ends - time.time())
    left = f", ETA {minutes(max(eta, 0))}" if math.isfinite(eta) else ""
    of = f"/{planned}" if planned else " (until the clock)" if piece.spec.get("until_the_clock") else ""
    print(f"{clock(began)} {phase} {piece.name}: {kind.unit} {done}{of}, {minutes(elapsed)} elapsed{left}", flush=True)


def _print_end(name: str, outcome: dict, log: Path, began: float, phase: str) -> None:
    """One line per finished piece; the last lines of its log when it failed."""
    done = f", {outcome['iterations']} iteration(s)" if "iterations" in outcome else ""
    cut = " (cut by the clock)" if outcome.get("cut") else ""
    print(f"{clock(began)} {phase} {name}: exit {outcome['exit']} after {outcome['seconds']:.0f} s{done}{cut}",
          flush=True)
    if outcome["exit"] != 0:
        lines = log.read_text(errors="replace").strip().splitlines()[-6:]
        print("\n".join(f"    | {line}" for line in lines), flush=True)

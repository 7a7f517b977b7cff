"""JSON-lines files that a killed process may have been appending to: the one place that writes,
reads and cuts them (the run's results files through ``runs.RunDir``, the tip memory through
``memory/store.py``).

Why one owner: both kinds are append-only and must survive a kill at any instant, so a row is on
disk (flushed and fsynced) before ``append_rows`` returns, and a kill mid-write leaves at most one
torn last line. The two readers differ in what they make of such a line, on purpose:

* ``read_rows`` (results files) refuses any line that is not a record, the last included, with a
  one-line ``DamagedRunFileError``: a results file is cut back to a checkpoint's size on resume
  (``cut_to``), so a torn line is never read in a run that is still going.
* ``read_intact`` (the tip memory, replayed whole at load) drops a torn last line, or a damaged
  last complete one, with a warning and cuts it from the file so the next append starts on a clean
  line; damage before the last line is not guessed at (a one-line error, the file left as it is).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from empo2_lite.errors import DamagedRunFileError

logger = logging.getLogger(__name__)
T = TypeVar("T")


def append_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append ``rows`` as JSON lines in one write (creating the folder), on disk when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as file:
        file.write("".join(json.dumps(row) + "\n" for row in rows))
        file.flush()
        os.fsync(file.fileno())


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every record of ``path`` in order ([] when it is missing; blank lines skipped); a line that
    is not a record, wherever it is, is a one-line error naming it."""
    if not path.exists():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise DamagedRunFileError(f"{path}: line {number} is not a JSON record ({error.msg}); "
                                      "fix or delete that line") from None
    return rows


def read_intact(path: Path, parse: Callable[[Any], T], *, record: str, repair: str) -> list[T]:
    """``parse`` of each record of ``path`` in order ([] when it is missing), the last line dropped
    with a warning and cut from the file when a kill tore it (module docstring). ``parse`` raises
    TypeError for a row it cannot take; an earlier bad line raises ``DamagedRunFileError``: "line N
    is not ``record`` (why); ``repair``"."""
    if not path.exists():
        return []
    with open(path, "rb") as file:
        lines = file.read().split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    parsed, good_bytes = [], 0
    for number, raw in enumerate(complete, start=1):
        try:
            parsed.append(parse(json.loads(raw)))
        except (json.JSONDecodeError, TypeError) as error:
            if number == len(complete) and not tail:
                logger.warning("%s: dropped a damaged last record (%s)", path, error)
                break
            raise DamagedRunFileError(f"{path}: line {number} is not {record} ({error}); {repair}") from error
        good_bytes += len(raw) + 1
    if tail:
        logger.warning("%s: dropped a partial last record (%d bytes)", path, len(tail))
    cut_to(path, good_bytes)
    return parsed


def cut_to(path: Path, size: int) -> None:
    """Cut ``path`` back to its first ``size`` bytes when it is longer (a missing or shorter file is
    left as it is: nothing is ever grown)."""
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as file:
            file.truncate(size)

"""No ScienceWorld JVM outlives its owner: close, an exception, interpreter exit, or SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from empo2_lite.config import EnvConfig
from empo2_lite.env import ScienceWorldAdapter

pytestmark = pytest.mark.jvm

OWNER_SCRIPT = """
import sys, time
from empo2_lite.env import ScienceWorldAdapter
adapter = ScienceWorldAdapter()
adapter.reset("find-animal", 0)
print(adapter.jvm.pid, flush=True)
if sys.argv[1] == "sleep":
    time.sleep(600)
"""


def gone(pid: int, within_s: float = 15.0) -> bool:
    """Whether process ``pid`` has exited (or is a zombie awaiting its reaper) within the time."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def start_owner(mode: str) -> tuple[subprocess.Popen, int]:
    owner = subprocess.Popen([sys.executable, "-c", OWNER_SCRIPT, mode], stdout=subprocess.PIPE, text=True)
    pid = int(owner.stdout.readline())
    assert psutil.pid_exists(pid)
    return owner, pid


def test_close_stops_the_jvm():
    adapter = ScienceWorldAdapter()
    pid = adapter.jvm.pid
    adapter.close()
    adapter.close()  # idempotent
    assert gone(pid, 5)


def test_exception_inside_the_context_stops_the_jvm():
    with pytest.raises(RuntimeError, match="boom"):
        with ScienceWorldAdapter() as adapter:
            pid = adapter.jvm.pid
            raise RuntimeError("boom")
    assert gone(pid, 5)


def test_heap_is_capped():
    with ScienceWorldAdapter(EnvConfig(heap_mb=256)) as adapter:
        assert "-Xmx256m" in psutil.Process(adapter.jvm.pid).cmdline()


def test_interpreter_exit_without_close_stops_the_jvm():
    owner, pid = start_owner("exit")
    assert owner.wait(timeout=60) == 0
    assert gone(pid)


def test_sigkilled_owner_takes_its_jvm_with_it():
    owner, pid = start_owner("sleep")
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(timeout=10)
    assert gone(pid), f"JVM {pid} survived the SIGKILL of its owner"

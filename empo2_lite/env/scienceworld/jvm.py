"""One ScienceWorld simulator in its own JVM: heap capped, and never left running.

Why not ``scienceworld.ScienceWorldEnv``: it starts the JVM without a heap cap (~1.3 GB RSS each)
and its ``step()`` lists every valid action (~25 of ~31 ms) and re-reads look/inventory on every
call. We launch the same jar through py4j ourselves, with ``-Xmx``, and talk to the simulator's
``PythonInterface`` directly, so the adapter fetches only what it needs.

Why one JVM per simulator: several simulators inside one JVM give wrong scores when stepped from
threads. A JVM is ~0.4 GB RSS at the default 512 MB heap, so eight of them fit a laptop.

Never left running: the JVM is started with py4j's ``die_on_exit`` (it exits when its stdin pipe
closes, which also happens when this Python process is SIGKILLed), ``close()`` kills and reaps it,
and a ``weakref.finalize`` closes any JVM still open when the interpreter exits.

Quiet py4j: when a JVM dies mid-call (killed, out of memory), py4j logs the broken connection with
full tracebacks, partly through its ``py4j`` loggers and partly through the root logger
(``logging.exception``). The failure also reaches the caller as an exception, which the pool turns
into one warning line and recovers from, so py4j's own records are dropped (``quiet_py4j``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import weakref
from typing import Any

import py4j
from py4j.java_gateway import GatewayParameters, JavaGateway, launch_gateway
from scienceworld.constants import BASEPATH, JAR_PATH

from empo2_lite.errors import JavaMissingError

logger = logging.getLogger(__name__)
PY4J_SOURCES = os.path.dirname(py4j.__file__) + os.sep


class _NotFromPy4J(logging.Filter):
    """Drops the records py4j logs through the root logger (recognised by their source file)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(PY4J_SOURCES)


_NOT_FROM_PY4J = _NotFromPy4J()


def quiet_py4j() -> None:
    """Silence py4j's own logging (module docstring); idempotent."""
    logging.getLogger("py4j").setLevel(logging.CRITICAL)
    logging.getLogger().addFilter(_NOT_FROM_PY4J)


def _stop(gateway: JavaGateway | None, process: subprocess.Popen) -> None:
    """Close the py4j connections, then kill and reap the JVM (idempotent, never raises)."""
    if gateway is not None:
        try:
            gateway.close()
        except Exception:  # noqa: BLE001 - best effort: the JVM may already be gone
            logger.debug("py4j close failed", exc_info=True)
    if process.poll() is None:
        process.kill()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        logger.warning("JVM %d did not exit within 10 s of SIGKILL", process.pid)


class ScienceWorldJVM:
    """A running JVM holding one ScienceWorld simulator, reachable as ``.server``."""

    def __init__(self, heap_mb: int = 512, jvm_options: tuple[str, ...] = ()) -> None:
        quiet_py4j()
        if shutil.which("java") is None:
            raise JavaMissingError(
                "java was not found on PATH: ScienceWorld needs Java >= 11 "
                "(Debian/Ubuntu: apt-get install default-jre-headless; or run `make setup` as root)"
            )
        port, process = launch_gateway(
            classpath=JAR_PATH,
            die_on_exit=True,
            cwd=BASEPATH,
            return_proc=True,
            javaopts=[f"-Xmx{heap_mb}m", *jvm_options],
        )
        self.process: subprocess.Popen = process
        self._finalizer = weakref.finalize(self, _stop, None, process)
        self._gateway = JavaGateway(
            gateway_parameters=GatewayParameters(auto_field=True, port=port), java_process=process
        )
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop, self._gateway, process)
        self.server: Any = self._gateway.jvm.scienceworld.runtime.pythonapi.PythonInterface()

    @property
    def pid(self) -> int:
        """Process id of the JVM."""
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Whether the JVM process is still running."""
        return self.process.poll() is None

    def close(self) -> None:
        """Stop the JVM and wait until the process is gone. Safe to call twice, or from a thread
        other than the one blocked in a call to this JVM (that call then raises)."""
        self._finalizer()

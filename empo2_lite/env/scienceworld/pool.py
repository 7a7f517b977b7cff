"""ScienceWorld's pool: one adapter (one JVM) per slot, stepped concurrently, for lock-step episodes.

Why threads: a ScienceWorld step is a socket round trip into a JVM, so Python threads wait in I/O
while the JVMs compute; two JVMs keep two cores busy. Each slot has its own single-thread worker,
so the calls of one slot run in order (a restart queued after a failure runs before that slot's
next reset) and slots never share a JVM.

Why timeouts everywhere: a JVM can crash or hang (out of heap, a simulator bug). Every pool call
waits at most ``EnvConfig.step_timeout_s`` (``reset_timeout_s`` for resets). A slot that fails or
times out has its JVM killed (which also unblocks its worker) and restarted in the background; its
episode ends with an :class:`EpisodeFailure` and the other episodes carry on.

Lock-step use::

    with EnvPool(4) as pool:
        starts = pool.reset([("find-animal", 0)] * 4)
        while pool.active:
            results = pool.step({slot: policy(slot) for slot in pool.active})
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from empo2_lite.config import EnvConfig
from empo2_lite.env.episode import EpisodeFailure, EpisodeStart, StepResult
from empo2_lite.env.scienceworld.adapter import ScienceWorldAdapter

logger = logging.getLogger(__name__)
T = TypeVar("T")


class EnvPool:
    """``size`` ScienceWorld adapters, started in parallel, one JVM each."""

    def __init__(self, size: int, config: EnvConfig | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size: {size!r} is not allowed; it must be an integer >= 1")
        self.config = config or EnvConfig()
        self.config.validate()
        self._workers = [cf.ThreadPoolExecutor(1, thread_name_prefix=f"sciworld-{i}") for i in range(size)]
        self._adapters: list[ScienceWorldAdapter | None] = [None] * size
        self._active: set[int] = set()
        self.failures = 0
        """Episodes lost to JVM failures since the pool started."""
        try:
            starts = [self._workers[i].submit(ScienceWorldAdapter, self.config) for i in range(size)]
            for i, future in enumerate(starts):
                self._adapters[i] = future.result(timeout=self.config.reset_timeout_s)
        except BaseException:
            self.close()
            raise

    @property
    def size(self) -> int:
        """Number of slots (JVMs)."""
        return len(self._workers)

    @property
    def active(self) -> list[int]:
        """Slots whose episode is still running, in order."""
        return sorted(self._active)

    def adapter(self, slot: int) -> ScienceWorldAdapter:
        """The adapter of ``slot`` (for on-demand views such as ``valid_actions``)."""
        adapter = self._adapters[slot]
        if adapter is None:
            raise RuntimeError(f"slot {slot} has no adapter (the pool is closed)")
        return adapter

    def reset(self, episodes: Sequence[tuple[str, int]], *, gold: bool = False,
              max_steps: int | None = None) -> list[EpisodeStart | EpisodeFailure]:
        """Start one episode per (task, variation), slot i playing ``episodes[i]``.

        ``max_steps`` overrides the tasks' step caps. Bad task names or variations raise before
        any episode starts.
        """
        if len(episodes) > self.size:
            raise ValueError(f"episodes: {len(episodes)} episodes do not fit a pool of {self.size}")
        for task, variation in episodes:
            self.adapter(0).check_episode(task, variation)
        results = self._run_all(
            {slot: (lambda a, t=task, v=variation: a.reset(t, v, gold=gold, max_steps=max_steps)) for slot, (task, variation) in enumerate(episodes)},
            self.config.reset_timeout_s,
        )
        self._active = {slot for slot, result in results.items() if isinstance(result, EpisodeStart)}
        return [results[slot] for slot in range(len(episodes))]

    def step(self, actions: Mapping[int, str]) -> dict[int, StepResult | EpisodeFailure]:
        """Step the given active slots concurrently; finished or failed episodes drop out."""
        inactive = sorted(set(actions) - self._active)
        if inactive:
            raise ValueError(f"actions: slots {inactive} have no running episode; active slots: {self.active}")
        results = self._run_all(
            {slot: (lambda a, text=text: a.step(text)) for slot, text in actions.items()},
            self.config.step_timeout_s,
        )
        for slot, result in results.items():
            if isinstance(result, EpisodeFailure) or result.done:
                self._active.discard(slot)
        return results

    def abandon(self, slot: int) -> None:
        """End ``slot``'s episode early (say, its prompt outgrew the model's context); the JVM stays."""
        self._active.discard(slot)

    def close(self) -> None:
        """Stop every JVM and worker thread."""
        for adapter in self._adapters:
            if adapter is not None:
                adapter.close()
        for worker in self._workers:
            worker.shutdown(wait=True, cancel_futures=True)
        self._adapters = [None] * len(self._workers)
        self._active.clear()

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _run_all(self, calls: Mapping[int, Callable[[ScienceWorldAdapter], T]], timeout_s: float) -> dict[int, T | EpisodeFailure]:
        """Run each slot's call on its worker; a failure or timeout fails that slot only."""
        futures = {slot: self._workers[slot].submit(call, self.adapter(slot)) for slot, call in calls.items()}
        deadline = time.monotonic() + timeout_s
        results: dict[int, T | EpisodeFailure] = {}
        for slot, future in futures.items():
            try:
                results[slot] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except cf.TimeoutError:
                results[slot] = self._fail(slot, f"no answer within {timeout_s:g} s (JVM hung)")
            except Exception as error:  # noqa: BLE001 - any JVM/py4j failure ends this episode only
                results[slot] = self._fail(slot, f"{type(error).__name__}: {error}")
        return results

    def _fail(self, slot: int, error: str) -> EpisodeFailure:
        """Kill the slot's JVM now (unblocking its worker) and queue a restart behind it."""
        logger.warning("ScienceWorld slot %d failed: %s; restarting its JVM", slot, error)
        self.failures += 1
        adapter = self.adapter(slot)
        adapter.close()
        self._workers[slot].submit(adapter.restart)
        return EpisodeFailure(slot=slot, error=error)

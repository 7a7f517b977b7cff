"""Opening the environments a job plays on: ``open_pool`` (the run's environment's pool, or a
``PoolFactory`` given in its place: tests pass one replaying recorded transitions) and
``shared_pool`` (one pool for jobs chained in one command).

ScienceWorld's ``EnvPool`` (one JVM per slot) lives in ``env/scienceworld/pool.py`` since issue #39
and is importable from here for one version.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from empo2_lite.config import EnvConfig
from empo2_lite.env.episode import EpisodeFailure
from empo2_lite.env.protocol import EpisodePool
from empo2_lite.env.scienceworld.pool import EnvPool

__all__ = ["EnvPool", "EpisodeFailure", "PoolFactory", "open_pool", "shared_pool"]
"""``EnvPool`` and ``EpisodeFailure`` are re-exported for code that imported them from here."""

PoolFactory = Callable[[int, EnvConfig], EpisodePool]
"""Builds the environments a job plays on from (slots, settings), in place of the run's environment's
pool (ScienceWorld's ``EnvPool``: one JVM per slot); tests pass a pool replaying recorded transitions."""


def open_pool(make_pool: PoolFactory | None, size: int, config: EnvConfig) -> EpisodePool:
    """``size`` slots to play on, used as a context manager: ``make_pool``'s when given, else the pool
    of the run's environment (``env.name``; ScienceWorld: ``EnvPool``). The one place that picks the
    default; ScienceWorld's spec looks ``EnvPool`` up on ``env/scienceworld/pool.py`` when called, so a
    test that replaces it there replaces it for every job."""
    if make_pool is not None:
        return make_pool(size, config)
    from empo2_lite.env.spec import environment

    return environment(config.name).open_pool(size, config)


@contextlib.contextmanager
def shared_pool() -> Iterator[PoolFactory]:
    """A ``PoolFactory`` whose first call opens the run's environment's pool (via ``open_pool``) and whose later calls
    hand out that same pool, closed when the block ends: jobs chained in one command (the demo's
    training and its evaluation) start their JVMs once, and not at all when every job is skipped."""
    opened: list[EpisodePool] = []

    def factory(size: int, config: EnvConfig) -> contextlib.AbstractContextManager[EpisodePool]:
        if not opened:
            opened.append(open_pool(None, size, config).__enter__())
        elif opened[0].size != size:
            raise ValueError(f"size: {size} slots asked of a shared pool of {opened[0].size}")
        return contextlib.nullcontext(opened[0])

    try:
        yield factory
    finally:
        if opened:
            opened[0].__exit__(None, None, None)

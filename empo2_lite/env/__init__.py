"""The ScienceWorld layer: one episode per adapter, one JVM per adapter, a pool for lock-step play."""

from empo2_lite.env.adapter import EpisodeOverError, EpisodeStart, ScienceWorldAdapter, StepResult
from empo2_lite.env.jvm import JavaMissingError, ScienceWorldJVM

__all__ = [
    "EpisodeOverError",
    "EpisodeStart",
    "JavaMissingError",
    "ScienceWorldAdapter",
    "ScienceWorldJVM",
    "StepResult",
]

"""The environment layer: neutral episode types (``episode.py``), what an environment gives the kit
and the registry (``spec.py``), the pool protocol and how jobs open pools; ScienceWorld
(``scienceworld/``) and TextWorldExpress (``textworldexpress/``) in folders of their own."""

from empo2_lite.env.episode import EpisodeOverError, EpisodeStart, StepResult
from empo2_lite.env.scienceworld.adapter import ScienceWorldAdapter
from empo2_lite.env.scienceworld.jvm import JavaMissingError, ScienceWorldJVM

__all__ = [
    "EpisodeOverError",
    "EpisodeStart",
    "JavaMissingError",
    "ScienceWorldAdapter",
    "ScienceWorldJVM",
    "StepResult",
]

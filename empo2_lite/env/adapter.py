"""Moved to ``empo2_lite.env.scienceworld.adapter`` (issue #39: ScienceWorld in its own folder); this
path keeps working for one version."""

from empo2_lite.env.scienceworld.adapter import *  # noqa: F401,F403
from empo2_lite.env.scienceworld.adapter import __all__  # noqa: F401

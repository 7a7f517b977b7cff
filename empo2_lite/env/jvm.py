"""Moved to ``empo2_lite.env.scienceworld.jvm`` (issue #39: ScienceWorld in its own folder); this path
keeps working for one version."""

from empo2_lite.env.scienceworld.jvm import JavaMissingError, ScienceWorldJVM, quiet_py4j  # noqa: F401

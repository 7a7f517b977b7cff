"""Failures a user can fix, as opposed to bugs: the command line prints them as one line (with what
to do) and exits with status 2, never with a traceback.

Kept free of heavy imports so that the command line can catch them before loading anything.
"""

from __future__ import annotations


class KitError(Exception):
    """An expected failure; its message says what went wrong and what to do about it."""


class JavaMissingError(KitError, RuntimeError):
    """No ``java`` executable: ScienceWorld needs Java >= 11."""

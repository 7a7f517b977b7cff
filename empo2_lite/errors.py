"""Failures a user can fix, as opposed to bugs: the command line prints them as one line (with what
to do) and exits with status 2, never with a traceback.

Kept free of heavy imports so that the command line can catch them before loading anything.
"""

from __future__ import annotations


class KitError(Exception):
    """An expected failure; its message says what went wrong and what to do about it."""


class JavaMissingError(KitError, RuntimeError):
    """No ``java`` executable: ScienceWorld needs Java >= 11."""


class NotARunError(KitError, FileNotFoundError):
    """A folder asked for as a run has no ``config.json`` (a mistyped name, or nothing trained yet)."""


class DamagedRunFileError(KitError, ValueError):
    """A run file has a line that cannot be read back (edited by hand, or a disk fault); the message
    names the file and the line and says how to repair it."""

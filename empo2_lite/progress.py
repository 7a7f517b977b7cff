"""Progress bars that read wherever the kit runs: a terminal, a live notebook, a saved or exported one.

Why not ``tqdm.auto``: in a Jupyter kernel it draws widgets, and a widget's state is not saved with
the notebook, so a saved notebook, its HTML export or a notebook executed by nbconvert/nbmake shows
each bar frozen at "0%". Here every bar is tqdm's text bar. In a Jupyter kernel it writes to stdout
(not stderr, which front ends draw as an error), and an inner bar (the rollouts inside an
iteration) is not drawn at all: text bars stack by moving the cursor up, which notebook front ends
do not do, so two of them would print a line per update. The outer bar then reads as one line that
ends at 100%.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython with a kernel app), as ``tqdm.auto`` tells."""
    shell = sys.modules.get("IPython")
    try:
        return shell is not None and "IPKernelApp" in shell.get_ipython().config
    except AttributeError:  # IPython imported, no shell running
        return False


def progress_bar(iterable: Iterable | None = None, *, inner: bool = False, **options: Any) -> tqdm:
    """tqdm's text bar with ``options``; in a notebook on stdout, and switched off there when
    ``inner`` (a bar that runs inside another's step)."""
    if in_notebook():
        options["file"] = sys.stdout
        options["disable"] = options.get("disable", False) or inner
    return tqdm(iterable, **options)

"""The one palette of every figure and table: algorithm or baseline name -> colour, marker, line
style and the name as people write it.

Why one table: a reader learns "EMPO² is vermillion" from the first figure and should never have to
relearn it. Each algorithm of the algorithm table and each untrained baseline has an entry
(Okabe-Ito colours, readable with the common forms of colour blindness, plus a marker and a line
style, so that lines that overlap stay visible); the paper's methods take the colour of the kit's
algorithm of the same name (``PAPER_METHODS``); the runs (seeds) of one algorithm are shades of its
colour (``shades``). An ablation such as "grpo+novelty" has an entry of its own, never the colour
of "grpo". Settings that are not algorithms (p, q, a screened setting) take shades of the colour
of the algorithm they vary (``colours``), so they never borrow another's. ``order`` is the one
order of algorithms in every legend and table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from matplotlib.colors import to_hex, to_rgb

from empo2_lite.config import ALGOS, BASELINES

OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
GREY = "#999999"
"""The colour of a name the palette does not know."""


@dataclass(frozen=True)
class Style:
    """How one algorithm or baseline looks in every figure."""

    colour: str
    marker: str
    linestyle: str
    label: str
    """The name as people write it, in legends, tick labels and tables."""


STYLES: dict[str, Style] = {
    "empo2": Style("#D55E00", "^", "-", "EMPO²"),
    "grpo": Style("#0072B2", "o", "-", "GRPO"),
    "grpo+novelty": Style("#56B4E9", "v", "-.", "GRPO + novelty"),
    "grpo+tips-unseen": Style("#E69F00", "P", ":", "GRPO + unseen tips"),
    "gigpo": Style("#009E73", "s", "--", "GiGPO"),
    "empo2+gigpo": Style("#CC79A7", "D", "-.", "EMPO² + GiGPO"),
    "naive": Style("#000000", "x", "--", "untrained"),
    "memory-only": Style("#7F7F7F", "+", ":", "untrained + memory"),
    "warm-start": Style("#8C6D31", "*", "-.", "warm start"),
    "reflexion": Style("#6A3D9A", "h", "--", "Reflexion"),
    "retrospex": Style("#882255", "p", ":", "Retrospex"),
}
"""The one palette: algorithm or baseline name -> colour, marker, line style, display name. Every
algorithm of the table and every baseline has an entry (a test checks it)."""
PAPER_METHODS = {"Naive": "naive", "Reflexion": "reflexion", "Retrospex": "retrospex", "GRPO": "grpo",
                 "EMPO2": "empo2"}
"""The paper's ScienceWorld methods drawn beside the kit's runs, and the kit's name each takes its style
from: the kit's run of the same method, so a paper bar and the kit's bar of one method share a colour
(``eval --baseline retrospex``). The memory-only baseline is the kit's own and has no paper column."""
UNTRAINED = (*BASELINES, "reflexion", "retrospex", "warm-start")
"""The ``algo`` of runs that are references, not trained runs (baselines and a warm start alone)."""
SETTINGS_GREY = "#555555"
"""The base colour of settings whose runs are of several algorithms (``colours``)."""


def style(name: str) -> Style:
    """The palette's entry for ``name`` (an unknown name: grey, drawn under its own name)."""
    return STYLES.get(name, Style(GREY, "o", "-", str(name)))


def display_name(name: str) -> str:
    """An algorithm or baseline as people write it: "empo2" -> "EMPO²"; anything else unchanged."""
    return style(name).label


def order(names: Iterable[str]) -> list[str]:
    """Names in the one order every figure and table uses: the baselines, then the algorithm table's
    order, then anything else alphabetically."""
    rank = {name: index for index, name in enumerate([*UNTRAINED, *ALGOS])}
    return sorted(set(names), key=lambda name: (rank.get(name, len(rank)), str(name)))


def shades(colour: str, count: int) -> list[str]:
    """``count`` shades of ``colour``, dark to light, the middle one ``colour`` itself: the runs
    (seeds) of one algorithm, told apart but still read as that algorithm."""
    if count <= 1:
        return [to_hex(colour)]
    base = np.array(to_rgb(colour))
    mixes = np.linspace(-0.45, 0.45, count)  # < 0: towards black, > 0: towards white
    return [to_hex(base * (1 + mix) if mix < 0 else base + (1 - base) * mix) for mix in mixes]


def colours(labels: Iterable, by: str = "algo", algo: str | None = None) -> dict:
    """A colour per label. By ``algo``: each name's palette colour (``STYLES``), whichever others a
    figure holds. By any other setting (p, q, a screened setting): shades of the colour of the
    algorithm whose runs they are (``algo``; dark grey when not one algorithm), in the settings'
    sorted order: settings of EMPO² stay in EMPO²'s colour and never borrow another algorithm's."""
    labels = set(labels)
    if by == "algo":
        return {label: style(label).colour for label in labels}
    try:
        labels = sorted(labels)
    except TypeError:  # mixed types: an order all the same
        labels = sorted(labels, key=str)
    return dict(zip(labels, shades(style(algo).colour if algo in STYLES else SETTINGS_GREY, len(labels))))

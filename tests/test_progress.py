"""Progress bars: text everywhere (a saved notebook shows where a bar ended, never a frozen widget)."""

from __future__ import annotations

import io

from tqdm import tqdm

from empo2_lite import progress


def test_outside_a_notebook_a_bar_is_tqdms_text_bar_on_stderr():
    assert not progress.in_notebook()  # pytest is no Jupyter kernel
    bar = progress.progress_bar(range(3), desc="iters", inner=True, file=io.StringIO())
    assert type(bar) is tqdm and not bar.disable  # an inner bar still draws in a terminal
    assert list(bar) == [0, 1, 2] and "3/3" in bar.fp.getvalue()


def test_in_a_notebook_the_outer_bar_writes_text_to_stdout_and_an_inner_bar_is_off(monkeypatch, capsys):
    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    outer = progress.progress_bar(range(2), desc="iters")
    inner = progress.progress_bar(total=4, desc="rollouts", inner=True)
    assert type(outer) is tqdm and not outer.disable  # tqdm's text bar, not tqdm.notebook's widget
    assert inner.disable
    list(outer)
    assert "iters: 100%" in capsys.readouterr().out

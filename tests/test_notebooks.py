"""The notebooks' shape: papermill-ready, smoke-switchable, estimate before heavy work, no outputs
in git. (Executing them is `make test-notebooks`: pytest --nbmake with EMPO2_SMOKE=1.)"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ("00_quickstart", "01_walkthrough", "02_reproduce_scienceworld", "03_ood_adaptation", "04_ablations",
            "05_results_gallery")
HEAVY_CALLS = ("jobs.train(", "train_runs(", "collect_rollouts(", "final_evaluation(", "adapt_ood(", "baseline(")


def load(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def code_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def test_exactly_the_expected_notebooks():
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == list(EXPECTED)


@pytest.mark.parametrize("name", EXPECTED)
def test_valid_with_kernelspec_and_language(name):
    notebook = load(name)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3" and notebook.metadata.kernelspec.language == "python"
    assert notebook.metadata.language_info.name == "python"


@pytest.mark.parametrize("name", EXPECTED)
def test_first_code_cell_holds_the_parameters_and_the_next_switches_to_smoke(name):
    first, second = code_cells(load(name))[:2]
    assert first.metadata.get("tags") == ["parameters"]
    assert all(line.startswith("#") or "=" in line or line.startswith((" ", "}")) or not line.strip()
               for line in first.source.splitlines()), "the parameters cell should only assign values"
    assert "smoke_mode()" in second.source


@pytest.mark.parametrize("name", EXPECTED)
def test_outputs_are_stripped(name):
    for cell in code_cells(load(name)):
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: run `make strip-notebooks`"


@pytest.mark.parametrize("name", EXPECTED[:5])
def test_an_estimate_is_printed_before_the_first_heavy_cell(name):
    sources = [cell.source for cell in code_cells(load(name))]
    first_heavy = min(i for i, source in enumerate(sources) if any(call in source for call in HEAVY_CALLS))
    assert any("estimate(" in source for source in sources[:first_heavy])


@pytest.mark.parametrize("name", EXPECTED)
def test_stored_as_jupyter_saves_it_so_opening_it_changes_nothing(name):
    """JupyterLab writes the kernel's metadata into an open notebook and autosaves it when that
    differs from the file (``lab/notebook_files.py``): the file must hold what the kernel reports
    (its Python version aside, which differs between machines) and be byte-for-byte what nbformat's
    writer, the one Jupyter saves with, writes. `make strip-notebooks` makes both true."""
    from empo2_lite.lab.notebook_files import kernel_metadata, stored_text

    path = NOTEBOOKS / f"{name}.ipynb"
    notebook = load(name)
    assert path.read_text(encoding="utf-8") == stored_text(notebook), f"{name}: run `make strip-notebooks`"
    expected = kernel_metadata()
    assert notebook.metadata.kernelspec == expected["kernelspec"]
    stored = {key: value for key, value in notebook.metadata.language_info.items() if key != "version"}
    assert stored == {key: value for key, value in expected["language_info"].items() if key != "version"}
    assert "version" in notebook.metadata.language_info
    assert all(cell.get("id") for cell in notebook.cells) and notebook.nbformat_minor >= 5


def test_normalising_a_notebook_clears_outputs_and_sets_the_kernels_metadata(tmp_path):
    from empo2_lite.lab.notebook_files import kernel_metadata, normalise

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1", id="a")],
                                        metadata={"kernelspec": {"display_name": "Python 3", "language": "python",
                                                                 "name": "python3"}, "tags": ["kept"]})
    notebook.cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
    notebook.cells[0].execution_count = 1
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(notebook, indent=2))  # another writer's layout
    assert normalise(path) and not normalise(path)  # the second pass finds nothing to change
    again = nbformat.read(path, as_version=4)
    assert again.cells[0].outputs == [] and again.cells[0].execution_count is None
    assert again.metadata.kernelspec == kernel_metadata()["kernelspec"] and again.metadata.tags == ["kept"]

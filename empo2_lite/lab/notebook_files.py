"""Notebook files as the kit stores them: outputs cleared, the metadata the kit's own kernel reports,
written by nbformat's writer (``make strip-notebooks`` runs this).

Why the metadata matters: as soon as a kernel starts, JupyterLab writes the kernel's name and
``language_info`` into the open notebook; when they differ from the file, the notebook is marked
modified on open and autosave rewrites the tracked file a couple of minutes later. Measured with
JupyterLab 4.6 and ipykernel 7.4 (2026-12-07, the gallery opened in headless Chromium with a 5 s
autosave): a notebook stored with ``display_name`` "Python 3" (ipykernel's name is "Python 3
(ipykernel)") or with a partial ``language_info`` (only name and lexer, or no Python version) was
saved within seconds; one stored with exactly what the kernel reports stayed untouched.

What is left: ``language_info.version`` is the Python version of the machine that last stripped
the notebooks, so on another Python release JupyterLab still marks them modified on open (nothing
in the file can match every machine). Writing through nbformat keeps key order and indentation as
Jupyter's own save writes them, so a save without a change changes no byte.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def kernel_metadata() -> dict:
    """The notebook metadata a Python kernel of this environment reports (what JupyterLab writes)."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import KERNEL_NAME, get_kernel_dict

    spec = get_kernel_dict()
    return {"kernelspec": {"display_name": spec["display_name"], "language": spec["language"], "name": KERNEL_NAME},
            "language_info": dict(IPythonKernel.language_info)}


def stored_text(notebook: nbformat.NotebookNode) -> str:
    """The file's text as nbformat writes it (what Jupyter's own save writes)."""
    return nbformat.writes(notebook) + "\n"


def normalise(path: str | Path) -> bool:
    """Clear ``path``'s outputs and execution counts, set the kernel's metadata (other metadata
    keys kept), write it with nbformat; return whether the file changed."""
    path = Path(path)
    before = path.read_text(encoding="utf-8")
    notebook = nbformat.reads(before, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.metadata.update(kernel_metadata())
    nbformat.validate(notebook)
    after = stored_text(notebook)
    if after != before:
        path.write_text(after, encoding="utf-8")
    return after != before


def main(paths: list[str]) -> int:
    """``python -m empo2_lite.lab.notebook_files NOTEBOOK...``: normalise each, name those changed."""
    for path in paths:
        if normalise(path):
            print(f"normalised {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

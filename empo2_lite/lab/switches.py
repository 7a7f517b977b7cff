"""The switches every notebook starts with: smoke mode, the runs folder, the CPU fallback.

* ``EMPO2_SMOKE=1`` turns every notebook into a quick run of the ``cpu-smoke`` preset (a tiny
  random model), which is how CI executes them (``pytest --nbmake``).
* Notebooks run with ``notebooks/`` as their working directory; ``use_project_runs`` points them at
  the same ``runs/`` folder as ``make demo`` and the command line, unless ``EMPO2_RUNS`` says
  otherwise.
* ``preset_for_this_machine``: ``"auto"`` (the quickstart's and ``make demo``'s choice) is
  ``gpu-learn`` where CUDA is present (the embedded 135M model in bf16: no download, minutes on any
  card) and ``cpu-demo`` elsewhere; a GPU preset asked for on a machine without CUDA would load a
  multi-billion-parameter model on the CPU, so the notebooks fall back to ``cpu-demo`` and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

from empo2_lite.runs import RUNS_VARIABLE, runs_root

SMOKE_VARIABLE = "EMPO2_SMOKE"
CPU_FALLBACK = "cpu-demo"
AUTO_PRESET = "auto"
GPU_DEFAULT = "gpu-learn"
"""What ``auto`` means on a CUDA machine: the embedded model, so that no user waits for a 3B download
(``gpu-24gb`` did this before; it is still one ``PRESET`` away)."""


def smoke_mode() -> bool:
    """True when ``EMPO2_SMOKE=1``: notebooks switch to the cpu-smoke preset."""
    return os.environ.get(SMOKE_VARIABLE) == "1"


def use_project_runs() -> Path:
    """Make ``runs_root()`` the project's ``runs/`` folder (unless ``EMPO2_RUNS`` is set) and return it."""
    if not os.environ.get(RUNS_VARIABLE):
        project = Path(__file__).resolve().parents[2]
        base = project if (project / "pyproject.toml").exists() else Path.cwd()
        os.environ[RUNS_VARIABLE] = str(base / "runs")
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


def preset_for_this_machine(name: str, cuda_available: bool | None = None) -> str:
    """``auto``: ``gpu-learn`` with a CUDA GPU, else ``cpu-demo``. Any other ``name`` as given, but
    ``cpu-demo`` when it is a GPU preset and there is no CUDA GPU (printed)."""
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available()
    if name == AUTO_PRESET:
        return GPU_DEFAULT if cuda_available else CPU_FALLBACK
    if name.startswith("gpu") and not cuda_available:
        print(f"No CUDA GPU here: {name} would load a multi-billion-parameter model on the CPU; "
              f"using {CPU_FALLBACK} instead (set PRESET yourself to override).")
        return CPU_FALLBACK
    return name

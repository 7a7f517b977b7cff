"""What the notebooks share: the smoke switch, the runs folder, an install check, cost estimates.

* ``EMPO2_SMOKE=1`` turns every notebook into a quick run of the ``cpu-smoke`` preset (a tiny
  random model), which is how CI executes them (``pytest --nbmake``).
* Notebooks run with ``notebooks/`` as their working directory; ``use_project_runs`` points them at
  the same ``runs/`` folder as ``make demo`` and the command line, unless ``EMPO2_RUNS`` says
  otherwise.
* ``estimate`` turns a preset's measured (or, for the GPU presets, estimated) cost per iteration
  into the time and memory a cell will need, printed before heavy cells run.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from empo2_lite.runs import RUNS_VARIABLE, runs_root
from empo2_lite.train_config import TrainConfig, preset

SMOKE_VARIABLE = "EMPO2_SMOKE"


def smoke_mode() -> bool:
    """True when ``EMPO2_SMOKE=1``: notebooks switch to the cpu-smoke preset."""
    return os.environ.get(SMOKE_VARIABLE) == "1"


def use_project_runs() -> Path:
    """Make ``runs_root()`` the project's ``runs/`` folder (unless ``EMPO2_RUNS`` is set) and return it."""
    if not os.environ.get(RUNS_VARIABLE):
        project = Path(__file__).resolve().parents[1]
        base = project if (project / "pyproject.toml").exists() else Path.cwd()
        os.environ[RUNS_VARIABLE] = str(base / "runs")
    root = runs_root()
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class PresetCost:
    """What one iteration of a preset costs, and where that number comes from."""

    iteration_seconds: float
    """One training iteration with the preset's own episode count."""
    episode_seconds: float
    """One evaluation episode (test split, temperature 0.4)."""
    peak_memory_gb: float
    """Peak RAM, ScienceWorld JVMs included (CPU presets), or GPU memory (GPU presets)."""
    source: str
    """"measured on ..." or "estimate"."""


# cpu-smoke: the smoke notebooks on the 2-core VM (model load and JVM start included); cpu-demo:
# a 12-iteration run and `make demo` there (82-83 s per iteration, 7-9 s per test episode); gpu-24gb: one H200 iteration with 3-step episodes (48.8 s; 8.6 s for 16 test episodes) scaled to 30 steps; gpu-48gb: a guess from the model size.
PRESET_COSTS = {
    "cpu-smoke": PresetCost(15.0, 1.5, 3.0, "measured on a 2-core CPU, see docs/hardware.md"),
    "cpu-demo": PresetCost(85.0, 10.0, 5.0, "measured on a 2-core CPU, see docs/hardware.md"),
    "gpu-24gb": PresetCost(480.0, 5.4, 22.0, "estimate scaled from a 3-step iteration on an H200 (random weights), docs/hardware.md"),
    "gpu-48gb": PresetCost(1200.0, 30.0, 44.0, "estimate: not yet measured on a GPU"),
}


def _format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"~{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"~{round(seconds / 60)} min"
    return f"~{seconds / 3600:.1f} h"


def estimate(config: TrainConfig, iterations: int | None = None, eval_episodes: int = 0, runs: int = 1) -> str:
    """One line: the time and memory ``runs`` runs of ``config`` (``iterations`` each, default its
    own) plus ``eval_episodes`` evaluation episodes will need, scaled from the preset's cost by
    the number of episodes per iteration."""
    cost = PRESET_COSTS.get(config.preset)
    if cost is None:
        return f"no estimate for preset {config.preset or 'custom'!r}: time one iteration first"
    reference = preset(config.preset)
    scale = (config.variations_per_iteration * config.group_size) / (reference.variations_per_iteration * reference.group_size)
    iterations = config.iterations if iterations is None else iterations
    seconds = runs * iterations * cost.iteration_seconds * scale + eval_episodes * cost.episode_seconds
    memory = "GPU memory" if config.preset.startswith("gpu") else "RAM"
    return (f"{config.preset}: {_format_duration(seconds)} and ~{cost.peak_memory_gb:g} GB of {memory} "
            f"({cost.source})")


def java_version() -> str | None:
    """The first line of ``java -version``, or None when Java is missing."""
    if shutil.which("java") is None:
        return None
    output = subprocess.run(["java", "-version"], capture_output=True, text=True, check=False).stderr
    return output.splitlines()[0] if output else None


def java_major(version_line: str | None) -> int | None:
    """11 from 'openjdk version "11.0.2"', 17 from 'openjdk version "17.0.9" ...', None if unknown."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_line or "")
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def install_report() -> dict[str, str]:
    """Versions and hardware a bug report (or a first run) needs to know."""
    import torch

    report = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("torch", "transformers", "peft", "scienceworld", "rank-bm25", "matplotlib", "pandas"):
        try:
            report[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            report[package] = "missing"
    report["java"] = java_version() or "missing"
    report["cpu cores"] = str(os.cpu_count())
    report["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU presets)"
    return report


def check_install() -> dict[str, str]:
    """``install_report()``, after raising a clear error when something the kit needs is missing."""
    report = install_report()
    missing = [name for name, value in report.items() if value == "missing"]
    if missing:
        raise RuntimeError(f"missing: {', '.join(missing)}; run `make setup` from the repository root")
    major = java_major(report["java"])
    if major is None or major < 11:
        raise RuntimeError(f"ScienceWorld needs Java >= 11, found {report['java']!r}; run `make setup` (as root it installs Java)")
    return report

"""Is everything a run needs installed? Versions and hardware, for a first run or a bug report."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata


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

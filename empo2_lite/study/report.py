"""What a study leaves: its record (``study.json``), its tables and figures, and one archive.

``study.json`` holds the plan, each call's start and budget, each phase's pieces (exit status,
seconds, iterations, timings), the costs measured in phase 1, the choices and why, phase 2's
iterations, the runs the clock left untested, the tables and the peak memory of one process.
``read_record`` reads it back, the plan as a ``Plan`` (records of earlier kits, such as the
shipped ``data/sample_runs/cpu-study``, lack keys added since: they take their defaults).
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path

from empo2_lite.study.parts import split_file
from empo2_lite.study.plan import Plan, plan_from_dict

RECORD = "study.json"
LARGEST_FILE = 15 * 2**20
"""A device call brings back files of up to 16 MiB (8 of them): a larger archive comes back in parts."""
PEAKS = ("memory/peak_gpu_mb", "memory/peak_rss_mb")
"""Per-iteration peaks in ``metrics.jsonl`` whose maximum over the runs the record reports."""
LEFT_OUT = {"checkpoints", "tensorboard", "steps.jsonl"}
"""Folders and files the archive leaves out (large, and nothing a table or figure reads):
``steps.jsonl`` holds every training step's observations (tens of MB for a GPU run); a critic is
trained from the study folder itself, not from its archive."""


def read_record(work: str | Path) -> dict:
    """The record of the study in ``work`` (a folder, or its ``study.json``), ``plan`` as a ``Plan``."""
    path = Path(work)
    record = json.loads((path / RECORD if path.is_dir() else path).read_text())
    return {**record, "plan": plan_from_dict(record["plan"])}


def write_record(work: Path, record: dict) -> None:
    """``study.json`` in ``work``, replaced whole."""
    work.mkdir(parents=True, exist_ok=True)
    partial = work / (RECORD + ".partial")
    partial.write_text(json.dumps(record, indent=1, default=str) + "\n")
    partial.replace(work / RECORD)


def collect(plan: Plan, work: Path) -> dict:
    """``compare``'s table against each reference folder of the plan (``comparison.study_tables``;
    not ``probe/``, whose untrained runs played dev only) with the lines saying
    how often EMPO²'s tips reached a prompt, by reference folder; the peak memory of one training
    process (what k was sized by); every figure of the compared runs in ``figures/``."""
    from empo2_lite import comparison, jobs, results

    main = work / plan.main
    compared = results.find_runs(main) if main.is_dir() else []
    if not compared:
        return {}
    metrics = results.load_metrics(results.find_runs(work))
    peaks = {column: float(metrics[column].max()) for column in PEAKS if column in metrics}
    found = comparison.study_tables(work, plan.main) if plan.main != "." else {".": comparison.comparison_table(work)}
    found = {folder: table for folder, table in found.items() if folder in plan.references or folder == "."}
    tables = {folder: "\n".join([table.round(2).to_string(index=False), *comparison.tips_lines(table)])
              for folder, table in found.items()}
    try:
        jobs.all_figures(compared, out=work / "figures")
    except Exception as error:  # a figure is not worth the study's record: say so and go on
        print(f"study: the figures were not drawn ({type(error).__name__}: {error}); "
              f"draw them later with: python -m empo2_lite plot --runs {main}", file=sys.stderr)
    return {"tables": tables, "peaks": peaks}


def pack(work: Path, out: Path, largest: int = LARGEST_FILE, name: str = "gpu-study") -> list[Path]:
    """Every file of the study but checkpoints, TensorBoard events and step logs, as ``out/<name>.tgz``;
    an archive larger than ``largest`` bytes (a file the device call would not bring back) is left
    as parts instead (``parts.split_file``: ``out/<name>.tgz-part-1/``, ...; put it back with
    ``python -m empo2_lite.study.parts join``). Returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    archive = out / f"{name}.tgz"
    with tarfile.open(archive, "w:gz") as packed:
        packed.add(work, arcname=name,
                   filter=lambda member: None if LEFT_OUT & set(Path(member.name).parts)
                   or Path(member.name).name.startswith(".study") else member)
    if archive.stat().st_size <= largest:
        return [archive]
    manifest = split_file(archive, out / f"{name}.tgz-part", largest)
    archive.unlink()
    return [out / part["folder"] / part["file"] for part in manifest["parts"]]

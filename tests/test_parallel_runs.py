"""scripts/parallel_runs.sh: each job on its own cores, CPU only, results and logs in one archive."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "parallel_runs.sh"


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) is not installed")
def test_jobs_run_pinned_with_hidden_cuda_and_their_runs_and_logs_come_back(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text("# two jobs\n"
                    "first: taskset -pc $$ && echo threads=$OMP_NUM_THREADS cuda=[$CUDA_VISIBLE_DEVICES] "
                    "&& mkdir -p $EMPO2_RUNS/made && echo '{}' > $EMPO2_RUNS/made/config.json\n"
                    "\n"
                    "second: taskset -pc $$ && exit 3\n")
    env = {**os.environ, "PY": sys.executable, "OUT": str(tmp_path / "out"), "PARALLEL_RUNS_CORES": "1",
           "PARALLEL_RUNS_LIMIT": "60"}
    done = subprocess.run(["bash", str(SCRIPT), str(jobs)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stdout + done.stderr  # the second job failed, and the script says so
    assert "[first] exit 0" in done.stdout and "[second] exit 3" in done.stdout
    with tarfile.open(tmp_path / "out" / "results.tgz") as archive:
        names = set(archive.getnames())
        first = archive.extractfile("logs/first.log").read().decode()
        second = archive.extractfile("logs/second.log").read().decode()
    assert "runs/made/config.json" in names
    assert "current affinity list: 0\n" in first and "threads=1 cuda=[]" in first
    cores = os.cpu_count() or 1
    assert f"current affinity list: {1 % cores}\n" in second

"""The install check a first notebook run (or a bug report) starts with."""

from __future__ import annotations

import pytest

from empo2_lite.lab import install_check


@pytest.mark.parametrize("line, major", [('openjdk version "17.0.9" 2023-10-17', 17), ('java version "1.8.0_391"', 8),
                                         ('openjdk version "11" 2018-09-25', 11), ("", None), (None, None)])
def test_java_major_version(line, major):
    assert install_check.java_major(line) == major


def test_install_check_reports_what_a_run_needs():
    report = install_check.check_install()
    for key in ("python", "torch", "transformers", "scienceworld", "java", "cuda"):
        assert report[key] and report[key] != "missing"
    assert install_check.java_major(report["java"]) >= 11


def test_install_check_names_what_is_missing(monkeypatch):
    monkeypatch.setattr(install_check, "java_version", lambda: None)
    with pytest.raises(RuntimeError, match="missing: java"):
        install_check.check_install()

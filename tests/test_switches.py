"""The notebooks' switches: smoke mode, the runs folder, the CPU fallback."""

from __future__ import annotations

from empo2_lite.lab import switches
from empo2_lite.runs import runs_root


def test_smoke_mode_only_for_exactly_one(monkeypatch):
    monkeypatch.setenv("EMPO2_SMOKE", "1")
    assert switches.smoke_mode()
    for value in ("0", "", "yes"):
        monkeypatch.setenv("EMPO2_SMOKE", value)
        assert not switches.smoke_mode()
    monkeypatch.delenv("EMPO2_SMOKE")
    assert not switches.smoke_mode()


def test_project_runs_folder_unless_the_variable_says_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("EMPO2_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    root = switches.use_project_runs()
    assert root == runs_root() and root.is_absolute() and root.name == "runs"
    assert (root.parent / "pyproject.toml").exists()  # the repository, not the notebook's folder
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path / "elsewhere"))
    assert switches.use_project_runs() == tmp_path / "elsewhere" and (tmp_path / "elsewhere").is_dir()


def test_a_gpu_preset_falls_back_to_cpu_demo_without_cuda(capsys):
    assert switches.preset_for_this_machine("gpu-24gb", cuda_available=False) == "cpu-demo"
    assert "No CUDA GPU here: gpu-24gb" in capsys.readouterr().out
    assert switches.preset_for_this_machine("gpu-24gb", cuda_available=True) == "gpu-24gb"
    assert switches.preset_for_this_machine("cpu-smoke", cuda_available=False) == "cpu-smoke"


def test_auto_is_the_gpu_learning_preset_where_cuda_is_present_and_cpu_demo_elsewhere(monkeypatch):
    import torch

    from empo2_lite.demo import demo_config

    for present, expected in ((True, "gpu-learn"), (False, "cpu-demo")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda present=present: present)
        assert switches.preset_for_this_machine("auto") == expected  # asks torch itself
        config = demo_config(smoke=False)
        assert (config.preset, config.iterations, config.name) == (expected, 3, "demo")
        config.validate()
        assert demo_config(smoke=True).preset == "cpu-smoke"  # CI's demo, GPU or not
    assert demo_config(smoke=False, cuda=True).policy.model.startswith("embedded:")  # no hub download on a GPU either


def test_the_quickstart_starts_from_auto_and_resolves_it_for_this_machine():
    import json
    from pathlib import Path

    notebook = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "00_quickstart.ipynb").read_text())
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    [parameters] = [source for source in sources if "# Parameters" in source]
    assert 'PRESET = "auto"' in parameters
    resolving = next(index for index, source in enumerate(sources) if "preset_for_this_machine(PRESET)" in source)
    using = next(index for index, source in enumerate(sources) if "preset(PRESET)" in source)
    assert sources.index(parameters) < resolving < using

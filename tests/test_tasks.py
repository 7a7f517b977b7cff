"""The task registry: the paper's 18 tasks and the protocol's variation ids (no JVM needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from empo2_lite import tasks
from empo2_lite.env.scienceworld.tasks import all_tasks, task_names

PAPER_TASKS = {
    "chemistry-mix", "chemistry-mix-paint-secondary-color", "chemistry-mix-paint-tertiary-color",
    "find-animal", "find-living-thing", "find-non-living-thing", "find-plant",
    "identify-life-stages-1", "identify-life-stages-2", "lifespan-longest-lived",
    "lifespan-longest-lived-then-shortest-lived", "lifespan-shortest-lived", "power-component",
    "power-component-renewable-vs-nonrenewable-energy", "test-conductivity",
    "test-conductivity-of-unknown-substances", "measure-melting-point-known-substance", "use-thermometer",
}


def test_registry_holds_exactly_the_papers_18_tasks():
    assert set(task_names()) == PAPER_TASKS
    assert len(task_names()) == 18


@pytest.mark.parametrize("name, steps", [
    ("chemistry-mix", 60), ("measure-melting-point-known-substance", 120), ("find-animal", 30), ("use-thermometer", 30),
])
def test_step_caps_follow_the_protocol(name, steps):
    assert tasks.get_task(name).max_steps == steps


def test_every_other_task_has_30_steps():
    others = [t for t in all_tasks() if t.name not in ("chemistry-mix", "measure-melting-point-known-substance")]
    assert {t.max_steps for t in others} == {30}


@pytest.mark.parametrize("task", all_tasks(), ids=lambda t: t.name)
def test_protocol_variation_ids(task):
    train, test = task.split_ids("train"), task.split_ids("test")
    assert task.train_variations == tuple(train[: min(5, task.n_train_total)])
    assert task.test_variations == tuple(test[: min(20, task.n_test_total)])
    assert len(task.split_ids("dev")) == task.n_dev_total
    assert train.stop == task.split_ids("dev").start and task.split_ids("dev").stop == test.start


def test_small_tasks_use_fewer_variations():
    life2 = tasks.get_task("identify-life-stages-2")
    assert life2.train_variations == (0, 1, 2, 3)
    assert life2.test_variations == (6, 7, 8, 9)
    assert len(tasks.get_task("chemistry-mix").test_variations) == 8


def test_unknown_task_lists_the_valid_names():
    with pytest.raises(tasks.UnknownTaskError) as error:
        tasks.get_task("find-anmal")
    message = str(error.value)
    assert "find-anmal" in message and "find-animal" in message and "use-thermometer" in message


def test_variation_outside_its_split_names_the_range():
    task = tasks.get_task("find-animal")
    task.check_variation(225, "test")
    with pytest.raises(tasks.UnknownTaskError, match=r"not a test variation of find-animal; choose one of 225\.\.299"):
        task.check_variation(3, "test")
    with pytest.raises(tasks.UnknownTaskError, match="split"):
        task.split_ids("validation")


def test_step_cap_falls_back_for_other_scienceworld_tasks():
    assert tasks.step_cap("chemistry-mix", 30) == 60
    assert tasks.step_cap("boil", 30) == 30


def test_table_lists_every_task():
    table = tasks.format_table(all_tasks())
    assert all(name in table for name in PAPER_TASKS)
    assert "225..244 (20)" in table


def test_cli_tasks_json():
    out = subprocess.run([sys.executable, "-m", "empo2_lite", "tasks", "--json"], capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert len(rows) == 18
    required = {"name", "topic", "max_steps", "train_variations", "test_variations", "n_train_total", "n_test_total"}
    assert all(required <= set(row) for row in rows)
    find_animal = next(row for row in rows if row["name"] == "find-animal")
    assert find_animal["train_variations"] == [0, 1, 2, 3, 4]
    assert find_animal["test_variations"] == list(range(225, 245))
    assert find_animal["n_test_total"] == 75


def test_cli_tasks_table():
    out = subprocess.run([sys.executable, "-m", "empo2_lite", "tasks"], capture_output=True, text=True, check=True)
    assert "measure-melting-point-known-substance" in out.stdout and "Measurement" in out.stdout


@pytest.mark.parametrize("module, moved, home", [
    ("empo2_lite.tasks", "all_tasks", "empo2_lite.env.scienceworld.tasks"),
    ("empo2_lite.tasks", "OOD_PAIRS", "empo2_lite.env.scienceworld.tasks"),
    ("empo2_lite.prompts", "SYSTEM_PROMPT", "empo2_lite.env.scienceworld.prompts"),
    ("empo2_lite.prompts", "first_user_message", "empo2_lite.env.scienceworld.prompts"),
    ("empo2_lite.demonstrations", "demonstrations_for", "empo2_lite.env.scienceworld.demonstrations"),
])
def test_scienceworld_names_moved_in_issue_39_still_answer_at_their_old_path_with_a_warning(module, moved, home):
    """Issue #39 moved ScienceWorld's registry, prompts and demonstrations into env/scienceworld/;
    the old paths give the same objects for one version and say where they went."""
    import importlib

    with pytest.warns(DeprecationWarning, match=home.replace(".", r"\.")):
        old = getattr(importlib.import_module(module), moved)
    assert old is getattr(importlib.import_module(home), moved)
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(importlib.import_module(module), "no_such_name")


def test_the_neutral_modules_import_no_environment():
    """tasks.py, prompts.py and demonstrations.py are every environment's: importing them alone
    loads neither ScienceWorld's folder nor TextWorldExpress's."""
    code = ("import sys, empo2_lite.tasks, empo2_lite.prompts, empo2_lite.demonstrations; "
            "loaded = [m for m in sys.modules if m.startswith('empo2_lite.env.')]; assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)

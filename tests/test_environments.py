"""Environments as plug-ins (issue #39): a new environment is its own folder plus one registry entry.

Two checks stand for "the diff shows it". A toy environment written entirely in this test's temp
folder (a package with its tasks, prompts, pool and ``ENVIRONMENT``) is registered by one entry
in ``config.sections.ENVIRONMENTS`` and then found, validated, played by the rollout loop with its
own prompts and summarised with its own extras, with no change to any shared module. And the
shared loop (algorithms, memory, rollouts, engines, evaluation, the study, the baselines) names no
environment in its code: docstrings may cite ScienceWorld, code may not branch on it.
"""

from __future__ import annotations

import ast
import re
import sys
import textwrap
from pathlib import Path

import pytest

from empo2_lite.config import EnvConfig, RolloutConfig
from empo2_lite.config import sections
from empo2_lite.env import spec
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.summary import summarize
from empo2_lite.tasks import get_task
from scripted import ScriptedSampler

PACKAGE = Path(__file__).resolve().parents[1] / "empo2_lite"

TOY_ENVIRONMENT = '''
"""A one-room game: the agent wins by typing "open door"; "kick door" loses it."""

from empo2_lite.env.episode import EpisodeStart, StepResult
from empo2_lite.env.spec import Environment, StateKeyRules
from empo2_lite.tasks import Task

TASK = Task(name="toy-door", environment_id="toy-1", topic="Toy", title="Open the door", max_steps=4,
            n_train_total=5, n_dev_total=5, n_test_total=5, train_variations=(0, 1, 2, 3, 4),
            test_variations=(10, 11, 12, 13, 14))


class ToyPool:
    def __init__(self, size, config):
        self.size, self.config, self.active, self.episodes = size, config, [], {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass

    def reset(self, episodes, *, max_steps=None):
        self.active = list(range(len(episodes)))
        self.episodes = {slot: [task, variation, 0, max_steps or TASK.max_steps]
                         for slot, (task, variation) in enumerate(episodes)}
        return [EpisodeStart(task, variation, "A small room. There is a wooden door.", "Your task is to leave the room.",
                             max_steps or TASK.max_steps, 0, {"keys": "You hold a brass key."})
                for task, variation in episodes]

    def step(self, actions):
        results = {}
        for slot, text in actions.items():
            episode = self.episodes[slot]
            episode[2] += 1
            action = text.strip().lower()
            won, lost = action == "open door", action == "kick door"
            capped = episode[2] >= episode[3]
            done = won or lost or capped
            end = "completed" if won else "failed" if lost else "max_steps" if capped else None
            results[slot] = StepResult("The door swings open." if won else "Nothing happens.", 100 if won else -100 if lost else 0,
                                       100 if won else -100 if lost else 0, done, won, text, action,
                                       {"steps": episode[2], "corrected": False, "end_reason": end, "door_touched": won or lost})
            if done:
                self.active.remove(slot)
        return results

    def abandon(self, slot):
        self.active.remove(slot)


def first_message(start, demonstrations, reflections):
    return f"Your task: {start.task_description} {start.info['keys']}\\n\\nYou are here now:\\n{start.observation}"


ENVIRONMENT = Environment(
    name="toy", title="Toy doors", tasks=lambda: (TASK,), owns_task=lambda task: task == TASK.name,
    system_prompt="You are in a toy game of doors. Type one command.", first_message=first_message,
    start_fields=("keys",), demonstrations=lambda task, variation, count: [],
    open_pool=lambda size, config: ToyPool(size, config), open_game=None,
    summary_extras=lambda played: {"door_touched_share": sum(bool(t.final_info.get("door_touched")) for t in played)
                                   / max(len(played), 1)},
    metric_names={"door_touched_share": "diagnostics/door_touched_share"},
    state_key_rules=StateKeyRules(looking_commands=("look",)))
'''


@pytest.fixture
def toy_environment(tmp_path, monkeypatch):
    """The toy package on the path and its one registry entry (what a contributor adds), nothing else."""
    (tmp_path / "toy_doors").mkdir()
    (tmp_path / "toy_doors" / "__init__.py").write_text(textwrap.dedent(TOY_ENVIRONMENT))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(sections.ENVIRONMENTS, "toy", "toy_doors")
    names = tuple(sections.ENVIRONMENTS)  # the tuple the registry's names are read into at import
    monkeypatch.setattr(sections, "ENVIRONMENT_NAMES", names)
    monkeypatch.setattr(spec, "ENVIRONMENT_NAMES", names)
    spec.environment.cache_clear()
    yield spec.environment("toy")
    spec.environment.cache_clear()
    sys.modules.pop("toy_doors", None)


def test_an_environment_written_outside_the_kit_plays_through_the_loop_after_one_registry_entry(toy_environment,
                                                                                                byte_policy):
    assert get_task("toy-door").title == "Open the door"
    assert spec.environment_of("toy-door") is toy_environment
    EnvConfig(name="toy").validate()
    sampler = ScriptedSampler(byte_policy, {"leave the room": ["look around", "open door"]})
    specs = [EpisodeSpec("toy-door", 1, group_id=0, seed=1)]
    with toy_environment.open_pool(1, EnvConfig(name="toy")) as pool:
        [played] = collect_rollouts(byte_policy, pool, specs, RolloutConfig(max_steps=4, demonstrations=0),
                                    sampler=sampler, progress=False)
    assert (played.score, played.success, played.end_reason, len(played.turns)) == (100, True, "completed", 2)
    text = byte_policy.tokenizer.decode(sampler.fed["leave the room"][0])
    assert "toy game of doors" in text and "You hold a brass key." in text and "ScienceWorld" not in text
    summary = summarize([played])
    assert summary.extras == {"door_touched_share": 1.0}
    assert summary.extra_metrics() == {"diagnostics/door_touched_share": 1.0}


def test_without_its_registry_entry_the_environment_is_refused_in_one_line():
    with pytest.raises(Exception, match=r"env\.name.*'toy'.*scienceworld, textworldexpress"):
        EnvConfig(name="toy").validate()


LOOP = ("algo", "memory", "policy", "study", "baselines", "warm_start", "rollout.py", "evaluation.py", "iteration.py",
        "trainer.py", "summary.py", "trajectory.py", "comparison.py", "transitions.py", "jobs.py", "experiments.py")
"""The shared loop: every module here must work for any registered environment."""
ENVIRONMENT_WORDS = re.compile(r"scienceworld|textworld|twx", re.IGNORECASE)


def code_words(path: Path) -> list[tuple[int, str]]:
    """The names and string constants of a module's code (docstrings left out) that name an environment."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            text = node.value
        elif isinstance(node, (ast.Name, ast.Attribute, ast.alias, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.arg)):
            text = {ast.Name: "id", ast.Attribute: "attr", ast.alias: "name", ast.ImportFrom: "module",
                    ast.FunctionDef: "name", ast.ClassDef: "name", ast.arg: "arg"}[type(node)]
            text = getattr(node, text) or ""
        else:
            continue
        if ENVIRONMENT_WORDS.search(text):
            found.append((getattr(node, "lineno", 0), text))
    return found


def loop_modules() -> list[Path]:
    paths = []
    for entry in LOOP:
        target = PACKAGE / entry
        paths += sorted(target.rglob("*.py")) if target.is_dir() else [target]
    return paths


@pytest.mark.parametrize("path", loop_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_the_shared_loop_names_no_environment_in_its_code(path):
    assert code_words(path) == []


def test_the_scan_sees_an_environment_named_in_code_but_not_in_a_docstring(tmp_path):
    module = tmp_path / "module.py"
    module.write_text('"""Runs on ScienceWorld."""\n\nfrom empo2_lite.env.scienceworld import pool\n'
                      'def f(name):\n    """For TextWorldExpress too."""\n    return name == "textworldexpress"\n')
    assert code_words(module) == [(3, "empo2_lite.env.scienceworld"), (6, "textworldexpress")]

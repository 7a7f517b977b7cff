"""The warm start (behaviour cloning on train gold paths), RL from it, its baseline, and the share
of actions executed as written.

Gold paths replay recorded ScienceWorld transitions (``replay_pool.ReplayPool``, no Java):
find-non-living-thing's train variations 5 and 8 hold their gold paths, recorded by
``tests/record_transitions.py`` from the actions ScienceWorld's gold sequences executed.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from empo2_lite import jobs
from empo2_lite.algo.update import action_logprobs
from empo2_lite.config import ConfigError, PolicyConfig, RolloutConfig, apply_overrides, preset
from empo2_lite.rollout import EpisodeSpec, collect_rollouts
from empo2_lite.runs import RunDir
from empo2_lite.summary import summarize
from empo2_lite.tasks import get_task
from empo2_lite.trajectory import TokenSample
from empo2_lite.warm_start import WarmStartSettings, check_train_only, clone_variations
from empo2_lite.warm_start.cloning import clone, cloning_loss
from empo2_lite.warm_start.record import record_demonstrations
from replay_pool import ReplayPool, load_recording
from scripted import ScriptedSampler

TASK = "find-non-living-thing"
GOLD = {variation: list(max(load_recording(TASK, variation).steps, key=len)) for variation in (5, 8)}
"""The recorded gold paths (each recording is one sequence: its longest key is the whole path)."""


@pytest.fixture(autouse=True)
def runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("EMPO2_RUNS", str(tmp_path))
    return tmp_path


def replay(size: int, env_config=None) -> ReplayPool:
    return ReplayPool(size)


def free_replay(size: int, env_config=None) -> ReplayPool:
    """For the policy's own actions: unrecorded ones are answered "Nothing happens."."""
    return ReplayPool(size, unrecorded="fixed")


def logits_of(model, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def test_recorded_samples_are_token_identical_to_a_scripted_rollout_of_the_gold_actions(tiny_smollm2_model):
    from empo2_lite.policy import load_policy

    policy = load_policy(PolicyConfig(model=str(tiny_smollm2_model), lora_rank=0))
    rollout = RolloutConfig(demonstrations=1, max_new_tokens=16)
    demonstrations = record_demonstrations(policy, ReplayPool(1), get_task(TASK), GOLD, rollout)
    assert [demo.variation for demo in demonstrations] == [5, 8] and all(demo.solved for demo in demonstrations)
    for demo in demonstrations:
        # The same actions, scripted the way the rollout tests script a model, on the same pool.
        sampler = ScriptedSampler(policy, {"non-living thing": list(GOLD[demo.variation])})
        [scripted] = collect_rollouts(policy, ReplayPool(1), [EpisodeSpec(TASK, demo.variation, 0, seed=0)],
                                      replace(rollout, max_steps=len(GOLD[demo.variation])), sampler=sampler,
                                      progress=False)
        [recorded], [expected] = demo.trajectory.without_tips, scripted.without_tips
        assert recorded.input_ids == expected.input_ids and recorded.action_mask == expected.action_mask
        assert [turn.action for turn in demo.trajectory.turns] == GOLD[demo.variation]
        # The action tokens are exactly the gold lines, each closed by its newline.
        actions = policy.tokenizer.decode(recorded.action_ids())
        assert actions == "".join(action + "\n" for action in GOLD[demo.variation])
        assert demo.summary()["action_tokens"] == sum(recorded.action_mask)


def test_the_cloning_loss_is_the_mean_nll_of_the_action_tokens_only(byte_policy):
    # Context (prompt, observation), two responses, then context after the last one.
    ids = [40 + (7 * i) % 50 for i in range(30)]
    mask = [0] * 8 + [1] * 4 + [0] * 9 + [1] * 3 + [0] * 6
    sample = TokenSample(ids, mask, [0.0] * len(ids), [0, 1])
    loss = cloning_loss(byte_policy, [sample])
    logits = logits_of(byte_policy.model, ids)
    per_token = torch.log_softmax(logits[:-1], -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]
    kept = torch.tensor(mask[1:], dtype=torch.bool)
    assert loss.item() == pytest.approx(-per_token[kept].mean().item(), rel=1e-5)  # the golden value, by hand
    assert loss.item() != pytest.approx(-per_token.mean().item(), rel=1e-3)  # not a plain language-model loss
    # Tokens after the last response are no target and no context of one: they cannot change it.
    changed = ids[:-6] + [99] * 6
    assert cloning_loss(byte_policy, [TokenSample(changed, mask, [0.0] * 30, [0, 1])]).item() == pytest.approx(
        loss.item(), rel=1e-6)
    # One more response token in the mask and the loss is another number.
    wider = mask[:20] + [1] + mask[21:]
    assert cloning_loss(byte_policy, [TokenSample(ids, wider, [0.0] * 30, [0, 1])]).item() != pytest.approx(
        loss.item(), rel=1e-4)


def test_a_tiny_models_loss_falls_and_the_gold_actions_probability_rises(byte_policy):
    torch.manual_seed(0)
    rollout = RolloutConfig(demonstrations=0, max_new_tokens=8)
    demonstrations = record_demonstrations(byte_policy, ReplayPool(1), get_task(TASK), GOLD, rollout)
    episodes = [demo.trajectory.without_tips for demo in demonstrations]
    fixed = episodes[1][0]  # variation 8: three gold actions

    def gold_logprob() -> float:
        with torch.no_grad():
            [logprobs], _ = action_logprobs(byte_policy, [fixed])
        return logprobs.sum().item()

    before = gold_logprob()
    rows = clone(byte_policy, episodes, epochs=4, learning_rate=1e-2, seed=0, progress=False)
    assert [row["warm_start/steps"] for row in rows] == [2, 4, 6, 8]
    assert rows[-1]["warm_start/loss"] < rows[0]["warm_start/loss"] * 0.8
    assert gold_logprob() > before + 1.0


def test_dev_and_test_variations_are_refused(byte_policy):
    task = get_task(TASK)
    check_train_only(task, [0, 149])
    dev, test = task.split_ids("dev")[0], task.split_ids("test")[0]
    for variation, split in ((dev, "dev"), (test, "test")):
        with pytest.raises(ConfigError, match=f"variations: {variation} is a {split} variation of {TASK}; a warm start "
                                              "learns from train variations only"):
            check_train_only(task, [5, variation])
        with pytest.raises(ConfigError, match=f"is a {split} variation"):
            jobs.warm_start("cpu-smoke", TASK, variations=[variation], make_pool=replay, progress=False)
        with pytest.raises(ConfigError, match=f"is a {split} variation"):
            record_demonstrations(byte_policy, ReplayPool(1), task, {variation: ["look around"]}, RolloutConfig())
    assert not RunDir.named(f"warm-start-{TASK}").exists()
    # By default the variations after RL's own (0..4) are cloned: all train ids.
    assert clone_variations(task, 10) == tuple(range(5, 15))
    with pytest.raises(ConfigError, match="--variations: 146 is not allowed"):
        clone_variations(task, 146)


def warm_run(name: str = "warm") -> RunDir:
    done = jobs.warm_start("cpu-smoke", TASK, WarmStartSettings(epochs=2, learning_rate=1e-2), name=name,
                           paths=GOLD, make_pool=replay, progress=False)
    return done.run


def test_a_warm_start_saves_its_adapter_loss_curve_and_what_it_saw_and_is_read_back():
    run = warm_run()
    record = run.read_warm_start()
    assert [row["variation"] for row in record["cloned"]] == [5, 8] and record["not_solved"] == []
    assert [row["actions"] for row in record["cloned"]] == [GOLD[5], GOLD[8]]
    assert record["settings"] == {"variations": 10, "epochs": 2, "learning_rate": 1e-2, "seed": 0}
    assert [row["iteration"] for row in run.read_metrics()] == [0, 1]
    assert all(len(row["warm_start/step_losses"]) == 2 for row in run.read_metrics())
    config = run.config()
    assert (config.task, config.iterations, config.update.learning_rate, config.policy.init_adapter) == (TASK, 2, 1e-2, "")
    assert run.iterations_done() == 2 and run.read_adapter(run.latest_checkpoint())
    again = jobs.warm_start("cpu-smoke", TASK, WarmStartSettings(epochs=2, learning_rate=1e-2), name="warm",
                            paths=GOLD, make_pool=replay, progress=False)
    assert again.outcome == "skipped (done)" and again.record == record
    with pytest.raises(ConfigError, match="not this warm start"):
        jobs.warm_start("cpu-smoke", TASK, WarmStartSettings(epochs=3), name="warm", paths=GOLD, make_pool=replay)


def test_init_adapter_merges_the_warm_start_which_is_the_reference_and_a_resumed_run_keeps_it():
    from empo2_lite.evaluation import load_trained_policy
    from empo2_lite.policy import load_policy

    warm = warm_run()
    warm_policy, _ = load_trained_policy(warm.path)
    ids = warm_policy.tokenizer("look around", add_special_tokens=False).input_ids
    expected = logits_of(warm_policy.model, ids)
    bare = load_policy(replace(warm.config().policy, lora_rank=0))
    assert not torch.allclose(logits_of(bare.model, ids), expected, atol=1e-4)  # the warm start moved it
    config = apply_overrides(preset("cpu-smoke"), {"task": "identify-life-stages-2", "name": "rl", "iterations": 1, "algo": "grpo",
                                                   "policy.init_adapter": str(warm.path)})
    trained = jobs.train(config, progress=False, make_pool=free_replay)
    assert trained.outcome == "trained"
    assert json.loads((trained.run.path / "config.json").read_text())["policy"]["init_adapter"] == str(warm.path)
    with trained.policy.reference() as reference:  # the adapter off: the warm start, not the bare model
        assert torch.allclose(logits_of(reference, ids), expected, atol=1e-4)
    resumed = jobs.train(replace(config, iterations=2), progress=False, make_pool=free_replay)
    assert resumed.outcome == "resumed" and resumed.run.config().policy.init_adapter == str(warm.path)
    with resumed.policy.reference() as reference:
        assert torch.allclose(logits_of(reference, ids), expected, atol=1e-4)
    with pytest.raises(ConfigError, match="policy.init_adapter: no run folder at 'nowhere'"):
        apply_overrides(preset("cpu-smoke"), {"policy.init_adapter": "nowhere"}).validate()


def test_the_warm_start_baseline_plays_the_warm_start_without_rl():
    warm = warm_run()
    row = jobs.baseline("warm-start", "identify-life-stages-2", "cpu-smoke", from_run="warm", split="dev",
                        make_pool=free_replay, progress=False)
    run = RunDir.named("baseline-warm-start-identify-life-stages-2")
    assert run.config().baseline == "warm-start" and run.config().policy.init_adapter == str(warm.path)
    assert row["baseline"] == "warm-start" and row["split"] == "dev" and 0 <= row["actions_as_written"] <= 1
    with pytest.raises(ConfigError, match="from_run: only the warm-start baseline .* and retrospex .* not naive"):
        jobs.baseline("naive", "identify-life-stages-2", "cpu-smoke", from_run="warm", make_pool=free_replay)
    with pytest.raises(ConfigError, match="--from: run 'rl' .* is not a finished warm start"):
        RunDir.named("rl").start(preset("cpu-smoke"))
        jobs.baseline("warm-start", "identify-life-stages-2", "cpu-smoke", from_run="rl", make_pool=free_replay)


def test_the_share_of_actions_executed_as_written(byte_policy):
    sampler = ScriptedSampler(byte_policy, {"animal": ["dance with the unicorn", "look around"]})
    [trajectory] = collect_rollouts(byte_policy, ReplayPool(1), [EpisodeSpec("find-animal", 0, 0, seed=1)],
                                    RolloutConfig(max_steps=2, demonstrations=0), sampler=sampler, progress=False)
    assert [(turn.raw_action, turn.action, turn.corrected) for turn in trajectory.turns] == [
        ("dance with the unicorn", "task", True), ("look around", "look around", False)]
    summary = summarize([trajectory])
    assert summary.actions_as_written == 0.5 and summary.evaluation_record()["actions_as_written"] == 0.5


MAIN_THEN_LIST_HEAVY_IMPORTS = """
import sys
from empo2_lite.__main__ import main
code = main(sys.argv[1:])
print([name for name in ("torch", "transformers", "peft") if name in sys.modules])
sys.exit(code)
"""


@pytest.mark.parametrize("args, expected", [
    (["warm-start", "--task", TASK, "--variations", "0"], "--variations: 0 is not allowed"),
    (["warm-start", "--task", TASK, "--variations", "146"], "--variations: 146 is not allowed for find-non-living-thing"),
    (["warm-start", "--task", TASK, "--lr", "-1"], "--lr: -1.0 is not allowed"),
    (["warm-start", "--task", TASK, "--preset", "cpu-tiny"], "--preset: 'cpu-tiny' is not allowed"),
    (["warm-start", "--task", TASK, "--set", "policy.lora_rank=0"], "policy.lora_rank: 0 is not allowed for a warm start"),
    (["train", "--from", "nope"], "--from: no run named 'nope'"),
    (["train", "--resume", "nope", "--from", "nope"], "--from: not with --resume"),
    (["eval", "--baseline", "warm-start", "--task", TASK, "--preset", "cpu-smoke"], "--from: --baseline warm-start needs it"),
    (["eval", "--baseline", "naive", "--from", "x", "--task", TASK, "--preset", "cpu-smoke"], "--from: give it with"),
    (["eval", "--baseline", "warm-start", "--from", "nope"], "--from: no run named 'nope'"),
])
def test_bad_warm_start_settings_fail_in_one_line_before_torch_is_imported(args, expected, tmp_path):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", MAIN_THEN_LIST_HEAVY_IMPORTS, *args], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "EMPO2_RUNS": str(tmp_path)}, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    [line] = out.stderr.strip().splitlines()
    assert line.startswith("empo2-lite: error: ") and expected in line
    assert out.stdout.strip().splitlines()[-1] == "[]"


def fake_warm_run(name: str = "warm") -> RunDir:
    """A warm-start folder as the job leaves it, without a model (for the command line's checks)."""
    run = RunDir.named(name)
    run.start(apply_overrides(preset("cpu-smoke"), {"task": TASK, "name": name}))
    run.save_checkpoint(1, {"w": torch.zeros(1)}, {}, {})
    run.write_warm_start({"task": TASK})
    return run


def test_the_command_line_points_train_and_the_baseline_at_the_warm_start(monkeypatch):
    from empo2_lite.__main__ import main

    warm = fake_warm_run()
    calls = []
    def train(config):
        calls.append(config)
        RunDir.named(config.name).start(config)
        return jobs.Trained(RunDir.named(config.name), "trained")

    monkeypatch.setattr(jobs, "train", train)
    monkeypatch.setattr(jobs, "baseline", lambda *args, **kwargs: calls.append((args, kwargs)) or {})
    assert main(["train", "--preset", "cpu-smoke", "--task", "find-animal", "--from", "warm"]) == 0
    assert calls[0].policy.init_adapter == str(warm.path)
    assert main(["eval", "--baseline", "warm-start", "--from", "warm", "--split", "dev"]) == 0
    (kind, task, preset_name), kwargs = calls[1]
    assert (kind, task, preset_name, kwargs["from_run"], kwargs["split"]) == ("warm-start", TASK, "cpu-smoke", "warm", "dev")
    RunDir.named("plain").start(preset("cpu-smoke"))
    assert main(["train", "--from", "plain"]) == 2  # a run that is not a warm start

"""The config package: typed overrides from --set and YAML, a JSON round trip, validation that names
the field and the allowed values (every section, every preset), the algorithm table driving what an
algorithm sets and refuses, and old run configs read (and relabelled) as what ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from empo2_lite.config import (
    ALGORITHMS,
    ALGOS,
    FORMAT_VERSION,
    ConfigError,
    EnvConfig,
    MemoryConfig,
    PolicyConfig,
    RolloutConfig,
    TrainConfig,
    algorithm,
    apply_overrides,
    load_overrides_file,
    parse_set_arguments,
    preset,
    run_format_error,
)


def test_env_defaults_are_valid():
    EnvConfig().validate()


@pytest.mark.parametrize("change, message", [
    ({"simplification": "hard"}, r"env\.simplification: 'hard' is not allowed; choose one of: easy"),
    ({"action_check": "fuzzy"}, r"env\.action_check: 'fuzzy' is not allowed; choose one of: parser, valid_list"),
    ({"heap_mb": 64}, r"env\.heap_mb: 64 .* >= 128"),
    ({"ambiguity_choice": -1}, r"env\.ambiguity_choice"),
    ({"step_timeout_s": 0}, r"env\.step_timeout_s: 0 .* > 0"),
    ({"default_max_steps": -3}, r"env\.default_max_steps"),
])
def test_bad_env_values_name_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        EnvConfig(**change).validate()


@pytest.mark.parametrize("change, field", [
    ({"retriever": "faiss"}, "memory.retriever"), ({"entries_per": "turn"}, "memory.entries_per"),
    ({"relevance_threshold": 1.5}, "memory.relevance_threshold"), ({"top_k": 0}, "memory.top_k"),
    ({"novelty_coef": -1}, "memory.novelty_coef"),
])
def test_bad_memory_values_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        MemoryConfig(**change).validate()


def test_grpo_means_no_memory_no_tips_no_novelty_and_says_so_in_its_config():
    config = apply_overrides(preset("cpu-smoke"), {"algo": "grpo"})
    assert (config.p, config.write_tips, config.memory.novelty_coef) == (0.0, False, 0.0)
    stored = json.loads(json.dumps(config.to_dict()))
    assert stored["p"] == 0.0 and stored["write_tips"] is False and stored["memory"]["novelty_coef"] == 0.0
    with pytest.raises(ConfigError, match="p: 0.5 is not allowed with algo 'grpo'"):
        apply_overrides(config, {"p": 0.5}).validate()


def test_the_algorithm_table_lists_every_algorithm_and_refuses_others_in_one_line():
    assert ALGOS == tuple(ALGORITHMS) == ("empo2", "grpo", "grpo+novelty", "grpo+tips-unseen", "gigpo", "empo2+gigpo")
    assert {entry.name: entry.advantage for entry in ALGORITHMS.values() if entry.advantage != "grpo"} == {
        "gigpo": "gigpo", "empo2+gigpo": "gigpo"}
    assert algorithm("grpo+novelty").switches == (False, False, True)
    with pytest.raises(ConfigError) as error:
        algorithm("ppo")
    assert str(error.value) == ("algo: 'ppo' is not allowed; choose one of: empo2, grpo, grpo+novelty, grpo+tips-unseen, "
                                "gigpo, empo2+gigpo")


@pytest.mark.parametrize("algo, switches", [
    ("empo2", (0.25, True, 1.0)), ("grpo", (0.0, False, 0.0)), ("grpo+novelty", (0.0, False, 1.0)),
    ("grpo+tips-unseen", (0.0, True, 0.0)), ("gigpo", (0.0, False, 0.0)), ("empo2+gigpo", (0.25, True, 1.0)),
])
def test_choosing_an_algorithm_sets_what_its_entry_implies(algo, switches):
    config = apply_overrides(preset("cpu-demo"), {"algo": algo})
    assert (config.algo, config.p, config.write_tips, config.memory.novelty_coef) == (algo, *switches)
    config.validate()
    from_grpo = apply_overrides(apply_overrides(preset("cpu-demo"), {"algo": "grpo"}), {"algo": algo})
    assert (from_grpo.write_tips, from_grpo.memory.novelty_coef) == switches[1:]  # novelty back at the paper's 1.0


def test_an_algorithm_is_applied_before_the_overrides_given_with_it():
    grpo = apply_overrides(preset("cpu-demo"), {"algo": "grpo"})
    config = apply_overrides(grpo, {"memory.novelty_coef": 0.5, "algo": "grpo+novelty"})
    assert config.memory.novelty_coef == 0.5  # given: kept, though listed before the algorithm
    assert apply_overrides(preset("cpu-demo"), {"write_tips": "true", "algo": "grpo"}).write_tips is True  # then refused
    assert apply_overrides(preset("cpu-demo"), {"algo": "empo2", "memory.novelty_coef": 0}).memory.novelty_coef == 0


@pytest.mark.parametrize("settings, message", [
    (["memory.novelty_coef=1"],
     "memory.novelty_coef: 1.0 is not allowed with algo 'grpo' (no novelty reward); use algo 'grpo+novelty'"),
    (["write_tips=true"], "write_tips: True is not allowed with algo 'grpo' (no tips written); use algo 'grpo+tips-unseen'"),
    (["p=0.25"], "p: 0.25 is not allowed with algo 'grpo' (no memory rollouts); use algo 'empo2'"),
])
def test_a_setting_that_contradicts_the_algorithm_points_to_the_one_that_does_it(settings, message):
    overrides = {"algo": "grpo", **parse_set_arguments(settings)}  # as `--algo grpo --set ...` builds them
    with pytest.raises(ConfigError) as error:
        apply_overrides(preset("cpu-smoke"), overrides).validate()
    assert str(error.value) == message


@pytest.mark.parametrize("config, message", [
    (TrainConfig(algo="grpo", p=0, write_tips=True, memory=MemoryConfig(novelty_coef=0)),
     "write_tips: True is not allowed with algo 'grpo' (no tips written); use algo 'grpo+tips-unseen'"),
    (TrainConfig(algo="grpo+tips-unseen", p=0, write_tips=False, memory=MemoryConfig(novelty_coef=0)),
     "write_tips: False is not allowed with algo 'grpo+tips-unseen' (it writes a tip after every episode); use algo 'grpo'"),
    (TrainConfig(algo="grpo+novelty", p=0.5, write_tips=False),
     "p: 0.5 is not allowed with algo 'grpo+novelty' (no memory rollouts); use algo 'empo2'"),
    (TrainConfig(algo="empo2", p=0.5, write_tips=False),  # no algorithm has memory rollouts without tips
     "write_tips: False is not allowed with algo 'empo2' (it writes a tip after every episode)"),
])
def test_a_config_built_directly_is_checked_against_its_algorithm(config, message):
    with pytest.raises(ConfigError) as error:
        config.validate()
    assert str(error.value) == message


def test_a_baseline_is_not_checked_against_an_algorithm_it_does_not_train():
    apply_overrides(preset("cpu-smoke"), {"baseline": "naive", "write_tips": False}).validate()


def test_a_yaml_file_gets_the_same_check(tmp_path):
    path = tmp_path / "grpo.yaml"
    path.write_text("algo: grpo\nmemory:\n  novelty_coef: 1\n")
    with pytest.raises(ConfigError, match=r"use algo 'grpo\+novelty'$"):
        apply_overrides(preset("cpu-smoke"), load_overrides_file(path)).validate()


@pytest.mark.parametrize("stored, label", [
    ({"write_tips": False, "novelty_coef": 1.0}, "grpo+novelty"),
    ({"write_tips": True, "novelty_coef": 0.0}, "grpo+tips-unseen"),
    ({"write_tips": False, "novelty_coef": 0.0}, "grpo"),
])
def test_an_ablation_stored_as_grpo_is_read_as_its_own_algorithm(stored, label):
    old = apply_overrides(preset("cpu-smoke"), {"algo": "grpo"}).to_dict()  # written before the table
    old["write_tips"], old["memory"]["novelty_coef"] = stored["write_tips"], stored["novelty_coef"]
    config = TrainConfig.from_dict(json.loads(json.dumps(old)))
    assert config.algo == label and config.format_version == FORMAT_VERSION
    config.validate()
    assert TrainConfig.from_dict(config.to_dict()) == config  # the relabelled config round-trips


def test_every_shipped_run_config_reads_with_its_own_label():
    root = Path(__file__).resolve().parents[1]
    paths = sorted([*(root / "data" / "sample_runs").rglob("config.json"), *(root / "docs").rglob("config.json")])
    assert len(paths) >= 10
    labels = set()
    for path in paths:
        config = TrainConfig.from_dict(json.loads(path.read_text()))
        if config.policy.init_adapter:  # a warm start's folder on the machine that trained (or the agent's sibling)
            assert config.policy.init_adapter.endswith(("/warm-start/warm-start-v10", "../warm-start")), path
            config.policy.init_adapter = ""
        if config.format_version >= 4:  # older ones are read for results only
            config.validate()
        labels.add(config.baseline or config.algo)
    assert labels == {"empo2", "grpo", "gigpo", "naive", "memory-only", "warm-start", "reflexion", "retrospex"}


def test_a_version_4_config_keeps_novelty_in_gigpos_step_returns_as_it_ran():
    stored = apply_overrides(preset("cpu-smoke"), {"algo": "empo2+gigpo"}).to_dict()
    assert stored["format_version"] == FORMAT_VERSION == 5 and stored["update"]["gigpo_step_novelty"] is False
    del stored["update"]["gigpo_step_novelty"]
    stored["format_version"] = 4
    assert TrainConfig.from_dict(json.loads(json.dumps(stored))).update.gigpo_step_novelty is True


def test_an_old_grpo_config_is_read_as_what_ran():
    old = preset("cpu-smoke").to_dict()  # a version-1 config.json: no format_version, no write_tips
    old.update(algo="grpo", p=0.5)
    del old["write_tips"], old["format_version"], old["update"]["mini_batch_actions"]
    old["update"].update(mini_batch_size=4, temperature=1.0)
    config = TrainConfig.from_dict(old)
    assert (config.p, config.write_tips, config.memory.novelty_coef) == (0.0, True, 1.0)
    assert config.format_version == 1
    assert config.algo == "grpo+novelty"  # version-1 GRPO paid novelty (and wrote tips that no prompt showed)
    assert "config format 1" in str(run_format_error(config, "runs/demo"))  # never trained on again
    assert run_format_error(preset("cpu-smoke"), "runs/demo") is None
    newer = {**preset("cpu-smoke").to_dict(), "format_version": 99}
    with pytest.raises(ConfigError, match="format_version: 99 is newer than this kit understands"):
        TrainConfig.from_dict(newer)


def test_overrides_are_typed_and_unknown_keys_are_named():
    config = apply_overrides(preset("cpu-smoke"), parse_set_arguments(
        ["update.learning_rate=3e-4", "group_size=3", "rollout.history_window=2", "use_off_policy=false",
         "policy.lora_target_modules=q_proj,v_proj"]))
    assert config.update.learning_rate == 3e-4 and config.group_size == 3 and config.rollout.history_window == 2
    assert config.use_off_policy is False and config.policy.lora_target_modules == ("q_proj", "v_proj")
    with pytest.raises(ConfigError, match="update.learn_rate: unknown setting; known settings of update: .*update.learning_rate"):
        apply_overrides(config, {"update.learn_rate": "1"})
    with pytest.raises(ConfigError, match="group_size: 'many' is not allowed; it must be a number"):
        apply_overrides(config, {"group_size": "many"})
    with pytest.raises(ConfigError, match="--set: 'p' is not allowed"):
        parse_set_arguments(["p"])


def test_yaml_overrides_nest_by_section(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("task: power-component\nupdate:\n  learning_rate: 0.001\nrollout:\n  max_steps: 7\n")
    config = apply_overrides(preset("cpu-smoke"), load_overrides_file(path))
    assert (config.task, config.update.learning_rate, config.rollout.max_steps) == ("power-component", 0.001, 7)


def test_config_round_trips_through_json():
    config = apply_overrides(preset("cpu-demo"), {"q": 0.85, "memory.entries_per": "episode"})
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize("change, message", [
    ({"p": 1.5}, r"p: 1.5 is not allowed; it must be a number in \[0, 1\]"),
    ({"q": -0.1}, r"q: -0.1 is not allowed"),
    ({"task": "find-unicorn"}, "task: 'find-unicorn' is not one of the paper's tasks"),
    ({"algo": "ppo"}, "algo: 'ppo' is not allowed; choose one of: empo2, grpo"),
    ({"group_size": 0}, "group_size: 0 is not allowed"),
    ({"update.mask_granularity": "word"}, "update.mask_granularity"),
    ({"update.temperature": 0.5}, "update.temperature: unknown setting; known settings of update: update.clip_high"),
    ({"update.lr": 1}, "update.lr: unknown setting; known settings of update: .*update.learning_rate"),
    ({"eval_temperature": -1.0}, r"eval_temperature: -1.0 is not allowed; it must be in \[0, 5\]"),
    ({"off_policy_old_logprob": "both"}, "off_policy_old_logprob"),
])
def test_validation_names_the_field(change, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(preset("cpu-smoke"), change).validate()


def test_every_preset_is_valid_and_gpu_presets_say_they_are_unverified():
    from empo2_lite.config import presets as train_config

    for name in train_config.PRESETS:
        preset(name).validate()
    assert "Unverified until measured" in train_config.__doc__


def test_the_gpu_learning_preset_is_the_embedded_model_on_cuda_and_says_it_is_unscreened():
    """Issue #27's preset: SmolLM2-135M in bf16 on CUDA, the slots engine with merged sampling,
    10-30-step episodes of a find task; never run, so it says so where users look."""
    from empo2_lite.config import DEFAULT_MODEL, PRESET_COSTS, UNSCREENED_PRESETS
    from empo2_lite.config import presets

    config = preset("gpu-learn")
    assert (config.policy.model, config.policy.dtype, config.policy.device) == (DEFAULT_MODEL, "bfloat16", "cuda")
    assert config.rollout.engine == "slots" and config.policy.merge_for_sampling
    assert config.task.startswith("find-") and 10 <= config.rollout.max_steps <= 30
    assert "gpu-learn" in UNSCREENED_PRESETS and "**Unscreened: these settings have never run**" in presets.__doc__
    assert "never run" in PRESET_COSTS["gpu-learn"].source


def test_training_refuses_nucleus_sampling_and_baselines_may_use_it():
    """Recorded log-probs are of the untruncated distribution, so top_p < 1 would bias the PPO ratio."""
    with pytest.raises(ConfigError) as error:
        apply_overrides(preset("cpu-smoke"), {"rollout.top_p": 0.9}).validate()
    message = str(error.value)
    assert message.startswith("rollout.top_p: 0.9 is not allowed for training; it must be 1") and "\n" not in message
    apply_overrides(preset("cpu-smoke"), {"rollout.top_p": 0.9, "baseline": "naive"}).validate()
    RolloutConfig(top_p=0.9).validate()  # evaluation's own settings


def test_bad_rollout_config_names_the_field():
    with pytest.raises(ConfigError, match=r"rollout\.top_p"):
        RolloutConfig(top_p=0).validate()
    with pytest.raises(ConfigError, match=r"rollout\.history_window"):
        RolloutConfig(history_window=0).validate()


@pytest.mark.parametrize("change, field", [
    ({"dtype": "int8"}, "policy.dtype"), ({"backend": "vllm"}, "policy.backend"),
    ({"lora_rank": -1}, "policy.lora_rank"), ({"lora_dropout": 1.5}, "policy.lora_dropout"),
    ({"lora_dropout": 0.1}, "policy.lora_dropout: 0.1 is not allowed; it must be 0"),
    ({"device": "tpu"}, "policy.device"),
])
def test_bad_policy_values_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        PolicyConfig(**change).validate()

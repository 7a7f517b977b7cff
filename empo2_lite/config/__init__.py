"""Every setting of the kit, in one torch-free place.

``checks`` (the error and the checks that word it), ``sections`` (environment, policy, rollouts,
memory, update: each validates itself), ``train`` (the run's ``TrainConfig``, its file format),
``overrides`` (``--set``, YAML files, algorithm implications) and ``presets`` (named presets and
their cost). Importing it imports neither torch nor transformers, so bad input is reported in well
under a second.
"""

from empo2_lite.config.checks import ConfigError, check_choice, check_fraction, check_integer, check_positive
from empo2_lite.config.overrides import (
    ALGO_SETTINGS,
    SECTIONS,
    apply_overrides,
    known_settings,
    load_overrides_file,
    parse_set_arguments,
)
from empo2_lite.config.presets import PRESET_COSTS, PRESETS, PresetCost, preset
from empo2_lite.config.sections import (
    DEFAULT_MODEL,
    MASK_GRANULARITIES,
    MEMORY_RETRIEVERS,
    EnvConfig,
    MemoryConfig,
    PolicyConfig,
    RolloutConfig,
    UpdateConfig,
)
from empo2_lite.config.train import (
    ALGOS,
    BASELINES,
    FORMAT_VERSION,
    OFF_POLICY_OLD_LOGPROBS,
    TrainConfig,
    config_json,
    run_format_error,
)

__all__ = [
    "ALGOS", "ALGO_SETTINGS", "BASELINES", "DEFAULT_MODEL", "FORMAT_VERSION", "MASK_GRANULARITIES", "MEMORY_RETRIEVERS",
    "OFF_POLICY_OLD_LOGPROBS", "PRESETS", "PRESET_COSTS", "SECTIONS", "ConfigError", "EnvConfig", "MemoryConfig",
    "PolicyConfig", "PresetCost", "RolloutConfig", "TrainConfig", "UpdateConfig", "apply_overrides", "check_choice",
    "check_fraction", "check_integer", "check_positive", "config_json", "known_settings", "load_overrides_file",
    "parse_set_arguments", "preset", "run_format_error",
]

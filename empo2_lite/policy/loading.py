"""Load the acting model from a ``PolicyConfig``: any Hugging Face causal LM, with a LoRA adapter.

What is decided here and why:

* **Where the model comes from.** ``embedded:smollm2-135m-instruct`` builds the CPU default once
  (``default_model.py``); ``tiny:byte`` and ``tiny:smollm2`` build a 2-layer random test model
  once (``tiny.py``); ``random:<name>`` builds a same-shape random-weight model (below); an
  existing folder loads locally; anything else is a hub name, which needs the network (not
  available in CI: tests use local folders).
* **Same-shape random models** (``random:qwen2.5-3b-instruct``, or ``random:<path to a
  config.json>``): the architecture of ``data/model_configs/<name>.json`` built directly on the
  target device in the target dtype (a 7B model is never materialised in float32 on the CPU),
  seeded, with SmolLM2's tokenizer from ``data/tokenizers/smollm2``. Why: the GPU presets' time
  and memory can be measured on a machine with no network and no weights. The model's vocabulary
  is larger than the tokenizer's, so a hook on the output layer gives every id the tokenizer
  cannot decode a large finite negative logit (finite: the entropy -(p*log p) would be 0*-inf).
* **dtype "auto".** bfloat16 on GPUs that support it, float32 otherwise (CPU bf16 matmuls are slow
  on most CPUs and change log-probs more than they save).
* **LoRA targets.** Detected from the module names of Llama/Qwen2-style models; a requested name
  that the model lacks is an error that lists what the model has.
* **Reference policy.** The optional KL term needs pi_ref; with LoRA it is the same model with
  the adapter disabled (``Policy.reference()``), so no second copy is held in memory. With a warm
  start (``policy.init_adapter``) its adapter is merged into the base weights at load
  (``init_adapter.py``), so the reference is the warm start.
* **Context.** Given the run's ``RolloutConfig`` (and its ``MemoryConfig`` when tips are written),
  the longest sequence the run feeds the model must fit its ``max_position_embeddings``: an
  episode of ``rollout.max_context_tokens``, plus, for tip writing, the closing turn's reserve
  (``config.sections.TIP_CLOSING_TOKENS``) and the tip. Checked from the model's config before the
  weights load: past its positions a model does not fail, it silently reads garbage.
* **GPU-only options** (``backend="unsloth"``, ``load_in_4bit``) import their packages lazily and
  only after CUDA is confirmed; CPU runs never import them. Neither has ever run (no GPU so far),
  so choosing one warns.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from empo2_lite.config import DEFAULT_MODEL, ConfigError, MemoryConfig, PolicyConfig, RolloutConfig
from empo2_lite.config.presets import NO_GPU_RUN
from empo2_lite.config.sections import TIP_CLOSING_TOKENS
from empo2_lite.policy.init_adapter import merge_init_adapter

LORA_CANDIDATES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
RANDOM_PREFIX = "random:"
RANDOM_WEIGHTS_SEED = 0
UNDECODABLE_LOGIT = -1e4
"""Logit of ids the tokenizer cannot decode: exp() underflows to 0, and finite, unlike -inf."""
UNTESTED_WARNING = "{field}={value!r} has never been run ({why}); check its results"


@dataclass
class Policy:
    """The acting model, its tokenizer and where it runs."""

    model: Any
    """A transformers causal LM, wrapped by peft when LoRA is on."""
    tokenizer: Any
    device: Any
    config: PolicyConfig
    merger: Any = field(default=None, repr=False, compare=False)
    """The ``merged.MergedLoRA`` of this policy, made at its first merge."""

    @property
    def has_adapter(self) -> bool:
        """Whether a LoRA adapter is attached (then only its parameters train)."""
        return hasattr(self.model, "disable_adapter")

    def for_sampling(self) -> None:
        """Merge the LoRA update into the base weights when ``policy.merge_for_sampling``
        (``merged.py``; a no-op while merged). Every sampler calls it before decoding."""
        if self.config.merge_for_sampling and self.has_adapter:
            if self.merger is None:
                from empo2_lite.policy.merged import MergedLoRA

                self.merger = MergedLoRA(self.model)
            self.merger.merge()

    def for_training(self) -> None:
        """Restore the exact base weights if merged. Called before every forward whose result
        trains or is compared (the update's scoring, the reference policy) and before adapter
        weights are loaded, so that nothing trains through or loads into merged weights."""
        if self.merger is not None:
            self.merger.restore()

    @contextlib.contextmanager
    def reference(self) -> Iterator[Any]:
        """The reference policy: the same model with the adapter switched off, inside the block."""
        if not self.has_adapter:
            raise RuntimeError("the reference policy needs a LoRA adapter (policy.lora_rank > 0)")
        self.for_training()
        with self.model.disable_adapter():
            yield self.model

    def trainable_parameters(self) -> list:
        """Parameters the optimiser updates."""
        return [p for p in self.model.parameters() if p.requires_grad]


def resolve_device(config: PolicyConfig):
    """The torch device for ``config.device``; asking for CUDA without one is a ConfigError."""
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("policy.device: 'cuda' was asked for but no CUDA GPU is available; choose one of: auto, cpu")
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def resolve_dtype(config: PolicyConfig, device):
    """The torch dtype for ``config.dtype`` on ``device``."""
    import torch

    if config.dtype != "auto":
        return getattr(torch, config.dtype)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32


def random_config_path(model: str) -> Path:
    """The config.json of a ``random:<name>`` or ``random:<path>`` model; ConfigError if missing."""
    from empo2_lite.tasks import data_dir

    name = model[len(RANDOM_PREFIX):]
    configs = data_dir() / "model_configs"
    path = Path(name).expanduser() if name.endswith(".json") else configs / f"{name}.json"
    if not path.is_file():
        known = sorted(RANDOM_PREFIX + p.stem for p in configs.glob("*.json"))
        raise ConfigError(f"policy.model: no model config at {str(path)!r}; choose one of: {', '.join(known)}, "
                          f"or {RANDOM_PREFIX}<path to a config.json>")
    return path


def random_tokenizer_dir() -> Path:
    """SmolLM2-135M-Instruct's tokenizer files, shipped for the random-weight models."""
    from empo2_lite.tasks import data_dir

    return data_dir() / "tokenizers" / "smollm2"


def resolve_model_source(model: str) -> str:
    """A local folder for embedded and local models, the config file of a random-weight model,
    or the hub name unchanged."""
    if model.startswith(RANDOM_PREFIX):
        return str(random_config_path(model))
    if model == DEFAULT_MODEL:
        from empo2_lite.policy.default_model import ensure_default_model

        return str(ensure_default_model())
    if model in ("tiny:byte", "tiny:smollm2"):
        from empo2_lite.policy.tiny import ensure_tiny_model

        return str(ensure_tiny_model(model.split(":", 1)[1]))
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ConfigError(f"policy.model: {model!r} is a folder without config.json; it is not a saved model")
        return str(path)
    if model.startswith(("/", ".", "~")) or model.count("/") != 1:
        raise ConfigError(
            f"policy.model: no model folder at {model!r}; give an existing folder, a hub name like "
            f"'Qwen/Qwen2.5-1.5B-Instruct', or {DEFAULT_MODEL!r}"
        )
    return model


def detect_lora_targets(model, requested: tuple[str, ...] | None) -> list[str]:
    """Leaf module names to adapt; ConfigError when a requested name is missing."""
    import torch

    present = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}
    if requested:
        missing = sorted(set(requested) - present)
        if missing:
            raise ConfigError(
                f"policy.lora_target_modules: {missing} not found in the model; its linear layers are: {sorted(present)}"
            )
        return list(requested)
    found = [name for name in LORA_CANDIDATES if name in present]
    if not found:
        raise ConfigError(
            "policy.lora_target_modules: none of the Llama/Qwen2 projection names "
            f"{list(LORA_CANDIDATES)} is in the model; set them explicitly from: {sorted(present)}"
        )
    return found


def load_tokenizer(source: str, trust_remote_code: bool = False):
    """The tokenizer of ``source``, checked to be non-empty and to carry a chat template."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    if len(tokenizer) == 0 or not tokenizer("look around", add_special_tokens=False).input_ids:
        raise ConfigError(f"policy.model: the tokenizer loaded from {source!r} is empty")
    if not tokenizer.chat_template:
        raise ConfigError(f"policy.model: the tokenizer of {source!r} has no chat template; use an instruct model")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.clean_up_tokenization_spaces = False  # decoding must give back exactly what was sampled
    return tokenizer


def mask_undecodable_logits(model, decodable: int) -> None:
    """Give ids >= ``decodable`` the logit ``UNDECODABLE_LOGIT`` at every forward of the output layer,
    so sampling and scoring never see a token the tokenizer cannot turn back into text.

    In place: the output layer's backward needs only its input and weight, and a copy of a
    tokens x vocabulary tensor would add to the peak memory being measured."""
    head = model.get_output_embeddings()
    if head.out_features <= decodable:
        return

    def hook(module, inputs, output):
        output[..., decodable:] = UNDECODABLE_LOGIT
        return output

    head.register_forward_hook(hook)


def build_random_model(config_path: Path, tokenizer, device, dtype, seed: int = RANDOM_WEIGHTS_SEED):
    """A random-weight causal LM of the architecture in ``config_path``, created on ``device`` in ``dtype``.

    Built inside ``torch.device(device)``, so the weights are allocated and initialised there
    directly (seeded; the caller's RNG state is left as it was)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    values = json.loads(config_path.read_text())
    model_config = AutoConfig.for_model(values.pop("model_type"), **values)
    cuda_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_devices), torch.device(device):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(model_config, dtype=dtype)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    mask_undecodable_logits(model, len(tokenizer))
    return model


def _load_pretrained(config: PolicyConfig, source: str, device, dtype):
    """Tokenizer and model of a saved or hub checkpoint (4-bit via bitsandbytes when asked)."""
    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(source, config.trust_remote_code)
    extra: dict[str, Any] = {}
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig

        extra["quantization_config"] = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_compute_dtype=dtype)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, trust_remote_code=config.trust_remote_code, **extra)
    except OSError as error:
        raise ConfigError(f"policy.model: could not load {config.model!r}: {error}") from error
    if not config.load_in_4bit:
        model.to(device)
    return model, tokenizer


def _require_cuda(field_name: str, value: object) -> None:
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"{field_name}: {value!r} needs a CUDA GPU and none is available; on CPU use backend 'hf' without 4-bit")


def causal_lm(model):
    """The transformers causal LM itself, under peft's LoRA wrapper when there is one. The one place
    that unwraps: the checkpoint's ``config`` and ``generation_config`` and the plain forward live on
    it, and whether a model is wrapped depends on ``lora_rank``, which no caller should re-test."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def position_limit(model) -> int | None:
    """The longest sequence ``model`` (a model or its config) has positions for; None when its
    config does not say."""
    return getattr(getattr(model, "config", model), "max_position_embeddings", None)


def check_context_fits(model: str, positions: int | None, rollout: RolloutConfig, tips: MemoryConfig | None) -> None:
    """Refuse, in one line, a context the model has no positions for: an episode of
    ``rollout.max_context_tokens`` and, with ``tips``, its tip prompt's closing turn and the tip."""

    reserve = TIP_CLOSING_TOKENS + tips.tip_max_new_tokens if tips is not None else 0
    if positions is None or rollout.max_context_tokens + reserve <= positions:
        return
    writing = (f" plus {reserve} for writing a tip (its closing turn {TIP_CLOSING_TOKENS}, memory.tip_max_new_tokens "
               f"{tips.tip_max_new_tokens})") if tips is not None else ""
    raise ConfigError(f"rollout.max_context_tokens: {rollout.max_context_tokens}{writing} is more than the "
                      f"{positions} positions of {model!r}; it must be at most {positions - reserve}")


def load_policy(config: PolicyConfig, rollout: RolloutConfig | None = None, tips: MemoryConfig | None = None) -> Policy:
    """Build the policy described by ``config`` (validated first, before anything heavy). With
    ``rollout`` (and ``tips`` when the run writes tips) the context must fit the model
    (``check_context_fits``), checked from its config before the weights load."""
    config.validate()
    if config.backend == "unsloth":
        _require_cuda("policy.backend", config.backend)
        warnings.warn(UNTESTED_WARNING.format(field="policy.backend", value=config.backend, why=NO_GPU_RUN), stacklevel=2)
    if config.load_in_4bit:
        _require_cuda("policy.load_in_4bit", config.load_in_4bit)
        warnings.warn(UNTESTED_WARNING.format(field="policy.load_in_4bit", value=config.load_in_4bit,
                                              why=NO_GPU_RUN), stacklevel=2)
    device = resolve_device(config)
    dtype = resolve_dtype(config, device)
    source = resolve_model_source(config.model)
    if rollout is not None:
        check_context_fits(config.model, _config_positions(config, source), rollout, tips)
    if config.backend == "unsloth":
        model, tokenizer = _load_unsloth(config, source, dtype)
        return Policy(model=model, tokenizer=tokenizer, device=device, config=config)
    if config.model.startswith(RANDOM_PREFIX):
        tokenizer = load_tokenizer(str(random_tokenizer_dir()))
        model = build_random_model(Path(source), tokenizer, device, dtype)
    else:
        model, tokenizer = _load_pretrained(config, source, device, dtype)
    model = merge_init_adapter(model, config, detect_lora_targets)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    if config.lora_rank > 0:
        from peft import LoraConfig, get_peft_model

        targets = detect_lora_targets(model, config.lora_target_modules)
        lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                          target_modules=targets, task_type="CAUSAL_LM")
        model = get_peft_model(model, lora)
    return Policy(model=model, tokenizer=tokenizer, device=device, config=config)


def _config_positions(config: PolicyConfig, source: str) -> int | None:
    """The model's positions, read from its config alone (no weights)."""
    from transformers import AutoConfig

    try:
        return position_limit(AutoConfig.from_pretrained(source, trust_remote_code=config.trust_remote_code))
    except OSError as error:
        raise ConfigError(f"policy.model: could not load {config.model!r}: {error}") from error


def _load_unsloth(config: PolicyConfig, source: str, dtype):
    """unsloth's fast loader (CUDA only; imported only here)."""
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(source, dtype=dtype, load_in_4bit=config.load_in_4bit)
    if config.lora_rank > 0:
        targets = list(config.lora_target_modules or LORA_CANDIDATES)
        model = FastLanguageModel.get_peft_model(
            model, r=config.lora_rank, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
            target_modules=targets,
            use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
        )
    return model, tokenizer

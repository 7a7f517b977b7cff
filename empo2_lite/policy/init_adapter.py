"""Start a policy from a warm start: its adapter merged into the base weights (``policy.init_adapter``).

Why merged, and not loaded as the adapter RL goes on training: the model RL starts from is then
the base model, adapter-free, of everything that follows. So the RL adapter starts at zero (its
run's first rollouts are the warm start's), and the reference policy (``Policy.reference()``, the
model with its adapter switched off: the optional KL term's pi_ref) is the warm start, not the bare
instruct model. Low-probability masking needs no reference (it reads the current policy or the
sampling log-probs), so it is unchanged. Every load of the run (training, resume, evaluation, a
baseline) merges the same folder's adapter, because the path is part of the run's config.

The warm start's LoRA shape (rank, alpha, targets) is its own run's config; its model must be the
same as the run's. A warm start that itself started from one is merged after it. Merging draws no
random number that the run would otherwise draw: peft's initialisation of the throw-away adapter
runs on a forked generator.
"""

from __future__ import annotations

from collections.abc import Callable

from empo2_lite.config import ConfigError, PolicyConfig


def merge_init_adapter(model, config: PolicyConfig, lora_targets: Callable[..., list[str]]):
    """``model`` with the adapter of the run folder ``config.init_adapter`` merged into its weights
    (``model`` unchanged when there is none). ``lora_targets(model, names)`` gives the modules a
    LoRA config adapts (``loading.detect_lora_targets``, passed in: loading imports this module)."""
    if not config.init_adapter:
        return model
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from empo2_lite.runs import RunDir

    run = RunDir(config.init_adapter)
    warm = run.config().policy
    checkpoint = run.latest_checkpoint()
    if checkpoint is None:
        raise ConfigError(f"policy.init_adapter: {config.init_adapter} has no checkpoint (no adapter to start from)")
    if warm.model != config.model:
        raise ConfigError(f"policy.init_adapter: {config.init_adapter} was trained on {warm.model!r}, not on "
                          f"{config.model!r}; start from a warm start of the same model")
    if warm.lora_rank < 1:
        raise ConfigError(f"policy.init_adapter: {config.init_adapter} has no LoRA adapter (policy.lora_rank 0)")
    model = merge_init_adapter(model, warm, lora_targets)
    lora = LoraConfig(r=warm.lora_rank, lora_alpha=warm.lora_alpha, lora_dropout=0.0,
                      target_modules=lora_targets(model, warm.lora_target_modules), task_type="CAUSAL_LM")
    devices = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        wrapped = get_peft_model(model, lora)
    loaded = set_peft_model_state_dict(wrapped, run.read_adapter(checkpoint))
    if loaded.unexpected_keys:
        raise ConfigError(f"policy.init_adapter: {config.init_adapter}'s adapter does not fit the model (e.g. "
                          f"{loaded.unexpected_keys[0]})")
    return wrapped.merge_and_unload()

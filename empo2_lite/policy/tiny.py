"""Tiny random causal LMs for tests and smoke runs, built from a config into a folder.

Why: tests must run without a hub and in seconds. A 2-layer Llama-style model with random weights
exercises every code path the real models do (chat template, LoRA targets, KV cache, log-probs).
Two tokenizers:

* ``"byte"``: a byte-level tokenizer (256 byte tokens + the three ChatML special tokens) with a
  ChatML chat template; builds instantly, every string round-trips exactly;
* ``"smollm2"``: SmolLM2's real BPE tokenizer and its own ChatML template, taken from the
  embedded default model (built once, see ``default_model.py``), for tests where the real
  template and real merges matter.
"""

from __future__ import annotations

from pathlib import Path

CHATML_SPECIALS = ("<|im_start|>", "<|im_end|>", "<|endoftext|>")

# ChatML, written out for the byte tokenizer: each message is
# <|im_start|>{role}\n{content}<|im_end|>\n, and the generation prompt opens an assistant turn.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def byte_tokenizer():
    """A byte-level fast tokenizer with ChatML special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(alphabet)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(CHATML_SPECIALS)})
    tokenizer.chat_template = CHATML_TEMPLATE
    return tokenizer


def smollm2_tokenizer():
    """SmolLM2-135M-Instruct's tokenizer (fast, real ChatML template), from the default model."""
    from transformers import PreTrainedTokenizerFast

    from empo2_lite.policy.default_model import ensure_default_model

    return PreTrainedTokenizerFast.from_pretrained(ensure_default_model())


def build_tiny_model(folder: str | Path, tokenizer: str = "byte", seed: int = 0, hidden_size: int = 64,
                     init_std: float = 0.2):
    """Save a 2-layer random Llama-style causal LM and its tokenizer into ``folder``; return the path.

    ``init_std`` is larger than Llama's 0.02 on purpose: with tiny random weights the output is
    almost uniform and almost insensitive to LoRA updates, so nothing could be learned in tests.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if tokenizer not in ("byte", "smollm2"):
        raise ValueError(f"tokenizer: {tokenizer!r} is not allowed; choose one of: byte, smollm2")
    tok = byte_tokenizer() if tokenizer == "byte" else smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
        initializer_range=init_std,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def ensure_tiny_model(kind: str = "byte") -> Path:
    """A tiny model kept in the cache dir (``tiny:byte`` / ``tiny:smollm2`` model names), built once."""
    import os
    import shutil
    import tempfile

    from empo2_lite.policy.default_model import cache_dir

    target = cache_dir() / f"tiny-{kind}"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"tiny-{kind}.", dir=target.parent))
    build_tiny_model(staging, kind)
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    return target

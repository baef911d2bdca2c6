"""Generate machine text: sampling methods, the batched KV-cache sampling loop, per-record seeds."""

from gpt2guard.generator.sample import GenerationResult, generate_tokens, plan_batches, sample_batch
from gpt2guard.generator.sampling import (SamplingConfig, filter_logits, nucleus_mask, parse_sampling,
                                          sample_inverse_cdf, top_k_mask)
from gpt2guard.generator.seeding import uniforms

__all__ = ["GenerationResult", "SamplingConfig", "filter_logits", "generate_tokens", "nucleus_mask",
           "parse_sampling", "plan_batches", "sample_batch", "sample_inverse_cdf", "top_k_mask", "uniforms"]

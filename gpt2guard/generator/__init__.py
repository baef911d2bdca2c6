"""Generate machine text: sampling methods, the batched KV-cache sampling loop, per-record seeds.

Modules:

``sampling``  :class:`SamplingConfig`, :func:`parse_sampling`, and the rules as pure
              functions on logits (:func:`filter_logits`, :func:`top_k_mask`,
              :func:`nucleus_mask`, :func:`sample_inverse_cdf`)
``draw``      :func:`draw_tokens`: the same draws as the rules, faster
``seeding``   per-record counter-based uniform numbers (:func:`uniforms`)
``forward``   GPT-2's forward pass, computing a row's bits independently of its batch
``kvcache``   the preallocated key/value cache it writes to
``sample``    :func:`generate_tokens` and :func:`sample_batch`: the sampling loop
"""

from gpt2guard.generator.draw import draw_tokens
from gpt2guard.generator.forward import MIN_ROWS, min_rows_for
from gpt2guard.generator.sample import GenerationResult, generate_tokens, plan_batches, sample_batch
from gpt2guard.generator.sampling import (SamplingConfig, filter_logits, nucleus_mask, parse_sampling,
                                          sample_inverse_cdf, top_k_mask)
from gpt2guard.generator.seeding import uniforms

__all__ = ["MIN_ROWS", "GenerationResult", "SamplingConfig", "draw_tokens", "filter_logits", "generate_tokens",
           "nucleus_mask", "parse_sampling", "plan_batches", "sample_batch", "sample_inverse_cdf", "top_k_mask",
           "min_rows_for", "uniforms"]

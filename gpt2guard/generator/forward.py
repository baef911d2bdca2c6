"""GPT-2's forward pass over a :class:`~gpt2guard.generator.kvcache.RowCache`, written so
that a row computes the same bits in any batch.

It runs the model's own modules (embeddings, layer norms, ``c_attn``, ``c_proj``, MLP,
``lm_head``) in GPT-2's order; only the attention core and the cache are ours. Why not
the model's ``forward``: batched float arithmetic on CPU is not batch-invariant, and a
sampled token flips when its row's probabilities move by even 1e-6 (then the rest of
the record differs). Three things make a row's logits depend on its neighbours, and each
is removed here:

1. Left padding. Padding a shorter prompt shifts its keys to other columns, which
   changes how attention kernels split and sum them. Here no row is padded on the left
   (each row's prompt starts at column 0, see :mod:`.kvcache`), and attention reads
   exactly a row's own filled columns: one call for the batch when all rows have the
   same length, else one call per row.
2. The number of rows in a matrix product. CPU libraries pick their kernel by the number
   of rows M, and kernels sum in different orders: a one-row product takes a
   matrix-vector path, and some libraries change kernels again at 4, 5 or 16 rows. From
   some M on, a row's bits no longer change; that M depends on the CPU, the library and
   the thread count, so it is measured on the machine at hand for the model's own layer
   shapes (:func:`gpt2guard.family.linear.invariant_rows`, cached per CPU; 2 for both
   backends on the Intel Xeon and for oneDNN on the AMD EPYC measured, 4 for MKL on the
   AMD). Every product runs with at least :func:`min_rows_for` rows: a batch with fewer
   live rows carries dummy rows (pass ``min_rows=1`` to skip them: then a record's bits
   are those of one-row products, the same alone as in any batch run that way). The rows
   used, the backend, the thread count, torch's version and the CPU are recorded in each
   record's provenance (:func:`gpt2guard.family.linear.kernel_provenance`).
3. Row position and neighbour content do not matter for a given M (measured, and
   asserted by the tests, which compare records generated alone and in batches bit for
   bit on the machine running them).

The output layer (:class:`OutputLayer`) on the default path multiplies by a contiguous
transposed copy of ``lm_head``'s weight, ``hidden @ W.T`` as an "NN" product, faster than
``F.linear``'s "NT" product over GPT-2's 50257 x 768 matrix on both CPUs measured (Intel:
10.0 against 11.9 ms at one row, 27 against 38 ms at 8). Its logits agree with
``model.lm_head``'s to float32 rounding (~1e-6 relative), not bit for bit: which of the two
products gives which bits is the BLAS's choice per CPU. What the loop needs is that the
layer it uses is the same in every batch, and that is the measured invariance above (the
output layer's shape is one of those measured). On oneDNN it reads ``lm_head``'s weight as
it is.

What this promises. A record's bits are a function of its provenance, including the
recorded rows per product, backend, thread count, torch version and CPU: on a machine that
matches all of them regeneration gives the same bits, whatever the batch (tested).
Elsewhere (another CPU model or ISA, another torch, thread count or backend, a GPU) the
logits move in their last bits; the tokens are usually the same, but a token whose
probabilities sit on a boundary can flip and the rest of the record then differs.
Regeneration says so when the kernels differ (:func:`gpt2guard.generator.run.regenerate`).
"""

from __future__ import annotations

from gpt2guard.errors import GuardError

# Rows per product where the invariance cannot be measured (no model given, or no row count
# tried gave it): the most any CPU measured so far needed.
MIN_ROWS = 4


def min_rows_for(backend: str, model=None, rows: int = 8) -> int:
    """Fewest rows per product for which a row's bits do not depend on the batch, on
    ``backend``, for ``model``'s layer shapes on this CPU and thread count (measured once and
    cached, see :func:`gpt2guard.family.linear.invariant_rows`; for batches of up to
    ``max(16, rows)`` rows). Without a model, or on a non-float32 or non-CPU model where
    nothing is measured, :data:`MIN_ROWS`."""
    import torch

    from gpt2guard.family.linear import invariant_rows

    if model is None:
        return MIN_ROWS
    p = next(model.parameters())
    if p.device.type != "cpu" or p.dtype != torch.float32:
        return MIN_ROWS
    return invariant_rows(backend, model, rows=rows) or MIN_ROWS


def check_gpt2(model) -> None:
    """GuardError unless ``model`` is a GPT-2 language model this forward pass can run."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) != "gpt2" or not hasattr(model, "transformer"):
        raise GuardError(f"the generator runs GPT-2 models (model_type 'gpt2'), not "
                         f"{getattr(cfg, 'model_type', type(model).__name__)!r}")
    if getattr(cfg, "add_cross_attention", False):
        raise GuardError("the generator does not run GPT-2 models with cross-attention")


def _attend(q, K, V, kv_lengths: list[int], scale: float, prompt: bool):
    """Attention of new queries ``q`` (B, H, T, D) over each row's first ``kv_lengths[b]``
    cache columns of ``K``, ``V`` (B, H, capacity, D). For a prompt (T > 1, written at
    columns [0, T)), row b's real tokens are its first ``kv_lengths[b]`` and attend
    causally; the outputs at its padding positions are zeros and never used."""
    import torch
    import torch.nn.functional as F

    B, H, T, D = q.shape
    if len(set(kv_lengths)) == 1:
        n = kv_lengths[0]
        return F.scaled_dot_product_attention(q[:, :, :n] if prompt else q, K[:, :, :n], V[:, :, :n],
                                              is_causal=prompt, scale=scale)     # (B, H, T, D)
    out = torch.zeros_like(q) if prompt else torch.empty_like(q)
    for b, n in enumerate(kv_lengths):
        qb = q[b:b + 1, :, :n] if prompt else q[b:b + 1]                          # (1, H, T_b, D)
        out[b:b + 1, :, :qb.shape[2]] = F.scaled_dot_product_attention(
            qb, K[b:b + 1, :, :n], V[b:b + 1, :, :n], is_causal=prompt, scale=scale)
    return out


def forward_hidden(model, input_ids, positions, cache, columns, kv_lengths: list[int]):
    """Run GPT-2 on new tokens, storing their keys and values; return final hidden states.

    Parameters
    ----------
    model : transformers.GPT2LMHeadModel
    input_ids : torch.Tensor
        ``(B, T)``: a batch of prompts (right-padded, T > 1 or T = 1 with ``columns``
        None) or one new token per row.
    positions : torch.Tensor
        ``(B, T)`` position of each token in its row.
    cache : RowCache
    columns : torch.Tensor or None
        ``(B,)`` cache column of each row's new token; None for prompts (columns 0..T-1).
    kv_lengths : list of int
        Per row, the cache columns its attention reads: its prompt length for prompts,
        else ``columns[b] + 1``.

    Returns
    -------
    torch.Tensor
        ``(B, T, d)`` after the final layer norm.
    """
    tr = model.transformer
    B, T = input_ids.shape
    prompt = columns is None
    if not prompt and len(set(kv_lengths)) == 1:
        columns = kv_lengths[0] - 1                   # every row writes the same column: a plain slice
    x = tr.wte(input_ids) + tr.wpe(positions)                                     # (B, T, d)
    for i, block in enumerate(tr.h):
        attn = block.attn
        H, D = attn.num_heads, attn.head_dim
        q, k, v = attn.c_attn(block.ln_1(x)).split(attn.split_size, dim=2)       # 3 x (B, T, d)
        q, k, v = (t.view(B, T, H, D).transpose(1, 2) for t in (q, k, v))        # 3 x (B, H, T, D)
        K, V = cache.write(i, k, v, columns)                                      # (B, H, capacity, D)
        y = _attend(q, K, V, kv_lengths, attn.scaling, prompt)                    # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, H * D)                                # (B, T, d)
        x = attn.c_proj(y) + x                                                    # residual
        x = block.mlp(block.ln_2(x)) + x                                          # residual
    return tr.ln_f(x)                                                             # (B, T, d)


class OutputLayer:
    """GPT-2's output layer (``lm_head``, no bias) as the loop computes it: on oneDNN with
    ``lm_head``'s own weight; on the default path on CPU in float32 as ``hidden @ W.T`` with
    ``W.T`` stored contiguously (faster, and the same logits as ``lm_head`` up to float32
    rounding, see the module notes). The copy is kept on the model's ``lm_head`` for later
    batches (the size of the output weight, 154 MB for GPT-2 small) and made again when the
    weight changes. Another device or dtype, or a head with a bias, goes through
    ``model.lm_head``.

    Parameters
    ----------
    model : transformers.GPT2LMHeadModel
    backend : str
        ``"aten"`` or ``"onednn"`` (:mod:`gpt2guard.family.linear`).
    """

    def __init__(self, model, backend: str = "aten"):
        import torch

        head = model.lm_head
        self.head, self.backend = head, backend
        w = head.weight                                                           # (V, d)
        fast = backend == "aten" and head.bias is None and w.device.type == "cpu" and w.dtype == torch.float32
        self.weight_t = None
        if fast:
            try:
                tag = (w.data_ptr(), w._version, tuple(w.shape))
            except RuntimeError:                                                  # an inference tensor: no version
                tag = None
            kept = head.__dict__.get("_gpt2guard_weight_t")
            if tag is None or kept is None or kept[0] != tag:
                kept = (tag, w.detach().t().contiguous())                         # (d, V), a copy
                head.__dict__["_gpt2guard_weight_t"] = kept
            self.weight_t = kept[1]

    def __call__(self, hidden):
        """``(b, d)`` final hidden states -> ``(b, V)`` float32 logits."""
        from gpt2guard.family.linear import linear

        if self.backend == "onednn":
            return linear(hidden, self.head.weight, self.head.bias, "onednn").float()
        if self.weight_t is None:
            return self.head(hidden).float()
        return hidden @ self.weight_t                                             # (b, V)

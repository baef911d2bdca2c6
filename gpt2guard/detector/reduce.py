"""Project hidden states onto the vocabulary a chunk of positions at a time, and reduce each
chunk to per-token statistics at once, so batch x length x vocabulary logits never exist.

For a chunk of ``R`` positions the scorer's logits ``z`` (R, V) are computed, shifted by
their row maximum (``z' = z - max z <= 0``) and exponentiated once (``e = exp z'``, row sums
``s``). Everything else follows from ``z'``, ``e`` and ``s``:

* ``log p(x) = z'_x - log s``
* ``rank = #{v : z_v > z_x}`` (a comparison and a count, not a sort)
* ``E_p[log p] = sum(e z') / s - log s`` and ``H(p) = -E_p[log p]``
* ``Var_p[log p] = Var_p[z'] = sum(e z'^2) / s - (sum(e z') / s)^2``

With a reference model, its logits give ``q`` on the same rows, and
``-sum_v q_v log p_v = log s - E_q[z']`` and ``Var_q[log p] = Var_q[z']``.

The shift by the row maximum keeps ``exp`` finite and makes the one-pass variance under
``p`` safe: ``-E_p[z'] = H(p) - log s <= log V``, so ``E_p[z'^2]`` exceeds the variance by at
most ``(log V)^2`` (about 120 for GPT-2) and float32 cancellation costs ~1e-5. Under ``q``
no such bound holds (``q`` may weight tokens far below the scorer's maximum), so that
variance is taken about its mean, centring ``z'`` in place. Statistics are float32 whatever
the dtype of the model. The (R, V) work buffers are allocated once and reused by every
chunk. The logits themselves come from oneDNN's float32 linear on CPU (see
:mod:`gpt2guard.family.linear`; about twice as fast as MKL's product), which returns a fresh
tensor per chunk (measured: no slower than one product over all rows), else they are
written into a reused buffer.
"""

from __future__ import annotations

# Rows of one logits chunk, by default: at least CHUNK_MIN_ROWS, so the output product runs
# at full speed, and for small vocabularies as many as fit CHUNK_TARGET_ELEMENTS float32
# values (4 MiB), so the elementwise passes over a chunk stay in the CPU's cache. Measured
# (2 cores, statistics overhead over a bare forward pass): nano xl (vocabulary 4096) +12.7%
# with 2048-row chunks, -2.6% with 256; GPT-2 124M +13% with 20 rows, -2.5% with 83, -3.9%
# with 166.
# On a CUDA GPU a chunk costs about a dozen kernel launches whatever its rows, and 128-row
# chunks would leave the GPU waiting for them: chunks there hold up to GPU_CHUNK_ELEMENTS
# values (64 Mi float32, 256 MiB a buffer; 1335 rows of GPT-2's vocabulary).
DEFAULT_CHUNK_ELEMENTS = None
CHUNK_TARGET_ELEMENTS = 1 << 20
GPU_CHUNK_ELEMENTS = 1 << 26
CHUNK_MIN_ROWS = 128


def chunk_rows(vocab: int, chunk_elements: int | None = None, device: str = "cpu") -> int:
    """Rows per logits chunk: ``chunk_elements // vocab`` (at least 1) when given, else the
    default policy above for ``device`` (``"cpu"``, ``"cuda"``...)."""
    if chunk_elements is None:
        target = GPU_CHUNK_ELEMENTS if str(device).startswith("cuda") else CHUNK_TARGET_ELEMENTS
        return max(CHUNK_MIN_ROWS, target // vocab)
    return max(1, chunk_elements // vocab)


STAT_NAMES = ("logp", "rank", "entropy", "mean_ref", "var_ref")
REFERENCE_STAT_NAMES = ("cross_entropy", "cross_var")


def _rowdot(a, b):
    """Row-wise dot products of two (R, V) tensors as a batched matmul: (R,), no (R, V) temporary."""
    return (a.unsqueeze(1) @ b.unsqueeze(2)).view(-1)  # (R, 1, V) @ (R, V, 1) -> (R,)


def _moments(e, s, z):
    """Mean and variance of the rows of ``z`` under the weights ``e`` (row sums ``s``), in one
    pass: ``E[z^2] - E[z]^2``. Overwrites ``e`` with ``e * z^2``. (Multiplying in place and
    summing rows is ~3x faster on CPU than a batched row-wise dot product.)"""
    e.mul_(z)  # e z, (R, V)
    mean = e.sum(1) / s  # (R,)
    e.mul_(z)  # e z^2, (R, V)
    return mean, (e.sum(1) / s - mean * mean).clamp_min_(0.0)


def _centred_moments(e, s, z):
    """As :func:`_moments`, the variance taken about the mean (two passes, no cancellation).
    Leaves ``z - mean`` in ``z`` and ``e * (z - mean)^2`` in ``e``."""
    mean = _rowdot(e, z) / s  # (R,)
    z.sub_(mean[:, None])  # (R, V)
    e.mul_(z).mul_(z)  # (R, V)
    return mean, e.sum(1) / s


def reduce_chunk(z, targets, zq=None, *, e=None) -> dict:
    """Per-token statistics from one chunk of logits.

    Parameters
    ----------
    z : Tensor, shape (R, V)
        Scorer logits, float32. Overwritten.
    targets : LongTensor, shape (R,)
        The observed token at each row.
    zq : Tensor, shape (R, V), optional
        Reference-model logits on the same rows, float32. Overwritten.
    e : Tensor, shape (R, V), optional
        Float32 work buffer to reuse; allocated when not given.

    Returns
    -------
    dict of str to Tensor, each shape (R,)
        ``logp``, ``rank``, ``entropy``, ``mean_ref``, ``var_ref`` and, with ``zq``,
        ``cross_entropy`` and ``cross_var``.
    """
    import torch

    if e is None:
        e = torch.empty_like(z)
    obs = z.gather(1, targets[:, None])  # (R, 1)
    # On CPU the comparison lands in the float buffer as 0/1 and is summed there (exact below
    # 2**24 tokens): summing a bool tensor casts it element by element first, ~8x slower. A
    # GPU sums the bool tensor directly, in one kernel.
    if z.device.type == "cpu":
        rank = torch.gt(z, obs, out=e).sum(1).to(torch.int32)  # (R,)
    else:
        rank = torch.gt(z, obs).sum(1, dtype=torch.int32)  # (R,)
    top = z.amax(1, keepdim=True)  # (R, 1)
    z.sub_(top)  # z' = z - max <= 0, (R, V)
    obs = (obs - top).view(-1)  # (R,)
    e = torch.exp(z, out=e)  # (R, V)
    s = e.sum(1)  # (R,)
    log_s = torch.log(s)
    mean, var = _moments(e, s, z)
    out = {"logp": obs - log_s, "rank": rank, "entropy": log_s - mean, "mean_ref": mean - log_s, "var_ref": var}
    if zq is not None:
        zq.sub_(zq.amax(1, keepdim=True))
        eq = torch.exp(zq, out=e)  # (R, V), q unnormalised
        qmean, qvar = _centred_moments(eq, eq.sum(1), z)
        out["cross_entropy"] = log_s - qmean
        out["cross_var"] = qvar
    return out


def _fresh_logits(h, weight, backend: str) -> bool:
    """Whether :func:`_logits` returns a fresh tensor (oneDNN, float32) rather than filling a buffer."""
    import torch

    return backend == "onednn" and h.dtype == weight.dtype == torch.float32 and h.device.type == "cpu"


def _logits(h, weight, bias, out, backend: str = "aten"):
    """(R, V) float32 logits ``h @ weight.T + bias``: written into ``out`` (a float32 buffer),
    or a fresh tensor from oneDNN's linear (``backend="onednn"``, float32); a low-precision
    product is computed in its own dtype and then copied."""
    import torch

    from gpt2guard.family.linear import linear

    if _fresh_logits(h, weight, backend):
        return linear(h, weight, bias, "onednn")
    out = out[: h.shape[0]]
    if h.dtype == weight.dtype == torch.float32:
        if bias is None:
            return torch.matmul(h, weight.t(), out=out)
        return torch.addmm(bias.float(), h, weight.t(), out=out)
    return out.copy_(torch.nn.functional.linear(h, weight, bias))


def project_and_reduce(hidden, weight, targets, *, bias=None, ref_hidden=None, ref_weight=None, ref_bias=None,
                       chunk_elements: int | None = DEFAULT_CHUNK_ELEMENTS, workspace: dict | None = None,
                       backend: str = "aten") -> dict:
    """Logits of the rows of ``hidden``, chunk by chunk, reduced to per-token statistics.

    Parameters
    ----------
    hidden : Tensor, shape (M, d)
        Final hidden states (after the last layer norm) at the scored positions.
    weight : Tensor, shape (V, d)
        The output projection (``lm_head.weight``); ``bias`` (V,) if the head has one.
        The product runs in the dtype of ``hidden`` and ``weight`` (bfloat16 allowed).
    targets : LongTensor, shape (M,)
        Observed token per row.
    ref_hidden, ref_weight, ref_bias : Tensor, optional
        The same for a reference model, shapes (M, d_ref) and (V, d_ref).
    chunk_elements : int, optional
        Rows per chunk are ``max(1, chunk_elements // V)``; default :func:`chunk_rows`'s policy
        for the device of ``hidden``.
    workspace : dict, optional
        Holds the (R, V) buffers between calls (pass the same dict for every batch).
    backend : str
        Linear backend of the float32 products (see :mod:`gpt2guard.family.linear`).

    Returns
    -------
    dict of str to Tensor, each shape (M,)
        As :func:`reduce_chunk`.
    """
    import torch

    n_rows, vocab = hidden.shape[0], weight.shape[0]
    rows = max(1, min(n_rows, chunk_rows(vocab, chunk_elements, hidden.device.type)))
    names = STAT_NAMES + (REFERENCE_STAT_NAMES if ref_hidden is not None else ())
    out = {name: torch.empty(n_rows, dtype=torch.int32 if name == "rank" else torch.float32, device=hidden.device)
           for name in names}
    buf = workspace if workspace is not None else {}
    kinds = {"e": torch.float32}
    # a logits buffer for each product oneDNN does not run (it returns fresh logits)
    if not _fresh_logits(hidden, weight, backend):
        kinds["z"] = torch.float32
    if ref_hidden is not None and not _fresh_logits(ref_hidden, ref_weight, backend):
        kinds["zq"] = torch.float32
    for key, dtype in kinds.items():
        if key not in buf or buf[key].shape[0] < rows or buf[key].shape[1] != vocab or buf[key].device != hidden.device:
            buf[key] = torch.empty(rows, vocab, dtype=dtype, device=hidden.device)
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        z = _logits(hidden[lo:hi], weight, bias, buf.get("z"), backend)  # (R, V)
        zq = None
        if ref_hidden is not None:
            zq = _logits(ref_hidden[lo:hi], ref_weight, ref_bias, buf.get("zq"), backend)  # (R, V)
        stats = reduce_chunk(z, targets[lo:hi], zq, e=buf["e"][: hi - lo])
        for name, value in stats.items():
            out[name][lo:hi] = value
    return out

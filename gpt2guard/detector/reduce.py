"""Project hidden states onto the vocabulary a chunk of positions at a time, and reduce each
chunk to per-token statistics at once, so batch x length x vocabulary logits never exist.

For a chunk of ``R`` positions the scorer's logits ``z`` (R, V) are computed, shifted by
their row maximum (``z' = z - max z <= 0``) and exponentiated once (``e = exp z'``, row sums
``s``). Everything else follows from ``z'``, ``e`` and ``s``:

* ``log p(x) = z'_x - log s``
* ``rank = #{v : z_v > z_x}`` (a comparison and a count, not a sort)
* ``E_p[log p] = sum(e z') / s - log s`` and ``H(p) = -E_p[log p]``
* ``Var_p[log p] = Var_p[z'] = sum(e (z' - mu)^2) / s`` with ``mu = sum(e z') / s`` (two passes)

With a reference model, its logits give ``q`` on the same rows, and
``-sum_v q_v log p_v = log s - sum(q z')`` and ``Var_q[log p] = Var_q[z']``.
All statistics are float32, whatever the dtype of the model.
"""

from __future__ import annotations

# Elements (rows x vocabulary) of one logits chunk: 2**22 float32 = 16 MiB per temporary.
DEFAULT_CHUNK_ELEMENTS = 1 << 22

STAT_NAMES = ("logp", "rank", "entropy", "mean_ref", "var_ref")
REFERENCE_STAT_NAMES = ("cross_entropy", "cross_var")


def _rowdot(a, b):
    """Row-wise dot products of two (R, V) tensors as a batched matmul: (R,), no (R, V) temporary."""
    return (a.unsqueeze(1) @ b.unsqueeze(2)).view(-1)  # (R, 1, V) @ (R, V, 1) -> (R,)


def _moments(e, s, z):
    """Mean and variance of the rows of ``z`` under the weights ``e`` (row sums ``s``); the
    variance in two passes (no cancellation between large second moment and squared mean)."""
    mean = _rowdot(e, z) / s  # (R,)
    dev = (z - mean[:, None]).square_()  # (R, V)
    return mean, _rowdot(e, dev) / s


def reduce_chunk(z, targets, zq=None) -> dict:
    """Per-token statistics from one chunk of logits.

    Parameters
    ----------
    z : Tensor, shape (R, V)
        Scorer logits (any float dtype; reduced in float32). Modified in place.
    targets : LongTensor, shape (R,)
        The observed token at each row.
    zq : Tensor, shape (R, V), optional
        Reference-model logits on the same rows. Modified in place.

    Returns
    -------
    dict of str to Tensor, each shape (R,)
        ``logp``, ``rank``, ``entropy``, ``mean_ref``, ``var_ref`` and, with ``zq``,
        ``cross_entropy`` and ``cross_var``.
    """
    import torch

    z = z.float()
    obs = z.gather(1, targets[:, None])  # (R, 1)
    rank = (z > obs).sum(1, dtype=torch.int32)  # (R,)
    z -= z.amax(1, keepdim=True)  # z' = z - max, (R, V)
    obs = z.gather(1, targets[:, None]).view(-1)  # (R,)
    e = torch.exp(z)  # (R, V)
    s = e.sum(1)  # (R,)
    log_s = torch.log(s)
    mean, var = _moments(e, s, z)
    out = {"logp": obs - log_s, "rank": rank, "entropy": log_s - mean, "mean_ref": mean - log_s, "var_ref": var}
    if zq is not None:
        zq = zq.float()
        zq -= zq.amax(1, keepdim=True)
        eq = torch.exp_(zq)  # (R, V), reuses zq's storage
        qmean, qvar = _moments(eq, eq.sum(1), z)
        out["cross_entropy"] = log_s - qmean
        out["cross_var"] = qvar
    return out


def project_and_reduce(hidden, weight, targets, *, bias=None, ref_hidden=None, ref_weight=None, ref_bias=None,
                       chunk_elements: int = DEFAULT_CHUNK_ELEMENTS) -> dict:
    """Logits of the rows of ``hidden``, chunk by chunk, reduced to per-token statistics.

    Parameters
    ----------
    hidden : Tensor, shape (M, d)
        Final hidden states (after the last layer norm) at the scored positions.
    weight : Tensor, shape (V, d)
        The output projection (``lm_head.weight``); ``bias`` (V,) if the head has one.
    targets : LongTensor, shape (M,)
        Observed token per row.
    ref_hidden, ref_weight, ref_bias : Tensor, optional
        The same for a reference model, shapes (M, d_ref) and (V, d_ref).
    chunk_elements : int
        Rows per chunk are ``max(1, chunk_elements // V)``.

    Returns
    -------
    dict of str to Tensor, each shape (M,)
        As :func:`reduce_chunk`.
    """
    import torch

    n_rows, vocab = hidden.shape[0], weight.shape[0]
    rows = max(1, chunk_elements // vocab)
    names = STAT_NAMES + (REFERENCE_STAT_NAMES if ref_hidden is not None else ())
    out = {name: torch.empty(n_rows, dtype=torch.int32 if name == "rank" else torch.float32, device=hidden.device)
           for name in names}
    for lo in range(0, n_rows, rows):
        hi = min(n_rows, lo + rows)
        z = torch.nn.functional.linear(hidden[lo:hi], weight, bias)  # (R, V)
        zq = None
        if ref_hidden is not None:
            zq = torch.nn.functional.linear(ref_hidden[lo:hi], ref_weight, ref_bias)  # (R, V)
        for name, value in reduce_chunk(z, targets[lo:hi], zq).items():
            out[name][lo:hi] = value
    return out

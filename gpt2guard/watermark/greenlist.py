"""The green lists: one keyed function that generation and detection share.

Whether token ``c`` is green after the tokens before it is decided by a keyed hash of the
context and ``c``, compared with ``gamma`` (:func:`green_mask`). Generation asks it for
every candidate of every row at once (a ``(B, V)`` mask a step); detection asks it for each
scored token of a text: the same function, so the two cannot disagree.

Schemes (Kirchenbauer et al. 2023, "On the reliability of watermarks", the names transformers'
``WatermarkLogitsProcessor`` uses):

- ``lefthash``: the green list is seeded by the previous token (context width 1; the first
  paper's Algorithm 2).
- ``selfhash``: anchored min-hash over a window of 4 tokens that includes the candidate
  itself, and salted by the candidate (the second paper's "SelfHash", ``minhash-4``
  anchored and self-salted): the seed of candidate ``c`` after ``t1 t2 t3`` is the minimum,
  over ``x`` in ``(t1, t2, t3, c)``, of a keyed hash of ``(x, c)``; ``c`` is green when a
  keyed hash of ``(seed, c)`` falls under ``gamma``.

Construction. The key expands (SHAKE-256 of a domain tag and the secret) into four 32-bit
words per token id; a pair is hashed by xor-ing a word of each and mixing with a 32-bit
integer finaliser (two multiply-xorshift rounds), all in int64 tensor arithmetic that never
overflows (:func:`green_values` gives the formulas). A step of generation costs one
finaliser over the (B, V) candidates for lefthash, four for selfhash. Every (context, candidate) pair is green with probability ``gamma``,
independently of other pairs, over the key's randomness; unlike the paper's random
permutation, the number of green tokens of one context is binomial around ``gamma * V``
rather than exactly that (the detection test's null hypothesis is the same). It is a keyed
hash, not a cryptographic MAC: the key stays secret, but an adversary with enough
watermarked text can estimate green lists, as with any scheme of this family.
"""

from __future__ import annotations

import hashlib

from gpt2guard.errors import GuardError

#: Scheme -> tokens before the candidate that its green list depends on.
SCHEMES = {"lefthash": 1, "selfhash": 3}

_DOMAIN = b"gpt2guard.watermark/1\x00"
_MASK32 = 0xFFFFFFFF
_MUL = 0x45D9F3B
_TABLES: dict[tuple, object] = {}


def check_scheme(scheme: str) -> int:
    """The context width of ``scheme``; GuardError for an unknown one."""
    if scheme not in SCHEMES:
        raise GuardError(f"unknown watermark scheme {scheme!r}: use lefthash or selfhash")
    return SCHEMES[scheme]


def check_gamma(gamma) -> float:
    """``gamma`` as a float in (0, 1); GuardError otherwise."""
    try:
        g = float(gamma)
    except (TypeError, ValueError):
        raise GuardError(f"watermark gamma must be a number in (0, 1), not {gamma!r}") from None
    if isinstance(gamma, bool) or not 0.0 < g < 1.0:
        raise GuardError(f"watermark gamma must be in (0, 1) (the green share of the vocabulary), not {gamma!r}")
    return g


def key_table(key, n: int):
    """Four keyed 32-bit words per token id ``0..n-1``: an int64 tensor (5, n).

    Rows 0-3 are a prefix of one SHAKE-256 stream (a token's words do not depend on ``n``);
    row 4 is the selfhash scheme's self term of each token, ``mix(w0 ^ w3)``, precomputed.
    """
    import numpy as np
    import torch

    memo = (key.digest, n)
    if memo not in _TABLES:
        raw = hashlib.shake_256(_DOMAIN + key.secret).digest(16 * n)
        words = torch.from_numpy(np.frombuffer(raw, dtype=">u4").astype(np.int64).reshape(n, 4).T.copy())
        table = torch.cat([words, _mix(words[0] ^ words[3])[None, :]]).contiguous()
        if len(_TABLES) > 8:
            _TABLES.pop(next(iter(_TABLES)))
        _TABLES[memo] = table
    return _TABLES[memo]


def _mix(x):
    """A 32-bit integer finaliser (two multiply-xorshift rounds) on an int64 tensor holding
    values in [0, 2**32); returns a new tensor, never overflows int64."""
    x = x ^ (x >> 16)
    x *= _MUL
    x &= _MASK32
    x ^= x >> 16
    x *= _MUL
    x &= _MASK32
    x ^= x >> 16
    return x


def _word(table, row: int, candidates, span):
    """Row ``row`` of the table for ``candidates`` (None: the tokens of ``span``, every
    token when it is None, as a (1, K) view)."""
    if candidates is not None:
        return table[row][candidates]
    return table[row][None, :] if span is None else table[row][None, span[0]:span[1]]


#: Candidates hashed per pass when a step asks for every token: the int64 temporaries of a
#: (B, V) pass outgrow the CPU's caches (at V = 50257, 4096-token slices are 2-3x faster).
CHUNK = 4096


def green_values(table, scheme: str, context, candidates=None, span=None):
    """Keyed 32-bit hash values of (context, candidate) pairs; green is value < threshold.

    Parameters
    ----------
    table : torch.Tensor
        :func:`key_table` of the key, covering every token id used.
    scheme : str
        ``lefthash`` or ``selfhash``.
    context : torch.Tensor
        int64, shape (R, w): the ``w`` tokens before the candidate (oldest first),
        ``w`` = :data:`SCHEMES` [scheme].
    candidates : torch.Tensor, optional
        int64, shape (R, K) or (1, K): candidate tokens per row; None for every token of
        the table (a step of generation: K = V), or those of ``span``.
    span : tuple of int, optional
        With ``candidates`` None: the token ids ``span[0] .. span[1] - 1``.

    Returns
    -------
    torch.Tensor
        int64, shape (R, K).

    Notes
    -----
    With key words ``w0..w3`` per token and the finaliser ``mix``:
    lefthash: ``mix(w0[prev] ^ w2[c])``; selfhash: ``mix(s ^ w2[c])`` with
    ``s = min(mix(w0[c] ^ w3[c]), min_x mix(w0[x] ^ w3[c]))`` over the three tokens ``x``
    before ``c``.
    """
    width = check_scheme(scheme)
    if context.shape[-1] != width:
        raise GuardError(f"{scheme} needs {width} context token(s) per row, got {context.shape[-1]}")
    if scheme == "lefthash":
        return _mix(table[0][context[:, -1]][:, None] ^ _word(table, 2, candidates, span))
    anchor = _word(table, 3, candidates, span)                        # (R|1, K)
    seed = _word(table, 4, candidates, span)                          # the candidate itself (self-salt)
    ctx = table[0][context]                                           # (R, 3)
    for j in range(width):
        seed = torch_min(seed, _mix(ctx[:, j, None] ^ anchor))
    return _mix(seed ^ _word(table, 2, candidates, span))


def torch_min(a, b):
    import torch

    return torch.minimum(a, b)


def threshold(gamma: float) -> int:
    """Hash values below this are green: ``round(gamma * 2**32)``."""
    return int(round(check_gamma(gamma) * 2**32))


def green_mask(table, scheme: str, gamma: float, context, candidates=None):
    """Boolean (R, K): which candidates are green after each row's context (K = V when
    ``candidates`` is None)."""
    thr = threshold(gamma)
    V = table.shape[1]
    if candidates is not None or V <= CHUNK:
        return green_values(table, scheme, context, candidates) < thr
    import torch

    out = torch.empty((context.shape[0], V), dtype=torch.bool, device=context.device)
    for start in range(0, V, CHUNK):
        stop = min(start + CHUNK, V)
        out[:, start:stop] = green_values(table, scheme, context, None, (start, stop)) < thr
    return out

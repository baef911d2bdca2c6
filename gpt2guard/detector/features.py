"""Fixed-length feature vectors from :class:`TokenStats`, for trained detectors and reports.

:func:`features` gives an ordered dict of floats: length, aggregates and quantiles of the
per-token statistics, the GLTR rank histogram, and every zero-shot method score the record
supports. The key order is :func:`feature_names`, so vectors from different documents line
up; a document with no scored tokens gives NaN everywhere except its length.

Memory: the features of a long record are computed a chunk of tokens at a time in float64,
and quantiles from a partitioned copy of each float32/int32 array (a standardised term is
built once, in float64, and partitioned in place), so beyond the record itself one array of
the document's length exists at a time.
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.detector.methods import TINY, get_method, list_methods
from gpt2guard.detector.stats import CHUNK_TOKENS, TokenStats

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# GLTR's buckets of the 0-based rank: top 10, top 100, top 1000, the rest.
GLTR_EDGES = (10, 100, 1000)
GLTR_NAMES = ("gltr_top10", "gltr_top100", "gltr_top1000", "gltr_rest")


def gltr_histogram(stats: TokenStats) -> np.ndarray:
    """Fractions of tokens ranked in [0, 10), [10, 100), [100, 1000) and [1000, V): shape (4,)."""
    if not stats.scorable:
        return np.full(4, np.nan)
    counts = np.zeros(4, np.int64)
    for lo in range(0, stats.n_tokens, CHUNK_TOKENS):  # bucket indices a chunk at a time
        counts += np.bincount(np.searchsorted(GLTR_EDGES, stats.rank[lo:lo + CHUNK_TOKENS], side="right"),
                              minlength=4)
    return counts / stats.n_tokens


def _chunked(x: np.ndarray, fn=None):
    """Float64 chunks of ``x`` (``fn`` applied to each), :data:`CHUNK_TOKENS` at a time."""
    for lo in range(0, len(x), CHUNK_TOKENS):
        chunk = np.asarray(x[lo:lo + CHUNK_TOKENS], np.float64)
        yield chunk if fn is None else fn(chunk)


def _quantiles(x: np.ndarray, fn=None, overwrite: bool = False) -> np.ndarray:
    """``np.quantile(fn(float64(x)), QUANTILES)`` (linear interpolation) for a monotonic
    non-decreasing ``fn``, from the order statistics of ``x`` itself: a copy of ``x`` in its
    own dtype is partitioned (``x`` itself with ``overwrite``), never a float64 one."""
    n = len(x)
    virtual = (n - 1) * np.asarray(QUANTILES, np.float64)
    below = np.floor(virtual).astype(np.int64)
    above = np.minimum(below + 1, n - 1)
    gamma = virtual - below
    part = x if overwrite else x.copy()
    part.partition(np.unique(np.concatenate([below, above])))
    a, b = np.asarray(part[below], np.float64), np.asarray(part[above], np.float64)
    if fn is not None:
        a, b = fn(a), fn(b)
    diff = b - a
    return np.where(gamma >= 0.5, b - diff * (1 - gamma), a + diff * gamma)  # numpy's linear interpolation


def _summary(prefix: str, x: np.ndarray, fn=None, overwrite: bool = False) -> dict[str, float]:
    """Mean, standard deviation and :data:`QUANTILES` of ``fn(float64(x))`` in float64, with
    float64 temporaries of one chunk (two passes for the standard deviation)."""
    n = len(x)
    mean = sum(float(c.sum()) for c in _chunked(x, fn)) / n
    var = sum(float(np.square(c - mean).sum()) for c in _chunked(x, fn)) / n
    out = {f"{prefix}_mean": mean, f"{prefix}_std": math.sqrt(var)}
    for q, v in zip(QUANTILES, _quantiles(x, fn, overwrite)):
        out[f"{prefix}_q{int(round(q * 100)):02d}"] = v
    return out


def _summary_names(prefix: str) -> list[str]:
    return [f"{prefix}_mean", f"{prefix}_std"] + [f"{prefix}_q{int(round(q * 100)):02d}" for q in QUANTILES]


def _standardised(num: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``num / sqrt(max(var, TINY))`` of float32 arrays, in float64, computed a chunk at a time
    into one float64 array (the only array of the document's length it takes)."""
    out = np.empty(len(num), np.float64)
    for lo in range(0, len(num), CHUNK_TOKENS):
        sl = slice(lo, lo + CHUNK_TOKENS)
        np.divide(np.asarray(num[sl], np.float64), np.sqrt(np.maximum(np.asarray(var[sl], np.float64), TINY)),
                  out=out[sl])
    return out


def _chunkwise(fn, *arrays, dtype=np.float32) -> np.ndarray:
    """``fn(*chunks)`` of aligned arrays, a chunk at a time, into one array of ``dtype``."""
    out = np.empty(len(arrays[0]), dtype)
    for lo in range(0, len(out), CHUNK_TOKENS):
        sl = slice(lo, lo + CHUNK_TOKENS)
        out[sl] = fn(*(a[sl] for a in arrays))
    return out


def feature_names(reference: bool = False) -> list[str]:
    """Names of :func:`features`, in order, for records with or without reference terms."""
    names = ["n_tokens", "log_n_tokens"]
    prefixes = ("logp", "logrank", "entropy", "var_ref", "fdg_z")
    if reference:
        prefixes += ("cross_entropy", "cross_var", "fdg_ref_z")
    for prefix in prefixes:
        names += _summary_names(prefix)
    names += list(GLTR_NAMES)
    names += [f"method_{m}" for m in list_methods(with_reference=reference)]
    return names


def features(stats: TokenStats) -> dict[str, float]:
    """Ordered dict of features of one record (see the module docstring)."""
    names = feature_names(stats.has_reference)
    if not stats.scorable:
        return {name: (0.0 if name == "n_tokens" else math.nan) for name in names}
    out = {"n_tokens": float(stats.n_tokens), "log_n_tokens": math.log(stats.n_tokens)}
    out.update(_summary("logp", stats.logp))
    out.update(_summary("logrank", stats.rank, np.log1p))  # log1p is monotonic: quantiles of the ranks
    out.update(_summary("entropy", stats.entropy))
    out.update(_summary("var_ref", stats.var_ref))
    # float32 difference, then float64 standardisation (as the features were defined)
    num = _chunkwise(np.subtract, stats.logp, stats.mean_ref)
    out.update(_summary("fdg_z", _standardised(num, stats.var_ref), overwrite=True))
    del num
    if stats.has_reference:
        out.update(_summary("cross_entropy", stats.cross_entropy))
        out.update(_summary("cross_var", stats.cross_var))
        num = _chunkwise(lambda a, b: np.asarray(a, np.float64) + b, stats.logp, stats.cross_entropy,
                         dtype=np.float64)
        out.update(_summary("fdg_ref_z", _standardised(num, stats.cross_var), overwrite=True))
        del num
    out.update(zip(GLTR_NAMES, gltr_histogram(stats).tolist()))
    sums = stats.sums()  # reduced once for every method
    for m in list_methods(with_reference=stats.has_reference):
        out[f"method_{m}"] = get_method(m)(sums)
    return {name: float(out[name]) for name in names}


def feature_matrix(records: list[TokenStats], names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Stack :func:`features` of many records: (N, F) float64 and the column names.

    ``names`` defaults to the features every record supports (reference terms only if all
    records have them).
    """
    if names is None:
        names = feature_names(bool(records) and all(r.has_reference for r in records))
    rows = [features(r) for r in records]
    return np.array([[row.get(n, math.nan) for n in names] for row in rows], dtype=np.float64).reshape(-1, len(names)), names


def pair_feature_names() -> list[str]:
    """Names of :func:`pair_features`, in order."""
    return _summary_names("dlogp")


def pair_features(a: TokenStats, b: TokenStats) -> dict[str, float]:
    """Aggregates of :math:`\\log p_b(x_i) - \\log p_a(x_i)` over the tokens of one document
    scored by two models sharing a tokenizer (see the module docstring).

    NaN everywhere when either record has no scored tokens or their tokens differ (other
    tokenizers, or one record truncated).
    """
    names = pair_feature_names()
    if not (a.scorable and b.scorable) or not np.array_equal(a.token_ids, b.token_ids):
        return {name: math.nan for name in names}
    diff = _chunkwise(lambda x, y: np.asarray(y, np.float64) - x, a.logp, b.logp, dtype=np.float64)
    out = _summary("dlogp", diff, overwrite=True)
    return {name: float(out[name]) for name in names}


def pair_feature_matrix(first: list[TokenStats], second: list[TokenStats]) -> np.ndarray:
    """Stack :func:`pair_features` of aligned record lists: (N, len(pair_feature_names())) float64."""
    names = pair_feature_names()
    rows = [pair_features(a, b) for a, b in zip(first, second)]
    return np.array([[row[n] for n in names] for row in rows], dtype=np.float64).reshape(-1, len(names))

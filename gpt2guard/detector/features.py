"""Fixed-length feature vectors from :class:`TokenStats`, for trained detectors and reports.

:func:`features` gives an ordered dict of floats: length, aggregates and quantiles of the
per-token statistics, the GLTR rank histogram, and every zero-shot method score the record
supports. The key order is :func:`feature_names`, so vectors from different documents line
up; a document with no scored tokens gives NaN everywhere except its length.
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.detector.methods import TINY, get_method, list_methods
from gpt2guard.detector.stats import TokenStats

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# GLTR's buckets of the 0-based rank: top 10, top 100, top 1000, the rest.
GLTR_EDGES = (10, 100, 1000)
GLTR_NAMES = ("gltr_top10", "gltr_top100", "gltr_top1000", "gltr_rest")


def gltr_histogram(stats: TokenStats) -> np.ndarray:
    """Fractions of tokens ranked in [0, 10), [10, 100), [100, 1000) and [1000, V): shape (4,)."""
    if not stats.scorable:
        return np.full(4, np.nan)
    counts = np.bincount(np.searchsorted(GLTR_EDGES, stats.rank, side="right"), minlength=4)
    return counts / stats.n_tokens


def _summary(prefix: str, x: np.ndarray) -> dict[str, float]:
    x = x.astype(np.float64)
    out = {f"{prefix}_mean": x.mean(), f"{prefix}_std": x.std()}
    for q, v in zip(QUANTILES, np.quantile(x, QUANTILES)):
        out[f"{prefix}_q{int(round(q * 100)):02d}"] = v
    return out


def _summary_names(prefix: str) -> list[str]:
    return [f"{prefix}_mean", f"{prefix}_std"] + [f"{prefix}_q{int(round(q * 100)):02d}" for q in QUANTILES]


def _standardised(num: np.ndarray, var: np.ndarray) -> np.ndarray:
    return num.astype(np.float64) / np.sqrt(np.maximum(var.astype(np.float64), TINY))


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
    out.update(_summary("logrank", np.log1p(stats.rank.astype(np.float64))))
    out.update(_summary("entropy", stats.entropy))
    out.update(_summary("var_ref", stats.var_ref))
    out.update(_summary("fdg_z", _standardised(stats.logp - stats.mean_ref, stats.var_ref)))
    if stats.has_reference:
        out.update(_summary("cross_entropy", stats.cross_entropy))
        out.update(_summary("cross_var", stats.cross_var))
        out.update(_summary("fdg_ref_z", _standardised(stats.logp.astype(np.float64) + stats.cross_entropy,
                                                       stats.cross_var)))
    out.update(zip(GLTR_NAMES, gltr_histogram(stats).tolist()))
    for m in list_methods(with_reference=stats.has_reference):
        out[f"method_{m}"] = get_method(m)(stats)
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
    out = _summary("dlogp", b.logp.astype(np.float64) - a.logp.astype(np.float64))
    return {name: float(out[name]) for name in names}


def pair_feature_matrix(first: list[TokenStats], second: list[TokenStats]) -> np.ndarray:
    """Stack :func:`pair_features` of aligned record lists: (N, len(pair_feature_names())) float64."""
    names = pair_feature_names()
    rows = [pair_features(a, b) for a, b in zip(first, second)]
    return np.array([[row[n] for n in names] for row in rows], dtype=np.float64).reshape(-1, len(names))

"""Per-token statistics of one document under one scorer model: the :class:`TokenStats` record.

Every zero-shot method and every feature of the detector is a function of a
:class:`TokenStats`, so a model runs once per document and scorer. The record holds plain
numpy arrays (one entry per document token, in order) and is saved as an ``.npz`` archive
of numeric and unicode arrays only, read back with ``allow_pickle=False``.

Every zero-shot method needs only per-document sums of these statistics: a
:class:`TokenSums` record holds them (float64 accumulators, a few dozen bytes whatever the
document's length). The engine can accumulate it window by window without ever holding
per-token arrays (:meth:`~gpt2guard.detector.scoring.Scorer.score_sums`), and
:meth:`TokenStats.sums` reduces a full record to the same sums in bounded chunks, so the two
paths give the same scores (to float64 rounding).

Notation, for the scored token :math:`x_i` with context :math:`x_{<i}`, scorer distribution
:math:`p = p(\\cdot \\mid x_{<i})` over the vocabulary and, optionally, a reference model's
distribution :math:`q` on the same context:

============== ==============================================================================
``logp``        :math:`\\log p(x_i)`
``rank``        :math:`|\\{v : z_v > z_{x_i}\\}|`, the count of vocabulary entries with a strictly
                higher logit (0 means the observed token is the top prediction)
``entropy``     :math:`H(p) = -\\sum_v p_v \\log p_v`
``mean_ref``    :math:`E_{v \\sim p}[\\log p_v]` (the Fast-DetectGPT mean term; the engine computes it
                as the exact float negation of ``entropy``, so it carries no information of its own)
``var_ref``     :math:`\\mathrm{Var}_{v \\sim p}[\\log p_v]` (the Fast-DetectGPT variance term)
``cross_entropy`` :math:`-\\sum_v q_v \\log p_v` (reference only; Binoculars' cross-perplexity term,
                and minus the Fast-DetectGPT mean when the reference is the sampling model)
``cross_var``   :math:`\\mathrm{Var}_{v \\sim q}[\\log p_v]` (reference only)
============== ==============================================================================
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Arrays every record has, and the optional pair computed against a reference model.
ARRAYS = ("token_ids", "logp", "rank", "entropy", "mean_ref", "var_ref")
REFERENCE_ARRAYS = ("cross_entropy", "cross_var")
_INT_ARRAYS = ("token_ids", "rank")
# Tokens per chunk of the float64 reductions over per-token arrays (TokenStats.sums, features):
# 64k tokens, so a float64 temporary is 512 KiB whatever the document's length.
CHUNK_TOKENS = 1 << 16
# Sums of TokenSums (float64), and those against a reference model.
SUM_NAMES = ("logp", "rank", "log_rank", "entropy", "top10", "mean_ref", "var_ref")
REFERENCE_SUM_NAMES = ("cross_entropy", "cross_var")
# The rank below which GLTR counts a token as a top prediction (0-based rank < 10: the top 10).
TOP_RANK = 10


def chunk_sums(logp, rank, entropy, mean_ref, var_ref, cross_entropy=None, cross_var=None) -> dict[str, float]:
    """Float64 sums (:data:`SUM_NAMES`, plus the reference terms when given) of aligned
    per-token arrays of one chunk; the float64 temporaries are the size of the chunk."""
    out = {"logp": float(np.sum(logp, dtype=np.float64)),
           "rank": float(np.sum(rank, dtype=np.float64)),
           "log_rank": float(np.log1p(np.asarray(rank, np.float64)).sum()),  # log of the 1-based rank
           "entropy": float(np.sum(entropy, dtype=np.float64)),
           "top10": float(np.count_nonzero(np.asarray(rank) < TOP_RANK)),
           "mean_ref": float(np.sum(mean_ref, dtype=np.float64)),
           "var_ref": float(np.sum(var_ref, dtype=np.float64))}
    if cross_entropy is not None:
        out["cross_entropy"] = float(np.sum(cross_entropy, dtype=np.float64))
        out["cross_var"] = float(np.sum(cross_var, dtype=np.float64))
    return out


@dataclass
class TokenSums:
    """Per-document sums of the per-token statistics: everything a zero-shot method needs.

    The size of the record does not depend on the document's length. Built by
    :meth:`TokenStats.sums` from a full record, or by
    :meth:`~gpt2guard.detector.scoring.Scorer.score_sums` straight from the model, window by
    window.

    Attributes
    ----------
    n_tokens : int
        Scored tokens.
    sums : dict of str to float
        Float64 sums over the tokens of :data:`SUM_NAMES` (``logp``, ``rank`` (0-based),
        ``log_rank`` (:math:`\\log(1 + \\text{rank})`), ``entropy``, ``top10`` (count of
        0-based ranks below 10), ``mean_ref``, ``var_ref``) and, with a reference model,
        ``cross_entropy`` and ``cross_var``.
    n_windows, model_hash, reference_hash, flags, text_hash, repairs
        As :class:`TokenStats`.
    """

    n_tokens: int
    sums: dict
    n_windows: int
    model_hash: str
    reference_hash: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    text_hash: str = ""
    repairs: dict = field(default_factory=dict)

    @property
    def has_reference(self) -> bool:
        """Whether the reference-model terms are present."""
        return all(name in self.sums for name in REFERENCE_SUM_NAMES)

    @property
    def scorable(self) -> bool:
        """False for a document with no tokens to score: methods give NaN."""
        return self.n_tokens > 0

    @classmethod
    def zeros(cls, has_reference: bool, model_hash: str = "", **kw) -> "TokenSums":
        """An empty accumulator (no tokens yet)."""
        names = SUM_NAMES + (REFERENCE_SUM_NAMES if has_reference else ())
        return cls(0, {name: 0.0 for name in names}, kw.pop("n_windows", 0), model_hash, **kw)

    def add(self, n_tokens: int, sums: dict) -> None:
        """Accumulate the sums of ``n_tokens`` more tokens (as :func:`chunk_sums` gives them)."""
        self.n_tokens += int(n_tokens)
        for name in self.sums:
            self.sums[name] += sums[name]

    def mean(self, name: str) -> float:
        """Mean over the tokens of the statistic ``name`` (NaN without tokens)."""
        return self.sums[name] / self.n_tokens if self.n_tokens else math.nan

    # --- storage: npz without pickles (the stats cache) ------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """All fields as numpy arrays (numeric or fixed-width unicode, never objects)."""
        names = sorted(self.sums)
        out = {"kind": np.array("sums"), "n_tokens": np.array(self.n_tokens, np.int64),
               "sum_names": np.array(names, dtype=str), "sum_values": np.array([self.sums[k] for k in names],
                                                                               np.float64),
               "n_windows": np.array(self.n_windows, np.int64), "model_hash": np.array(self.model_hash),
               "reference_hash": np.array(self.reference_hash or ""), "text_hash": np.array(self.text_hash),
               "flags": np.array(list(self.flags), dtype=str) if self.flags else np.zeros(0, dtype="U1")}
        rnames = sorted(self.repairs)
        out["repair_names"] = np.array(rnames, dtype=str) if rnames else np.zeros(0, dtype="U1")
        out["repair_counts"] = np.array([self.repairs[k] for k in rnames], np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "TokenSums":
        """Inverse of :meth:`to_arrays`."""
        if "kind" not in arrays or str(arrays["kind"]) != "sums":
            raise ValueError("not a TokenSums archive")
        sums = {str(k): float(v) for k, v in zip(arrays["sum_names"], arrays["sum_values"])}
        if not set(SUM_NAMES) <= set(sums):
            raise ValueError("a TokenSums archive without every sum")
        return cls(int(arrays["n_tokens"]), sums, int(arrays["n_windows"]), str(arrays["model_hash"]),
                   reference_hash=str(arrays["reference_hash"]) or None,
                   flags=tuple(str(f) for f in arrays["flags"]), text_hash=str(arrays["text_hash"]),
                   repairs={str(k): int(n) for k, n in zip(arrays["repair_names"], arrays["repair_counts"])})

    def save(self, path: str | os.PathLike, durable: bool = True) -> None:
        """Write an ``.npz`` atomically (see :meth:`TokenStats.save`)."""
        _save_npz(path, self.to_arrays(), durable)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TokenSums":
        """Read a record written by :meth:`save` (never unpickles)."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls.from_arrays(arrays)


def _save_npz(path, arrays: dict, durable: bool) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:  # written straight to the file: no copy of the archive in memory
        np.savez(f, **arrays)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class TokenStats:
    """Per-token statistics of one document under one scorer (and optional reference) model.

    Attributes
    ----------
    token_ids : ndarray of int32, shape (n,)
        The document's tokens, without the ``<|endoftext|>`` prepended for scoring.
    logp, entropy, mean_ref, var_ref : ndarray of float32, shape (n,)
        See the module docstring.
    rank : ndarray of int32, shape (n,)
        Count of vocabulary entries whose logit is strictly higher than the observed token's.
    n_windows : int
        How many model windows the document was split into (0 for an unscorable document).
    model_hash : str
        Weights hash of the scorer model.
    cross_entropy, cross_var : ndarray of float32, shape (n,), optional
        Terms against the reference model; None without one.
    reference_hash : str, optional
        Weights hash of the reference model.
    flags : tuple of str
        Input-hygiene flags from :func:`~gpt2guard.detector.hygiene.prepare_text`.
    text_hash : str
        SHA-256 of the (normalised) text that was scored.
    repairs : dict
        Characters each hygiene repair touched (:attr:`~gpt2guard.detector.hygiene.Cleaned.counts`).
    """

    token_ids: np.ndarray
    logp: np.ndarray
    rank: np.ndarray
    entropy: np.ndarray
    mean_ref: np.ndarray
    var_ref: np.ndarray
    n_windows: int
    model_hash: str
    cross_entropy: np.ndarray | None = None
    cross_var: np.ndarray | None = None
    reference_hash: str | None = None
    flags: tuple[str, ...] = field(default_factory=tuple)
    text_hash: str = ""
    repairs: dict = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        """Number of scored tokens."""
        return int(self.token_ids.shape[0])

    @property
    def has_reference(self) -> bool:
        """Whether the reference-model terms are present."""
        return self.cross_entropy is not None

    @property
    def scorable(self) -> bool:
        """False for a document with no tokens to score (empty, binary...): methods give NaN."""
        return self.n_tokens > 0

    @classmethod
    def empty(cls, model_hash: str, flags=(), text_hash: str = "", reference_hash: str | None = None) -> "TokenStats":
        """The record of a document with nothing to score, carrying the flags that say why."""
        f32, i32 = np.zeros(0, np.float32), np.zeros(0, np.int32)
        ref = f32.copy() if reference_hash else None
        return cls(i32, f32, i32.copy(), f32.copy(), f32.copy(), f32.copy(), 0, model_hash,
                   cross_entropy=ref, cross_var=None if ref is None else ref.copy(),
                   reference_hash=reference_hash, flags=tuple(flags), text_hash=text_hash)

    def sums(self, chunk_tokens: int = CHUNK_TOKENS) -> TokenSums:
        """The per-document sums every zero-shot method reads (:class:`TokenSums`), reduced
        ``chunk_tokens`` tokens at a time: no float64 temporary larger than a chunk."""
        out = TokenSums.zeros(self.has_reference, self.model_hash, n_windows=self.n_windows,
                              reference_hash=self.reference_hash, flags=self.flags, text_hash=self.text_hash,
                              repairs=dict(self.repairs))
        ref = REFERENCE_ARRAYS if self.has_reference else ()
        for lo in range(0, self.n_tokens, chunk_tokens):
            part = {name: getattr(self, name)[lo:lo + chunk_tokens] for name in ARRAYS[1:] + ref}
            out.add(len(part["logp"]), chunk_sums(**part))
        return out

    # --- storage: npz without pickles ---------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """All fields as numpy arrays (numeric or fixed-width unicode, never objects)."""
        out = {name: np.ascontiguousarray(getattr(self, name)) for name in ARRAYS}
        if self.has_reference:
            out.update({name: np.ascontiguousarray(getattr(self, name)) for name in REFERENCE_ARRAYS})
        out["n_windows"] = np.array(self.n_windows, np.int64)
        out["model_hash"] = np.array(self.model_hash)
        out["reference_hash"] = np.array(self.reference_hash or "")
        out["flags"] = np.array(list(self.flags), dtype=str) if self.flags else np.zeros(0, dtype="U1")
        out["text_hash"] = np.array(self.text_hash)
        names = sorted(self.repairs)
        out["repair_names"] = np.array(names, dtype=str) if names else np.zeros(0, dtype="U1")
        out["repair_counts"] = np.array([self.repairs[k] for k in names], np.int64)
        return out

    @classmethod
    def from_arrays(cls, arrays) -> "TokenStats":
        """Inverse of :meth:`to_arrays`; ``arrays`` is a mapping such as an opened ``.npz``."""
        kw = {name: np.asarray(arrays[name], np.int32 if name in _INT_ARRAYS else np.float32) for name in ARRAYS}
        has_ref = all(name in arrays for name in REFERENCE_ARRAYS)
        for name in REFERENCE_ARRAYS:
            kw[name] = np.asarray(arrays[name], np.float32) if has_ref else None
        return cls(**kw, n_windows=int(arrays["n_windows"]), model_hash=str(arrays["model_hash"]),
                   reference_hash=str(arrays["reference_hash"]) or None,
                   flags=tuple(str(f) for f in arrays["flags"]), text_hash=str(arrays["text_hash"]),
                   repairs=({str(k): int(n) for k, n in zip(arrays["repair_names"], arrays["repair_counts"])}
                            if "repair_names" in arrays else {}))

    def save(self, path: str | os.PathLike, durable: bool = True) -> None:
        """Write an ``.npz`` atomically (temporary file, then rename); ``durable`` also fsyncs
        it (a cache, whose torn files read as misses, skips that)."""
        _save_npz(path, self.to_arrays(), durable)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TokenStats":
        """Read a record written by :meth:`save` (never unpickles)."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls.from_arrays(arrays)

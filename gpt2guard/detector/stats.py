"""Per-token statistics of one document under one scorer model: the :class:`TokenStats` record.

Every zero-shot method and every feature of the detector is a function of a
:class:`TokenStats`, so a model runs once per document and scorer. The record holds plain
numpy arrays (one entry per document token, in order) and is saved as an ``.npz`` archive
of numeric and unicode arrays only, read back with ``allow_pickle=False``.

Notation, for the scored token :math:`x_i` with context :math:`x_{<i}`, scorer distribution
:math:`p = p(\\cdot \\mid x_{<i})` over the vocabulary and, optionally, a reference model's
distribution :math:`q` on the same context:

============== ==============================================================================
``logp``        :math:`\\log p(x_i)`
``rank``        :math:`|\\{v : z_v > z_{x_i}\\}|`, the count of vocabulary entries with a strictly
                higher logit (0 means the observed token is the top prediction)
``entropy``     :math:`H(p) = -\\sum_v p_v \\log p_v`
``mean_ref``    :math:`E_{v \\sim p}[\\log p_v]` (equals ``-entropy``; the Fast-DetectGPT mean term)
``var_ref``     :math:`\\mathrm{Var}_{v \\sim p}[\\log p_v]` (the Fast-DetectGPT variance term)
``cross_entropy`` :math:`-\\sum_v q_v \\log p_v` (reference only; Binoculars' cross-perplexity term,
                and minus the Fast-DetectGPT mean when the reference is the sampling model)
``cross_var``   :math:`\\mathrm{Var}_{v \\sim q}[\\log p_v]` (reference only)
============== ==============================================================================
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Arrays every record has, and the optional pair computed against a reference model.
ARRAYS = ("token_ids", "logp", "rank", "entropy", "mean_ref", "var_ref")
REFERENCE_ARRAYS = ("cross_entropy", "cross_var")
_INT_ARRAYS = ("token_ids", "rank")


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
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with open(tmp, "wb") as f:  # written straight to the file: no copy of the archive in memory
            np.savez(f, **self.to_arrays())
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TokenStats":
        """Read a record written by :meth:`save` (never unpickles)."""
        with np.load(path, allow_pickle=False) as arrays:
            return cls.from_arrays(arrays)

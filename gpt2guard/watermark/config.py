"""What a watermarked generation job applies: the key file, gamma, delta and the scheme."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from gpt2guard.errors import GuardError
from gpt2guard.watermark.greenlist import SCHEMES, check_gamma, check_scheme

#: What a watermark's provenance means; changes when the same key and parameters would
#: choose other green lists.
WATERMARK_FORMAT = "gpt2guard.watermark/1"


def check_delta(delta) -> float:
    """``delta`` as a finite float >= 0; GuardError otherwise."""
    try:
        d = float(delta)
    except (TypeError, ValueError):
        raise GuardError(f"watermark delta must be a number >= 0, not {delta!r}") from None
    if isinstance(delta, bool) or not math.isfinite(d) or d < 0:
        raise GuardError(f"watermark delta must be a finite number >= 0 (the bias added to green logits), "
                         f"not {delta!r}")
    return d


@dataclass(frozen=True)
class WatermarkConfig:
    """Kirchenbauer et al.'s green-list watermark, as a generation job applies it.

    Parameters
    ----------
    key_path : str
        A key file from :func:`~gpt2guard.watermark.keys.keygen`.
    gamma : float
        Share of the vocabulary that is green after each context, in (0, 1).
    delta : float
        Bias added to the logits of green tokens, >= 0 (0 marks nothing, but records the
        job as watermarked).
    scheme : str
        ``lefthash`` (seeded by the previous token) or ``selfhash`` (anchored min-hash over
        4 tokens including the candidate); see :mod:`gpt2guard.watermark.greenlist`.
    """

    key_path: str
    gamma: float = 0.25
    delta: float = 2.0
    scheme: str = "lefthash"
    _key: object = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self):
        if not isinstance(self.key_path, str) or not self.key_path:
            raise GuardError("watermark key path must be a non-empty string")
        object.__setattr__(self, "gamma", check_gamma(self.gamma))
        object.__setattr__(self, "delta", check_delta(self.delta))
        check_scheme(self.scheme)

    def key(self):
        """The :class:`~gpt2guard.watermark.keys.WatermarkKey` (read once; GuardError if
        the file is missing or malformed)."""
        if self._key is None:
            from gpt2guard.watermark.keys import load_key

            object.__setattr__(self, "_key", load_key(self.key_path))
        return self._key

    @property
    def context_width(self) -> int:
        """Tokens before the candidate that a green list depends on."""
        return SCHEMES[self.scheme]

    def provenance(self) -> dict:
        """What a record needs to say about its watermark: scheme, gamma, delta and the
        key's digest (never the key)."""
        return {"format": WATERMARK_FORMAT, "scheme": self.scheme, "gamma": self.gamma, "delta": self.delta,
                "context_width": self.context_width, "key_digest": self.key().digest}

    @classmethod
    def from_provenance(cls, prov: dict, key_path) -> "WatermarkConfig":
        """The config a record's watermark provenance names, with its key at ``key_path``;
        GuardError when that key's digest is not the recorded one."""
        try:
            if prov.get("format") != WATERMARK_FORMAT:
                raise GuardError(f"unknown watermark format {prov.get('format')!r}")
            cfg = cls(str(key_path), prov["gamma"], prov["delta"], prov["scheme"])
        except (KeyError, AttributeError, TypeError):
            raise GuardError("malformed watermark provenance") from None
        if cfg.key().digest != prov.get("key_digest"):
            raise GuardError(f"watermark key {key_path} (digest {cfg.key().digest[:12]}) is not the record's key "
                             f"(digest {str(prov.get('key_digest'))[:12]})")
        return cfg

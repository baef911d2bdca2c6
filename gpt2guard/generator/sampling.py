"""Sampling methods as values, and the pure functions that apply them to logits.

A sampling method is a frozen :class:`SamplingConfig`. :func:`parse_sampling` reads a
comma-separated list of them from the command line::

    pure                      temperature 1, no truncation (OpenAI's ``small-117M`` sets)
    temperature=0.7           untruncated, logits divided by 0.7
    top-k=40                  the 40 most likely tokens (OpenAI's ``small-117M-k40`` sets)
    nucleus=0.9               the smallest set whose probability reaches 0.9 (transformers' rule)
    nucleus=0.8-1.0           the same with p drawn per record uniformly from [0.8, 1.0)
    nucleus-openai=0.9        the rule of the original GPT-2 sampler (see :func:`nucleus_mask`)
    top-k=40:temperature=0.7  a truncation with a temperature, joined by ``:``

Order of operations, as in both OpenAI's ``src/sample.py`` and transformers: divide the
logits by the temperature, then truncate (top-k or nucleus), then sample from the softmax
of what is left.

Names (:attr:`SamplingConfig.name`) are the suffix of a set's name, in OpenAI's style
(``small-117M``, ``small-117M-k40``): ``""`` for pure sampling, ``k40``, ``t0.7``,
``k40-t0.7``, ``nucleus0.9``, ``nucleus`` for p drawn from [0.8, 1.0) and
``nucleus0.85-0.95`` for another range, ``nucleus-openai0.9`` / ``nucleus-openai`` for the
OpenAI rule. A name is for people and file names; what a record was made with is
:meth:`SamplingConfig.to_dict` (plus the p drawn for it), from which
:meth:`SamplingConfig.from_dict` rebuilds the config.

Tokens are drawn by inverse-CDF from one uniform number per row and step
(:func:`sample_inverse_cdf`): the cumulative distribution runs over token ids in id order,
so a row's choice depends only on its own probabilities and its own uniform, never on its
neighbours in a batch. See :mod:`gpt2guard.generator.sample` for why that matters.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from gpt2guard.errors import GuardError

METHODS = ("pure", "top-k", "nucleus")
NUCLEUS_RULES = ("transformers", "openai")
# The range OpenAI drew p from for its nucleus samples; a config with this range is named
# plain "nucleus".
OPENAI_P_RANGE = (0.8, 1.0)

_SPEC_HELP = ("use pure, temperature=T, top-k=K, nucleus=P, nucleus=LO-HI, nucleus-openai=P or "
              "nucleus-openai=LO-HI, optionally joined with ':' to a temperature (top-k=40:temperature=0.7)")


def _num(x: float) -> str:
    """A number as short as it reads: 1.0 -> '1', 0.90 -> '0.9', 0.85 -> '0.85'."""
    return format(x, ".10g")


@dataclass(frozen=True)
class SamplingConfig:
    """One sampling method.

    Parameters
    ----------
    method : str
        ``"pure"`` (no truncation), ``"top-k"`` or ``"nucleus"``.
    temperature : float
        Logits are divided by it before truncation; > 0.
    top_k : int
        Tokens kept by ``"top-k"``; 0 for the other methods.
    top_p : float, optional
        The fixed p of ``"nucleus"``, in (0, 1]; None when p is drawn per record.
    p_range : tuple of float, optional
        ``(lo, hi)``: each record draws its own p uniformly from [lo, hi)
        (:meth:`draw_top_p`); None for a fixed p.
    openai_nucleus : bool
        Use the original GPT-2 sampler's nucleus rule instead of transformers' rule.
    """

    method: str = "pure"
    temperature: float = 1.0
    top_k: int = 0
    top_p: float | None = None
    p_range: tuple[float, float] | None = None
    openai_nucleus: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise GuardError(f"unknown sampling method {self.method!r}: use {', '.join(METHODS)}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t <= 0:
            raise GuardError(f"temperature must be a finite number > 0, not {t!r}")
        if self.method == "top-k":
            if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k <= 0:
                raise GuardError(f"top-k needs an integer k >= 1, not {self.top_k!r}")
        elif self.top_k != 0:
            raise GuardError(f"top_k={self.top_k} given to method {self.method!r}; only top-k truncates by k")
        if self.method == "nucleus":
            if (self.top_p is None) == (self.p_range is None):
                raise GuardError("nucleus sampling needs exactly one of a fixed top_p or a p_range")
            if self.top_p is not None:
                _check_p(self.top_p)
            else:
                lo, hi = self.p_range
                _check_p(lo)
                _check_p(hi)
                if lo >= hi:
                    raise GuardError(f"nucleus p range {_num(lo)}-{_num(hi)} is empty: write it low-high, "
                                     "or give a single p")
                object.__setattr__(self, "p_range", (float(lo), float(hi)))
        else:
            if self.top_p is not None or self.p_range is not None:
                raise GuardError(f"a p was given to method {self.method!r}; only nucleus uses p")
            if self.openai_nucleus:
                raise GuardError(f"openai_nucleus was set for method {self.method!r}; it applies to nucleus only")
        object.__setattr__(self, "temperature", float(t))

    @property
    def nucleus_rule(self) -> str | None:
        """``"transformers"`` or ``"openai"`` for nucleus sampling, None otherwise."""
        if self.method != "nucleus":
            return None
        return "openai" if self.openai_nucleus else "transformers"

    @property
    def name(self) -> str:
        """The suffix naming sets made with this method (``""`` for pure sampling)."""
        if self.method == "top-k":
            parts = [f"k{self.top_k}"]
        elif self.method == "nucleus":
            base = "nucleus-openai" if self.openai_nucleus else "nucleus"
            if self.top_p is not None:
                parts = [f"{base}{_num(self.top_p)}"]
            elif self.p_range == OPENAI_P_RANGE:
                parts = [base]
            else:
                parts = [f"{base}{_num(self.p_range[0])}-{_num(self.p_range[1])}"]
        else:
            parts = []
        if self.temperature != 1.0:
            parts.append(f"t{_num(self.temperature)}")
        return "-".join(parts)

    @property
    def spec(self) -> str:
        """The spec :func:`parse_sampling` reads back into this config."""
        if self.method == "top-k":
            head = f"top-k={self.top_k}"
        elif self.method == "nucleus":
            key = "nucleus-openai" if self.openai_nucleus else "nucleus"
            p = _num(self.top_p) if self.top_p is not None else f"{_num(self.p_range[0])}-{_num(self.p_range[1])}"
            head = f"{key}={p}"
        else:
            head = "pure" if self.temperature == 1.0 else ""
        if self.temperature != 1.0:
            tail = f"temperature={_num(self.temperature)}"
            return f"{head}:{tail}" if head else tail
        return head

    def to_dict(self) -> dict[str, Any]:
        """What a record's provenance stores about its sampling method (JSON-ready)."""
        return {"method": self.method, "name": self.name, "spec": self.spec, "temperature": self.temperature,
                "top_k": self.top_k, "top_p": self.top_p,
                "p_range": list(self.p_range) if self.p_range else None, "nucleus_rule": self.nucleus_rule}

    @classmethod
    def from_dict(cls, obj: dict[str, Any]) -> "SamplingConfig":
        """Rebuild the config recorded by :meth:`to_dict`."""
        try:
            p_range = obj.get("p_range")
            return cls(method=obj["method"], temperature=obj.get("temperature", 1.0), top_k=obj.get("top_k", 0),
                       top_p=obj.get("top_p"), p_range=tuple(p_range) if p_range else None,
                       openai_nucleus=obj.get("nucleus_rule") == "openai")
        except (KeyError, TypeError, ValueError) as exc:
            raise GuardError(f"cannot read a sampling config from {obj!r}: {exc}") from exc

    def draw_top_p(self, seed: int) -> float | None:
        """The p a record with this seed samples with.

        The fixed p, or for a p range ``lo + (hi - lo) * u`` with ``u`` the first number of
        the seed's p stream (:func:`gpt2guard.generator.seeding.uniforms`, stream 1): a
        function of the seed alone, independent of the numbers that pick the tokens. None
        for methods other than nucleus.
        """
        if self.method != "nucleus":
            return None
        if self.top_p is not None:
            return self.top_p
        from gpt2guard.generator.seeding import TOP_P_STREAM, uniforms

        lo, hi = self.p_range
        return lo + (hi - lo) * float(uniforms(seed, 1, TOP_P_STREAM)[0])


def _check_p(p: float) -> None:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0.0 < p <= 1.0):
        raise GuardError(f"nucleus p must be in (0, 1], not {p!r}")


def _parse_float(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise GuardError(f"sampling spec {spec!r}: {what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise GuardError(f"sampling spec {spec!r}: {what} must be finite, not {text!r}")
    return value


def _parse_one(spec: str) -> SamplingConfig:
    fields: dict[str, Any] = {}
    for term in spec.split(":"):
        key, eq, value = (s.strip() for s in term.partition("="))
        key = key.lower()
        if key == "pure" and not eq:
            kind = "pure"
        elif key == "top-k" and eq:
            kind = "top-k"
        elif key in ("nucleus", "nucleus-openai") and eq:
            kind = "nucleus"
        elif key == "temperature" and eq:
            kind = "temperature"
        else:
            raise GuardError(f"unknown sampling spec {spec!r}: {_SPEC_HELP}")
        if kind in fields or (kind != "temperature" and {"pure", "top-k", "nucleus"} & set(fields)):
            raise GuardError(f"sampling spec {spec!r} names more than one truncation or temperature: {_SPEC_HELP}")
        if kind == "temperature":
            t = _parse_float(value, "temperature", spec)
            if t <= 0:
                raise GuardError(f"sampling spec {spec!r}: temperature must be > 0, not {value}")
            fields[kind] = t
        elif kind == "top-k":
            try:
                k = int(value)
            except ValueError:
                raise GuardError(f"sampling spec {spec!r}: k {value!r} is not an integer") from None
            if k <= 0:
                raise GuardError(f"sampling spec {spec!r}: k must be >= 1, not {k}")
            fields[kind] = k
        elif kind == "nucleus":
            lo_text, dash, hi_text = value.partition("-")
            lo = _parse_float(lo_text, "p", spec)
            hi = _parse_float(hi_text, "p", spec) if dash else None
            for p in (lo, hi):
                if p is not None and not 0.0 < p <= 1.0:
                    raise GuardError(f"sampling spec {spec!r}: p must be in (0, 1], not {_num(p)}")
            if hi is not None and lo >= hi:
                raise GuardError(f"sampling spec {spec!r}: p range {lo_text}-{hi_text} is empty; write it low-high")
            fields[kind] = (lo, hi, key == "nucleus-openai")
        else:
            fields[kind] = True
    if "top-k" not in fields and "nucleus" not in fields:
        return SamplingConfig("pure", temperature=fields.get("temperature", 1.0))
    if "top-k" in fields:
        return SamplingConfig("top-k", temperature=fields.get("temperature", 1.0), top_k=fields["top-k"])
    lo, hi, openai = fields["nucleus"]
    return SamplingConfig("nucleus", temperature=fields.get("temperature", 1.0),
                          top_p=lo if hi is None else None, p_range=None if hi is None else (lo, hi),
                          openai_nucleus=openai)


def parse_sampling(text: str) -> list[SamplingConfig]:
    """Read a comma-separated list of sampling methods.

    Parameters
    ----------
    text : str
        For example ``"pure,top-k=40,nucleus=0.8-1.0,nucleus=0.9,temperature=0.7"``.

    Returns
    -------
    list of SamplingConfig
        In the order given.

    Raises
    ------
    GuardError
        For an unknown method, k <= 0, p outside (0, 1], an empty p range, a temperature
        <= 0, or a method listed twice.
    """
    items = [s.strip() for s in str(text).split(",")]
    if not any(items):
        raise GuardError(f"no sampling method given: {_SPEC_HELP}")
    configs: list[SamplingConfig] = []
    for item in items:
        if not item:
            raise GuardError(f"empty sampling method in {text!r} (two commas in a row?)")
        cfg = _parse_one(item)
        if cfg in configs:
            raise GuardError(f"sampling method {item!r} is listed twice in {text!r}")
        configs.append(cfg)
    return configs


# ---------------------------------------------------------------------------------------
# Pure functions on logits. All take logits of shape (B, V) and return new tensors.


def top_k_mask(logits, k: int):
    """Which tokens top-k keeps: exactly ``k`` per row.

    Ties at the k-th largest logit are broken towards the lower token id, so the kept set
    is a function of the logits alone (``torch.topk`` does not promise which of equal
    values it returns). OpenAI's sampler kept every token tied with the k-th logit, so it
    could keep more than k; logits of a trained model are practically never tied.

    Parameters
    ----------
    logits : torch.Tensor
        Shape (B, V).
    k : int
        Tokens to keep; ``k >= V`` keeps all.

    Returns
    -------
    torch.Tensor
        Bool mask of shape (B, V), True where kept.
    """
    import torch

    B, V = logits.shape
    if k >= V:
        return torch.ones_like(logits, dtype=torch.bool)
    kth = torch.topk(logits, k, dim=-1, sorted=False).values.min(dim=-1, keepdim=True).values  # (B, 1)
    above = logits > kth                                                  # (B, V) surely kept
    tied = logits == kth                                                  # (B, V) share the k-th value
    room = k - above.sum(dim=-1, keepdim=True)                            # (B, 1) tied tokens that fit
    return above | (tied & (tied.cumsum(dim=-1) <= room))                 # lowest ids among ties first


def nucleus_mask(logits, top_p, openai: bool = False):
    """Which tokens nucleus (top-p) sampling keeps, with a p per row.

    Both rules sort the probabilities ``softmax(logits)`` in decreasing order and look at
    their running sum ``c_i = p_(1) + ... + p_(i)``:

    - transformers' rule (default; Holtzman et al.): keep the smallest prefix whose
      probability reaches p, i.e. token i is kept while the mass before it,
      ``c_i - p_(i)``, is still below p. The token that crosses p is kept.
    - OpenAI's rule (``openai=True``; ``top_p_logits`` of the GPT-2 sampler): keep the
      tokens with ``c_i <= p``, and at least the most likely one. The token that crosses p
      is dropped, so for the same p this keeps one token fewer, unless some prefix sums
      to exactly p (then both keep that prefix). As in the original, every token whose
      logit equals the smallest kept logit is kept too.

    ``p >= 1`` keeps every token under both rules (the original's float32 running sum
    could drop a negligible tail at p = 1). Among equal probabilities the lower token id
    comes first (stable sort).

    Parameters
    ----------
    logits : torch.Tensor
        Shape (B, V), already divided by the temperature.
    top_p : float or torch.Tensor
        One p for all rows, or shape (B,): one per row.
    openai : bool
        Use OpenAI's rule.

    Returns
    -------
    torch.Tensor
        Bool mask of shape (B, V), True where kept.
    """
    import torch

    B, V = logits.shape
    p = torch.as_tensor(top_p, dtype=torch.float64, device=logits.device).reshape(-1, 1).expand(B, 1)  # (B, 1)
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)      # (B, V)
    probs = torch.softmax(sorted_logits.double(), dim=-1)                                # (B, V) float64
    cum = probs.cumsum(dim=-1)                                                           # (B, V) c_i
    if openai:
        n_keep = (cum <= p).sum(dim=-1, keepdim=True).clamp(min=1)                       # (B, 1) at least one
        threshold = sorted_logits.gather(-1, n_keep - 1)                                 # (B, 1) smallest kept logit
        keep = logits >= threshold                                                       # ties with it kept
    else:
        keep_sorted = (cum - probs) < p                                                  # mass before token < p
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)             # back to id order
    return keep | (p >= 1.0)


def filter_logits(logits, cfg: SamplingConfig, top_p=None):
    """Apply a sampling method to logits: temperature, then truncation.

    Parameters
    ----------
    logits : torch.Tensor
        Raw next-token logits, shape (B, V).
    cfg : SamplingConfig
        The method.
    top_p : float or torch.Tensor, optional
        For nucleus sampling, p per row (shape (B,)) or one p; defaults to ``cfg.top_p``.
        Required when ``cfg`` has a p range (draw it with :meth:`SamplingConfig.draw_top_p`).

    Returns
    -------
    torch.Tensor
        Float logits of shape (B, V), ``-inf`` where a token may not be sampled. Pure
        sampling returns the logits unchanged (no hidden top-k: transformers' ``generate``
        truncates to 50 tokens unless told ``top_k=0``; this function never does).
    """
    import torch

    if cfg.temperature != 1.0:
        logits = logits / cfg.temperature
    if cfg.method == "top-k":
        keep = top_k_mask(logits, cfg.top_k)
    elif cfg.method == "nucleus":
        p = cfg.top_p if top_p is None else top_p
        if p is None:
            raise GuardError("this nucleus config draws p per record: pass top_p (see SamplingConfig.draw_top_p)")
        keep = nucleus_mask(logits, p, openai=cfg.openai_nucleus)
    else:
        return logits
    return logits.masked_fill(~keep, -torch.inf)


def sample_inverse_cdf(logits, u):
    """Draw one token per row by inverse-CDF: the first token id whose cumulative
    probability exceeds the row's uniform number.

    The cumulative distribution runs over token ids in increasing order, computed in
    float64 from ``exp(logits - max)``; tokens with logit ``-inf`` have probability 0 and
    are never drawn. A row's token depends only on its own logits and its own ``u``, and
    moves only when a perturbation of its probabilities carries a boundary of the CDF
    across ``u``: logits that differ by 1e-6 (a row computed in another batch) change the
    token with probability of order 1e-6.

    Parameters
    ----------
    logits : torch.Tensor
        Shape (B, V); ``-inf`` marks excluded tokens, at least one finite per row.
    u : torch.Tensor
        Shape (B,), uniform in [0, 1).

    Returns
    -------
    torch.Tensor
        Token ids, int64, shape (B,).
    """
    import torch

    x = logits.double()                                                   # (B, V)
    weights = torch.exp(x - x.max(dim=-1, keepdim=True).values)           # (B, V) unnormalised probabilities
    cdf = weights.cumsum(dim=-1)                                          # (B, V)
    total = cdf[:, -1:].contiguous()                                      # (B, 1)
    target = u.double().reshape(-1, 1).to(cdf.device) * total             # (B, 1) in [0, total)
    ids = torch.searchsorted(cdf, target, right=True)                     # (B, 1) first cdf > target
    # u * total can round up to total; then take the last token of positive probability
    last = torch.searchsorted(cdf, total, right=False)                    # (B, 1) first cdf == total
    return torch.minimum(ids, last).squeeze(-1)

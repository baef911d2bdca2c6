"""Detecting the watermark: count green tokens, a one-sided z-test against ``gamma``.

Under the null hypothesis (text written without the key) each scored token is green with
probability ``gamma``, independently, so with ``n`` scored tokens of which ``g`` are green

    z = (g - gamma * n) / sqrt(n * gamma * (1 - gamma)),   p = P(Z >= z) for Z ~ N(0, 1).

Scored tokens are those with a full context (the scheme's window). With ``ignore_repeated``
(the default, transformers' ``ignore_repeated_ngrams``) each distinct (context, token)
n-gram counts once: text that repeats one phrase scores its few distinct n-grams, not every
repetition, so repetition cannot fake a watermark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gpt2guard.errors import GuardError
from gpt2guard.watermark.greenlist import SCHEMES, check_gamma, check_scheme, green_mask, key_table


def normal_sf(z: float) -> float:
    """P(Z >= z) for a standard normal Z (accurate far into the tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def z_score(n_green: int, n: int, gamma: float) -> float:
    """The one-proportion z-statistic; NaN when nothing was scored."""
    if n <= 0:
        return float("nan")
    return (n_green - gamma * n) / math.sqrt(n * gamma * (1.0 - gamma))


@dataclass(frozen=True)
class WatermarkScore:
    """The watermark test of one document.

    Attributes
    ----------
    n_tokens : int
        Tokens of the (cleaned) text.
    n_scored : int
        Tokens the test counted: those with a full context, each distinct (context, token)
        n-gram once when repeats are ignored.
    n_green : int
        Scored tokens that are green.
    green_fraction : float
        ``n_green / n_scored`` (NaN when nothing was scored).
    z : float
        The z-score (NaN when nothing was scored).
    p_value : float
        One-sided p-value, ``P(Z >= z)`` (1.0 when nothing was scored).
    detected : bool
        ``z >= z_threshold``.
    z_threshold, gamma, scheme
        The test's settings.
    flags : tuple of str
        Input hygiene applied to the text (see :mod:`gpt2guard.detector.hygiene`).
    """

    n_tokens: int
    n_scored: int
    n_green: int
    green_fraction: float
    z: float
    p_value: float
    detected: bool
    z_threshold: float = 4.0
    gamma: float = 0.25
    scheme: str = "lefthash"
    flags: tuple = ()

    def to_dict(self) -> dict:
        """JSON-ready (NaN as None)."""
        def num(v):
            return None if isinstance(v, float) and math.isnan(v) else v

        return {"n_tokens": self.n_tokens, "n_scored": self.n_scored, "n_green": self.n_green,
                "green_fraction": num(self.green_fraction), "z": num(self.z), "p_value": self.p_value,
                "detected": self.detected, "z_threshold": self.z_threshold, "gamma": self.gamma,
                "scheme": self.scheme, "flags": list(self.flags)}


def check_z(z_threshold) -> float:
    try:
        z = float(z_threshold)
    except (TypeError, ValueError):
        raise GuardError(f"watermark z threshold must be a number, not {z_threshold!r}") from None
    if isinstance(z_threshold, bool) or not math.isfinite(z):
        raise GuardError(f"watermark z threshold must be a finite number, not {z_threshold!r}")
    return z


def score_ids(ids, key, *, gamma: float = 0.25, scheme: str = "lefthash", z_threshold: float = 4.0,
              ignore_repeated: bool = True, flags=()) -> WatermarkScore:
    """The watermark test of one token-id sequence (no tokenizer check; see :func:`detect_texts`)."""
    import torch

    gamma, width, z_threshold = check_gamma(gamma), check_scheme(scheme), check_z(z_threshold)
    ids = torch.as_tensor(list(ids), dtype=torch.long)
    n_tokens = int(ids.numel())
    if n_tokens and (int(ids.max()) >= key.vocab_size or int(ids.min()) < 0):
        raise GuardError(f"token id {int(ids.max())} is outside the key's vocabulary of {key.vocab_size}: "
                         "the key is for another tokenizer")
    n_scored = n_green = 0
    if n_tokens > width:
        grams = ids.unfold(0, width + 1, 1)                                      # (n - width, width + 1)
        if ignore_repeated:
            grams = torch.unique(grams, dim=0)
        table = key_table(key, key.vocab_size)
        green = green_mask(table, scheme, gamma, grams[:, :width], grams[:, width:])
        n_scored, n_green = int(grams.shape[0]), int(green.sum())
    z = z_score(n_green, n_scored, gamma)
    p = 1.0 if math.isnan(z) else normal_sf(z)
    return WatermarkScore(n_tokens, n_scored, n_green, n_green / n_scored if n_scored else float("nan"), z, p,
                          bool(not math.isnan(z) and z >= z_threshold), z_threshold, gamma, scheme, tuple(flags))


def detect_texts(texts, key, tokenizer, *, gamma: float = 0.25, scheme: str = "lefthash",
                 z_threshold: float = 4.0, ignore_repeated: bool = True, hygiene: bool = True,
                 max_tokens: int | None = None) -> list[WatermarkScore]:
    """Test each text for the watermark of ``key``.

    Parameters
    ----------
    texts : list of str
    key : WatermarkKey or path
        The key the text would have been generated with.
    tokenizer : transformers tokenizer
        The generating family's; must be the key's (GuardError otherwise).
    gamma : float
        The generation's green share.
    scheme : str
        The generation's scheme.
    z_threshold : float
        Detected when z >= this (4: a one-sided false-positive rate of 3.2e-5).
    ignore_repeated : bool
        Count each distinct (context, token) n-gram once.
    hygiene : bool
        Clean texts first as ``gpt2guard score`` does (invisible characters removed,
        look-alike letters mapped; :func:`~gpt2guard.detector.hygiene.prepare_text`).
    max_tokens : int, optional
        Test only each text's first ``max_tokens`` tokens.

    Returns
    -------
    list of WatermarkScore
    """
    from gpt2guard.watermark.keys import load_key

    key = load_key(key)
    key.check_tokenizer(tokenizer)
    check_gamma(gamma), check_scheme(scheme), check_z(z_threshold)
    if isinstance(texts, str):
        raise GuardError("detect_texts takes a list of texts, not one string")
    out = []
    for text in texts:
        flags: tuple = ()
        if hygiene:
            from gpt2guard.detector.hygiene import prepare_text

            text, flags = prepare_text(text)
        ids = tokenizer.encode(text) if text else []
        if max_tokens is not None:
            ids = ids[:max_tokens]
        out.append(score_ids(ids, key, gamma=gamma, scheme=scheme, z_threshold=z_threshold,
                             ignore_repeated=ignore_repeated, flags=flags))
    return out


_HUMAN: dict[str, list[str]] = {}


def builtin_human(split: str = "valid") -> list[str]:
    """The builtin human corpus's texts of one split (``all``: every one), built once per process."""
    from gpt2guard.datasets.builtin import builtin_corpus

    if split not in _HUMAN:
        docs = builtin_corpus()
        splits = {d.split for d in docs}
        if split != "all" and split not in splits:
            raise GuardError(f"the builtin corpus has no split {split!r} (it has {', '.join(sorted(splits))}, all)")
        _HUMAN[split] = [d.text for d in docs if split == "all" or d.split == split]
    return _HUMAN[split]


def empirical_fpr(key, tokenizer, *, gamma: float = 0.25, scheme: str = "lefthash", z_threshold: float = 4.0,
                  ignore_repeated: bool = True, split: str = "valid", max_docs: int | None = None) -> dict:
    """The share of builtin human documents detected as watermarked, beside the theory.

    Parameters
    ----------
    split : str
        The builtin corpus's split (``valid``: the held-out human text the zero-shot
        detectors calibrate on; ``all`` for every document, none of which the watermark
        ever saw).

    Returns
    -------
    dict
        ``n_docs``, ``n_detected``, ``empirical_fpr``, ``theoretical_fpr`` (the normal tail
        at ``z_threshold``), ``split``.
    """
    docs = builtin_human(split)[:max_docs]
    scores = detect_texts(docs, key, tokenizer, gamma=gamma, scheme=scheme, z_threshold=z_threshold,
                          ignore_repeated=ignore_repeated)
    hits = sum(s.detected for s in scores)
    return {"split": split, "n_docs": len(docs), "n_detected": hits,
            "empirical_fpr": hits / len(docs) if docs else float("nan"),
            "theoretical_fpr": normal_sf(check_z(z_threshold))}

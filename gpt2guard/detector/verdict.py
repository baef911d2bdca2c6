"""Per-document verdicts: machine, human, or abstain with a reason.

A document is judged only when it is scorable (not empty, not binary) and has at least
``min_tokens`` scored tokens; otherwise the verdict is ``abstain`` and the reason says why.
An abstention is never a machine verdict. A judged document is ``machine`` when its score
is strictly above the threshold, else ``human``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from gpt2guard.detector.hygiene import is_scorable

DEFAULT_MIN_TOKENS = 16
DECISIONS = ("machine", "human", "abstain")


@dataclass
class Verdict:
    """The judgement of one document.

    Attributes
    ----------
    index : int
        Position of the document in the input.
    name : str or None
        File name or record id.
    score : float
        The detector's score (higher = more machine-like); NaN when unscorable.
    probability : float or None
        Machine probability where the detector gives one (trained, or calibrated), else None.
    decision : {"machine", "human", "abstain"}
    reason : str
        Why (``score > threshold``, ``too short``, ``unscorable: empty``...).
    threshold : float
    n_tokens, n_windows : int
    flags : tuple of str
        Input-hygiene flags.
    method, scorer : str
    """

    index: int
    name: str | None
    score: float
    probability: float | None
    decision: str
    reason: str
    threshold: float
    n_tokens: int
    n_windows: int
    flags: tuple[str, ...]
    method: str
    scorer: str

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes None)."""
        out = asdict(self)
        for key in ("score", "probability"):
            if isinstance(out[key], float) and math.isnan(out[key]):
                out[key] = None
        out["flags"] = list(self.flags)
        return out


def decide(index, name, score, probability, threshold, n_tokens, n_windows, flags, min_tokens, *, method: str,
           scorer: str) -> Verdict:
    """Build the :class:`Verdict` of one document (see the module docstring for the rule)."""
    flags = tuple(flags)
    score = float(score) if score is not None else math.nan
    if not is_scorable(flags):
        decision, reason = "abstain", "unscorable: " + ",".join(f for f in flags if f in ("empty", "binary"))
    elif n_tokens < min_tokens:
        decision, reason = "abstain", f"too short: {n_tokens} < {min_tokens} tokens"
    elif math.isnan(score):
        decision, reason = "abstain", "no score"
    elif score > threshold:
        decision, reason = "machine", f"score {score:.4g} > threshold {threshold:.4g}"
    else:
        decision, reason = "human", f"score {score:.4g} <= threshold {threshold:.4g}"
    prob = None if probability is None or (isinstance(probability, float) and math.isnan(probability)) else probability
    if decision == "abstain" and prob is not None and not is_scorable(flags):
        prob = None
    return Verdict(index, name, score, prob, decision, reason, float(threshold), int(n_tokens), int(n_windows), flags,
                   method, scorer)

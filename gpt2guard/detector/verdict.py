"""Per-document verdicts: machine, human, or abstain with a reason.

A document is judged only when it is scorable (not empty, not binary) and has at least
``min_tokens`` scored tokens; otherwise the verdict is ``abstain``, the reason says why, and
it carries no probability (an abstention is never a machine verdict, nor half of one).

The score decides, and the probability never disagrees with it:

* A judged document is ``machine`` exactly when ``score > threshold``, else ``human`` (the
  threshold is set on the score for a false-positive rate, see
  :mod:`~gpt2guard.detector.calibrate`).
* A detector that gives a **machine probability** (a trained or TF-IDF detector, whose score
  is a log-odds, mapped through the logistic function or a fitted Platt/isotonic
  calibration) also states its threshold on the probability scale,
  ``probability_threshold``, the probability its score threshold maps to. The map is
  non-decreasing, so a ``machine`` document's probability is at least the threshold's and a
  ``human`` one's at most; the two are equal only where the map is flat (isotonic steps,
  or saturation at 1 in floating point), and the reason then says that the score decided.
  Should a calibration ever not increase with the score, the probability is withheld
  (None, with a note in the reason) rather than shown on the wrong side of its threshold.
* A **zero-shot** method's score (a curvature, a log-rank...) is not a probability, and none
  is made up: ``probability`` and ``probability_threshold`` are None. Its ``direction``
  (:mod:`~gpt2guard.detector.direction`) may also be ``lower`` (machine exactly when
  ``score < threshold``: the score was found inverted) or ``two-sided`` (machine exactly when
  ``score > threshold`` or ``score < threshold_low``: atypical for human text either way);
  the reason names the side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

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
        Machine probability where the detector gives one (trained or TF-IDF detectors);
        None for zero-shot methods and for every abstention.
    decision : {"machine", "human", "abstain"}
    reason : str
        Why, on the scale that decided (``machine probability 0.93 > threshold 0.5``,
        ``score 1.2 > threshold 0.8``, ``too short: 5 < 16 tokens``, ``unscorable: empty``),
        followed by the hygiene repairs (``removed 12 invisible or format character(s)``).
    threshold : float
        The threshold on the score.
    probability_threshold : float or None
        The same threshold on the probability scale (None without probabilities).
    n_tokens, n_windows : int
    flags : tuple of str
        Input-hygiene flags.
    method, scorer : str
    repairs : dict
        Characters each hygiene repair touched (``{"zero_width": 12}``).
    direction : {"higher", "lower", "two-sided"}
        Which scores are machine-like (module docstring); ``higher`` for every detector
        with probabilities.
    threshold_low : float or None
        The lower threshold of a two-sided test.
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
    probability_threshold: float | None = None
    repairs: dict = field(default_factory=dict)
    direction: str = "higher"
    threshold_low: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready (NaN becomes None)."""
        out = asdict(self)
        for key in ("score", "probability", "probability_threshold"):
            if isinstance(out[key], float) and math.isnan(out[key]):
                out[key] = None
        out["flags"] = list(self.flags)
        return out


def _distinct(x: float, other: float) -> str:
    """``x`` with as many significant digits as it takes (4 at least) to tell it from ``other``."""
    digits = 4
    while digits < 17 and x != other and f"{x:.{digits}g}" == f"{other:.{digits}g}":
        digits += 1
    return f"{x:.{digits}g}"


def _number(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def format_probability(p: float | None, threshold: float | None) -> str:
    """A probability with as many decimals as it takes (3 at least) to tell it from the
    threshold it is compared with, so a printed value never seems to sit on the wrong side
    (0.9996 and 0.9997 are not both ``1``); ``-`` for none."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "-"
    digits = 3
    while threshold is not None and digits < 17 and f"{p:.{digits}f}" == f"{threshold:.{digits}f}" and p != threshold:
        digits += 1
    return f"{p:.{digits}f}"


def describe_repairs(repairs) -> str:
    """``removed 12 invisible or format character(s), ...`` for a verdict's reason ("" if none)."""
    from gpt2guard.detector.hygiene import Cleaned

    return Cleaned("", (), dict(repairs or {})).describe()


def decide(index, name, score, probability, threshold, n_tokens, n_windows, flags, min_tokens, *, method: str,
           scorer: str, probability_threshold=None, repairs=None, direction: str = "higher",
           threshold_low=None) -> Verdict:
    """Build the :class:`Verdict` of one document (see the module docstring for the rule).

    ``probability`` and ``probability_threshold`` come together (a detector with
    probabilities) or not at all; ``repairs`` are the hygiene counts for the reason;
    ``direction`` other than ``higher`` (with ``threshold_low`` for ``two-sided``) is for
    scores without probabilities.
    """
    flags = tuple(flags)
    score = _number(score)
    score = math.nan if score is None else score
    prob, prob_threshold = _number(probability), _number(probability_threshold)
    if (probability is None) != (probability_threshold is None):
        from gpt2guard.errors import GuardError

        raise GuardError("a probability needs its threshold on the probability scale, and vice versa")
    if not is_scorable(flags):
        decision, reason = "abstain", "unscorable: " + ",".join(f for f in flags if f in ("empty", "binary"))
    elif n_tokens < min_tokens:
        decision, reason = "abstain", f"too short: {n_tokens} < {min_tokens} tokens"
    elif math.isnan(score):
        decision, reason = "abstain", "no score"
    elif direction != "higher":
        decision, reason = _directed(score, float(threshold), direction, threshold_low)
        prob = None
    else:
        above = score > threshold
        decision = "machine" if above else "human"
        reason = f"score {_distinct(score, threshold)} {'>' if above else '<='} threshold {_distinct(threshold, score)}"
        if prob_threshold is not None and prob is not None:
            if (above and prob < prob_threshold) or (not above and prob > prob_threshold):
                prob = None
                reason += "; probability withheld: its calibration does not increase with the score"
            else:
                sign = ">" if prob > prob_threshold else "<" if prob < prob_threshold else "="
                reason += (f" (machine probability {format_probability(prob, prob_threshold)} {sign} "
                           f"{format_probability(prob_threshold, prob)})")
    if decision == "abstain":
        prob = None
    repairs = {k: int(n) for k, n in dict(repairs or {}).items() if n}
    if describe_repairs(repairs):
        reason += "; hygiene " + describe_repairs(repairs)
    return Verdict(index, name, score, prob, decision, reason, float(threshold), int(n_tokens), int(n_windows), flags,
                   method, scorer, prob_threshold, repairs, direction,
                   None if threshold_low is None else float(threshold_low))


def _directed(score: float, threshold: float, direction: str, threshold_low) -> tuple[str, str]:
    """Decision and reason of a ``lower`` or ``two-sided`` rule."""
    if direction == "lower":
        below = score < threshold
        return ("machine" if below else "human",
                f"score {_distinct(score, threshold)} {'<' if below else '>='} threshold "
                f"{_distinct(threshold, score)} (lower is machine-like)")
    if direction == "two-sided":
        if threshold_low is None:
            from gpt2guard.errors import GuardError

            raise GuardError("a two-sided rule needs its lower threshold")
        low = float(threshold_low)
        if score > threshold:
            return "machine", (f"score {_distinct(score, threshold)} > upper threshold {_distinct(threshold, score)}: "
                               "atypically high for human text")
        if score < low:
            return "machine", (f"score {_distinct(score, low)} < lower threshold {_distinct(low, score)}: "
                               "atypically low for human text")
        return "human", (f"score {_distinct(score, low)} within the human range "
                         f"{_distinct(low, score)}..{_distinct(threshold, score)}")
    from gpt2guard.errors import GuardError

    raise GuardError(f"unknown direction {direction!r}: use higher, lower or two-sided")

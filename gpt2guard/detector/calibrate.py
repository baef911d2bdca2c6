"""Thresholds for a target false-positive rate, and calibrated probabilities.

Threshold rule
--------------
Given the scores of ``n`` human documents (NaN scores, i.e. abstentions, are dropped) and a
target false-positive rate ``f``, let ``k = floor(f * n)`` and sort the scores in descending
order ``s_0 >= s_1 >= ...``. The threshold is ``t = s_k``, and a document is called machine
when its score is *strictly* above ``t``. At most ``k`` human scores exceed ``t``, so the
false-positive rate on the reference set is at most ``f``; with ties at ``s_k`` it can be
lower (ties are resolved towards "human", never towards a false positive). This is the
empirical ``(1 - f)`` quantile taken on the conservative side.

The threshold's uncertainty is a seeded bootstrap percentile interval (resampling the
human scores with replacement). A threshold for rate ``f`` from fewer than ``10 / f``
documents rests on fewer than ten human scores above it; :func:`threshold_for_fpr` then
returns a warning.

Probabilities: :class:`ProbabilityCalibrator` maps a raw score to a machine probability,
fitted on a held-out labelled set with Platt scaling (a one-feature logistic regression) or
isotonic regression; its state is a few JSON numbers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from gpt2guard.errors import GuardError

MIN_POSITIVES = 10


@dataclass
class Calibration:
    """A threshold chosen on human text.

    Attributes
    ----------
    threshold : float
        Machine when score > threshold.
    target_fpr, achieved_fpr : float
        Asked rate, and the rate on the reference scores themselves.
    n_human : int
        Scored (non-abstaining) human documents used.
    ci_low, ci_high : float
        Bootstrap percentile interval of the threshold.
    confidence : float
    n_boot, seed : int
    warning : str or None
        Set when there are fewer than ``10 / target_fpr`` human documents.
    direction : {"higher", "lower", "two-sided"}
        Which scores are machine-like: above ``threshold``, below it, or outside
        ``threshold_low .. threshold`` (see :mod:`~gpt2guard.detector.direction`).
    threshold_low : float or None
        The lower threshold of a two-sided test; ``low_ci`` its bootstrap interval.
    basis : str or None
        Why this direction (learned from labelled documents, the scorer's family, ...).
    """

    threshold: float
    target_fpr: float
    achieved_fpr: float
    n_human: int
    ci_low: float
    ci_high: float
    confidence: float
    n_boot: int
    seed: int
    warning: str | None = None
    direction: str = "higher"
    threshold_low: float | None = None
    low_ci: list | None = None
    basis: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def _threshold(sorted_desc: np.ndarray, fpr: float) -> float:
    k = min(int(math.floor(fpr * len(sorted_desc) + 1e-9)), len(sorted_desc) - 1)
    return float(sorted_desc[k])


def fpr_threshold(human_scores, fpr: float) -> float:
    """The threshold of the module docstring's rule (no bootstrap, no warning)."""
    s = _clean(human_scores, fpr)
    return _threshold(np.sort(s)[::-1], fpr)


def _clean(human_scores, fpr: float) -> np.ndarray:
    if not 0.0 < fpr < 1.0:
        raise GuardError(f"the false-positive rate must be between 0 and 1 (exclusive), not {fpr}")
    s = np.asarray(human_scores, dtype=np.float64).ravel()
    s = s[~np.isnan(s)]
    if s.size == 0:
        raise GuardError("no scorable human documents to calibrate on")
    return s


def threshold_for_fpr(human_scores, fpr: float, *, n_boot: int = 1000, seed: int = 0,
                      confidence: float = 0.95) -> Calibration:
    """Threshold achieving at most ``fpr`` false positives on human text, with a bootstrap interval.

    Parameters
    ----------
    human_scores : array-like
        Scores of human documents (higher = more machine-like); NaN entries are ignored.
    fpr : float
        Target false-positive rate in (0, 1).
    n_boot : int
        Bootstrap resamples for the interval (0 for none: the interval is the point).
    seed : int
        Seed of the bootstrap.
    confidence : float
        Coverage of the percentile interval.

    Returns
    -------
    Calibration
    """
    s = _clean(human_scores, fpr)
    t = _threshold(np.sort(s)[::-1], fpr)
    lo = hi = t
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = np.sort(s[rng.integers(0, s.size, size=(n_boot, s.size))], axis=1)[:, ::-1]
        k = min(int(math.floor(fpr * s.size + 1e-9)), s.size - 1)
        vals = boots[:, k]
        alpha = (1.0 - confidence) / 2
        lo, hi = (float(v) for v in np.quantile(vals, [alpha, 1.0 - alpha]))
    needed = int(math.ceil(MIN_POSITIVES / fpr))
    warning = None
    if s.size < needed:
        warning = (f"only {s.size} human documents: a threshold for a {fpr:g} false-positive rate needs at least "
                   f"{needed} (about {MIN_POSITIVES} above the threshold); the rate is not reliable")
    return Calibration(t, float(fpr), float((s > t).mean()), int(s.size), lo, hi, float(confidence), int(n_boot),
                       int(seed), warning)


class ProbabilityCalibrator:
    """Map raw scores to machine probabilities (Platt scaling or isotonic regression).

    Parameters
    ----------
    method : {"platt", "isotonic"}
    """

    def __init__(self, method: str = "platt"):
        if method not in ("platt", "isotonic"):
            raise GuardError(f"calibration method must be platt or isotonic, not {method!r}")
        self.method = method
        self.params: dict | None = None

    def fit(self, scores, labels) -> "ProbabilityCalibrator":
        """Fit on held-out scores and 0/1 labels (1 = machine); NaN scores are skipped."""
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        ok = ~np.isnan(s)
        s, y = s[ok], y[ok]
        if len(set(y.tolist())) < 2:
            raise GuardError("probability calibration needs held-out human and machine scores")
        if self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6, max_iter=1000).fit(s[:, None], y)
            self.params = {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
        else:
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(s, y)
            self.params = {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
        return self

    def transform(self, scores) -> np.ndarray:
        """Probabilities for ``scores`` (NaN stays NaN)."""
        if self.params is None:
            raise GuardError("the probability calibrator is not fitted")
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "platt":
            z = self.params["a"] * s + self.params["b"]
            return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
        out = np.interp(s, self.params["x"], self.params["y"])
        return np.where(np.isnan(s), np.nan, out)

    def to_dict(self) -> dict:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict) -> "ProbabilityCalibrator":
        cal = cls(d["method"])
        cal.params = d["params"]
        return cal


def apply_probability_calibration(meta: dict, scores) -> np.ndarray:
    """Machine probabilities of log-odds ``scores``: through ``meta["probability_calibration"]``
    when a detector has one (set by ``gpt2guard detector calibrate --probability``), else the
    logistic function."""
    spec = meta.get("probability_calibration")
    z = np.asarray(scores, dtype=np.float64)
    if spec:
        return ProbabilityCalibrator.from_dict(spec).transform(z)
    return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))

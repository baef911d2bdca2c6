"""Calibration: the FPR threshold rule, its bootstrap interval and warning, probability
calibration against scikit-learn, abstention."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpt2guard.detector.calibrate import ProbabilityCalibrator, fpr_threshold, threshold_for_fpr
from gpt2guard.detector.verdict import decide
from gpt2guard.errors import GuardError


@pytest.mark.parametrize("fpr", [0.05, 0.01, 0.2])
def test_threshold_achieves_fpr_on_reference(fpr):
    human = np.random.default_rng(0).normal(size=2000)
    cal = threshold_for_fpr(human, fpr, n_boot=200, seed=1)
    fp = (human > cal.threshold).mean()
    assert fp <= fpr and fp > fpr - 2 / len(human)  # as close as the sample allows, never above
    assert cal.achieved_fpr == fp and cal.warning is None
    assert cal.ci_low <= cal.threshold <= cal.ci_high
    assert threshold_for_fpr(human, fpr, n_boot=200, seed=1) == cal  # seeded
    assert threshold_for_fpr(human, fpr, n_boot=200, seed=2).ci_low != cal.ci_low


def test_ties_resolve_towards_human():
    human = np.array([0.0] * 6 + [1.0] * 4)
    # k = floor(0.3 * 10) = 3: the 4th highest is 1.0, so nothing above it is flagged (0 <= 0.3)
    assert fpr_threshold(human, 0.3) == 1.0
    assert (human > fpr_threshold(human, 0.3)).mean() == 0.0
    assert fpr_threshold(human, 0.45) == 0.0 and (human > 0.0).mean() == 0.4


def test_warning_for_too_little_human_text():
    cal = threshold_for_fpr(np.arange(50.0), 0.01, n_boot=10)
    assert cal.warning and "1000" in cal.warning
    assert threshold_for_fpr(np.arange(1000.0), 0.01, n_boot=10).warning is None


def test_nan_scores_are_ignored_and_bad_rates_refused():
    cal = threshold_for_fpr([np.nan, 1.0, 2.0, 3.0, np.nan], 0.34, n_boot=0)
    assert cal.n_human == 3 and cal.threshold == 2.0
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(GuardError):
            threshold_for_fpr([1.0, 2.0], bad)
    with pytest.raises(GuardError, match="no scorable"):
        threshold_for_fpr([np.nan], 0.1)


def test_platt_and_isotonic_match_sklearn():
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    s = np.concatenate([rng.normal(0, 1, 300), rng.normal(1.5, 1, 300)])
    y = np.array([0] * 300 + [1] * 300)
    probe = np.linspace(-4, 5, 50)
    platt = ProbabilityCalibrator("platt").fit(s, y)
    ref = LogisticRegression(C=1e6, max_iter=1000).fit(s[:, None], y)
    np.testing.assert_allclose(platt.transform(probe), ref.predict_proba(probe[:, None])[:, 1], atol=1e-9)
    iso = ProbabilityCalibrator("isotonic").fit(s, y)
    ref = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(s, y)
    np.testing.assert_allclose(iso.transform(probe), ref.predict(probe), atol=1e-12)
    again = ProbabilityCalibrator.from_dict(iso.to_dict())
    assert np.array_equal(again.transform(probe), iso.transform(probe))
    assert math.isnan(again.transform([np.nan])[0])


def test_abstention_is_never_a_machine_verdict():
    common = dict(method="m", scorer="s")
    short = decide(0, None, 9.0, 0.99, 0.5, 3, 1, (), 16, probability_threshold=0.5, **common)
    assert short.decision == "abstain" and "too short" in short.reason and short.probability is None
    empty = decide(1, None, math.nan, None, 0.5, 0, 0, ("empty",), 16, **common)
    assert empty.decision == "abstain" and "empty" in empty.reason and empty.to_dict()["score"] is None
    assert decide(2, None, 0.6, 0.6, 0.5, 20, 1, (), 16, probability_threshold=0.5, **common).decision == "machine"
    tie = decide(3, None, 0.5, 0.5, 0.5, 20, 1, (), 16, probability_threshold=0.5, **common)
    assert tie.decision == "human" and "=" in tie.reason  # ties -> human
    assert decide(4, None, 0.6, None, 0.5, 20, 1, (), 40, **common).decision == "abstain"  # configurable

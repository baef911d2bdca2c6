"""Evaluation metrics against direct scikit-learn / numpy computations on constructed scores,
breakdowns, the transfer matrix, the table and the ROC plot."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpt2guard.detector.evaluate import (auroc, breakdown, format_table, length_bucket, metrics, roc_plot,
                                         tpr_at_fpr, transfer_matrix)


@pytest.fixture()
def scores():
    rng = np.random.default_rng(7)
    s = np.concatenate([rng.normal(0, 1, 400), rng.normal(1.2, 1, 300)])
    y = np.array([0] * 400 + [1] * 300)
    return y, s


def test_auroc_and_tpr_match_direct_computation(scores):
    from sklearn.metrics import roc_auc_score

    y, s = scores
    assert auroc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    for f in (0.05, 0.01):
        human = np.sort(s[y == 0])[::-1]
        t = human[int(f * len(human))]  # the k-th highest human score, k = floor(f * n)
        assert tpr_at_fpr(y, s, f) == pytest.approx((s[y == 1] > t).mean())
        assert (human > t).mean() <= f


def test_metrics_ci_accuracy_and_abstentions(scores):
    y, s = scores
    s = s.copy()
    s[:5] = np.nan
    m = metrics(y, s, threshold=0.6, n_boot=100, seed=0)
    ok = ~np.isnan(s)
    assert m["n_abstain"] == 5 and m["n_human"] == 395 and m["n_machine"] == 300
    assert m["accuracy"] == pytest.approx(((s[ok] > 0.6) == (y[ok] == 1)).mean())
    assert m["fpr"] == pytest.approx((s[ok][y[ok] == 0] > 0.6).mean())
    lo, hi = m["auroc_ci"]
    assert lo <= m["auroc"] <= hi and hi - lo < 0.2
    assert m["tpr@0.05_ci"][0] <= m["tpr@0.05"] <= m["tpr@0.05_ci"][1]
    assert metrics(y, s, n_boot=100, seed=0)["auroc_ci"] == m["auroc_ci"]
    assert math.isnan(metrics([1, 1], [0.2, 0.3], n_boot=0)["auroc"])


def test_breakdown_uses_all_humans_for_machine_groups(scores):
    y, s = scores
    groups = [None] * 400 + ["small"] * 150 + ["medium"] * 150
    out = breakdown(y, s, groups, machine_only=True, n_boot=0)
    assert set(out) == {"small", "medium"}
    assert out["small"]["n_human"] == 400 and out["small"]["n_machine"] == 150
    from sklearn.metrics import roc_auc_score

    sel = np.r_[np.ones(400, bool), np.ones(150, bool), np.zeros(150, bool)]
    assert out["small"]["auroc"] == pytest.approx(roc_auc_score(y[sel], s[sel]))
    lengths = breakdown(y, s, [length_bucket(n) for n in range(700)], machine_only=False, n_boot=0)
    assert sum(m["n_human"] + m["n_machine"] for m in lengths.values()) == 700


def test_length_buckets():
    assert [length_bucket(n) for n in (0, 31, 32, 200, 511, 512, 5000)] == [
        "0-31", "0-31", "32-63", "128-255", "256-511", "512+", "512+"]


def test_transfer_matrix_shape_and_labels():
    from gpt2guard.detector.estimators import FeatureDetector

    rng = np.random.default_rng(0)
    shift = {"small": np.array([2.0, 0.0]), "medium": np.array([0.0, 2.0]), "large": np.array([1.0, 1.0])}
    train = {k: rng.normal(size=(60, 2)) + v for k, v in shift.items()}
    test = {k: rng.normal(size=(60, 2)) + v for k, v in shift.items()}
    out = transfer_matrix(train, test, rng.normal(size=(60, 2)), rng.normal(size=(60, 2)),
                          lambda: FeatureDetector("logistic"))
    assert out["sizes"] == ["small", "medium", "large"]
    au = np.array(out["auroc"])
    assert au.shape == (3, 3) and np.array(out["tpr@0.01"]).shape == (3, 3)
    assert au[0, 0] > 0.9 and au[1, 1] > 0.9 and au[0, 0] > au[0, 1]  # own size beats the orthogonal one
    text = format_table({"overall": metrics(np.r_[np.zeros(5), np.ones(5)], np.arange(10.0), n_boot=0),
                         "transfer": out})
    assert "transfer AUROC" in text and "medium" in text


def test_roc_plot_writes_png(scores, tmp_path):
    y, s = scores
    roc_plot({"a": (y, s), "b": (y, -s)}, tmp_path / "roc.png")
    assert (tmp_path / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_roc_chance_line_is_tpr_equals_fpr_on_the_log_axis(scores, tmp_path, monkeypatch):
    """The chance line must read TPR = FPR everywhere on the log-FPR axis (a straight segment
    between two points there would read TPR ~ 0.5 at FPR 0.01)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    saved = []
    real = Figure.savefig
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: (saved.append(fig), real(fig, *a, **k))[1])
    y, s = scores
    roc_plot({"a": (y, s)}, tmp_path / "roc.png")
    (ax,) = saved[0].axes
    assert ax.get_xscale() == "log"
    curves = [line for line in ax.get_lines() if not line.get_label().startswith("a (")]
    assert len(curves) == 1
    fx, fy = (np.asarray(v, dtype=float) for v in curves[0].get_data())
    lo, hi = ax.get_xlim()
    q = np.logspace(np.log10(lo), np.log10(hi), 60)
    # what the eye reads: matplotlib joins points by straight segments in display (log-x) space
    drawn = np.interp(np.log10(q), np.log10(fx), fy)
    np.testing.assert_allclose(drawn, q, atol=0.01)

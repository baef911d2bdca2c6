"""Evaluation of a detector's scores: AUROC, TPR at fixed FPR with bootstrap intervals,
accuracy at a threshold, breakdowns by generator size, sampling method and length, the
size-transfer matrix, a text table and a ROC plot.

Conventions: labels are 1 for machine and 0 for human; a NaN score is an abstention and is
left out of every rate (its count is reported as ``n_abstain``). TPR at FPR ``f`` uses the
threshold rule of :mod:`gpt2guard.detector.calibrate` on the human scores, so the evaluation
measures exactly what a calibrated threshold would do. Bootstrap intervals resample human
and machine documents separately (stratified), with a seed argument.
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.detector.calibrate import fpr_threshold
from gpt2guard.errors import GuardError

FPRS = (0.05, 0.01, 0.001)
LENGTH_BUCKETS = (0, 32, 64, 128, 256, 512)


def _split(y, s):
    y = np.asarray(y, dtype=np.int64)
    s = np.asarray(s, dtype=np.float64)
    if y.shape != s.shape:
        raise GuardError(f"{len(y)} labels but {len(s)} scores")
    ok = ~np.isnan(s)
    return y[ok], s[ok], int((~ok).sum())


def auroc(y, s) -> float:
    """Area under the ROC curve (NaN unless both classes are present).

    Computed as the Mann-Whitney statistic from average ranks (ties count one half), which
    equals scikit-learn's ``roc_auc_score`` and is much faster on the many small samples of
    a bootstrap.
    """
    from scipy.stats import rankdata

    y, s, _ = _split(y, s)
    n1 = int((y == 1).sum())
    n0 = len(y) - n1
    if not n0 or not n1:
        return math.nan
    r = rankdata(s)  # average ranks, 1-based
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def tpr_at_fpr(y, s, fpr: float) -> float:
    """Share of machine scores strictly above the human-calibrated threshold for ``fpr``."""
    y, s, _ = _split(y, s)
    if not (y == 0).any() or not (y == 1).any():
        return math.nan
    t = fpr_threshold(s[y == 0], fpr)
    return float((s[y == 1] > t).mean())


def _bootstrap(y, s, fn, n_boot, seed, confidence):
    if n_boot <= 0:
        return None
    rng = np.random.default_rng(seed)
    h, m = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    if not len(h) or not len(m):
        return None
    vals = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(h, len(h)), rng.choice(m, len(m))])
        vals.append(fn(y[idx], s[idx]))
    vals = np.asarray(vals, dtype=np.float64)
    vals = vals[~np.isnan(vals)]
    if not len(vals):
        return None
    a = (1 - confidence) / 2
    return [float(v) for v in np.quantile(vals, [a, 1 - a])]


def metrics(y, s, *, threshold: float | None = None, n_boot: int = 200, seed: int = 0,
            confidence: float = 0.95, fprs=FPRS) -> dict:
    """All headline numbers for one set of scores.

    Returns
    -------
    dict
        ``n_human``, ``n_machine``, ``n_abstain``, ``auroc`` and ``auroc_ci``, per FPR
        ``tpr@<f>`` and ``tpr@<f>_ci``, and with a ``threshold``: ``accuracy``,
        ``tpr``, ``fpr`` at it (machine when score > threshold).
    """
    y, s, n_abstain = _split(y, s)
    out = {"n_human": int((y == 0).sum()), "n_machine": int((y == 1).sum()), "n_abstain": n_abstain,
           "auroc": auroc(y, s), "auroc_ci": _bootstrap(y, s, auroc, n_boot, seed, confidence)}
    for f in fprs:
        key = f"tpr@{f:g}"
        out[key] = tpr_at_fpr(y, s, f)
        out[key + "_ci"] = _bootstrap(y, s, lambda yy, ss, f=f: tpr_at_fpr(yy, ss, f), n_boot, seed, confidence)
    if threshold is not None and len(y):
        pred = s > threshold
        out.update(threshold=float(threshold), accuracy=float((pred == (y == 1)).mean()),
                   tpr=float(pred[y == 1].mean()) if (y == 1).any() else math.nan,
                   fpr=float(pred[y == 0].mean()) if (y == 0).any() else math.nan)
    return out


def length_bucket(n_tokens: int, edges=LENGTH_BUCKETS) -> str:
    """``"64-127"`` style bucket name of a token count (last bucket open: ``"512+"``)."""
    i = int(np.searchsorted(edges, n_tokens, side="right")) - 1
    i = max(i, 0)
    return f"{edges[i]}+" if i == len(edges) - 1 else f"{edges[i]}-{edges[i + 1] - 1}"


def breakdown(y, s, groups, *, machine_only: bool, **kw) -> dict:
    """Metrics per group value.

    ``machine_only=True`` (generator size, sampling method): each group's machine documents
    against *all* human documents. ``machine_only=False`` (length bucket): both classes
    restricted to the group. ``groups`` has one value per document (None = no group).
    """
    y, s, groups = np.asarray(y), np.asarray(s, dtype=np.float64), np.asarray(groups, dtype=object)
    out = {}
    for g in sorted({v for v in groups.tolist() if v is not None}, key=str):
        sel = (groups == g) | ((y == 0) if machine_only else False)
        out[str(g)] = metrics(y[sel], s[sel], **kw)
    return out


def record_groups(record) -> dict:
    """``{"size": ..., "sampling": ...}`` of a machine record from its provenance (None if absent)."""
    prov = record.provenance or {}
    sampling = prov.get("sampling")
    if isinstance(sampling, dict):  # the sampling spec string, as written on the command line
        sampling = sampling.get("spec") or sampling.get("name") or sampling.get("method")
    return {"size": prov.get("size"), "sampling": sampling}


def transfer_matrix(train: dict, test: dict, human_train, human_test, make_estimator, *, fpr: float = 0.01) -> dict:
    """Train on each generator size's machine features, test on every size's.

    Parameters
    ----------
    train, test : dict of str to ndarray
        Machine feature matrices by generator size.
    human_train, human_test : ndarray
        Human feature matrices (shared by every cell).
    make_estimator : callable
        Returns a fresh unfitted classifier with ``fit`` and ``predict_proba``.
    fpr : float
        Rate for the ``tpr`` matrix.

    Returns
    -------
    dict
        ``sizes`` (row = trained on, column = tested on), ``auroc`` and ``tpr`` matrices.
    """
    sizes = [k for k in train if k in test]
    au = [[math.nan] * len(sizes) for _ in sizes]
    tp = [[math.nan] * len(sizes) for _ in sizes]
    for i, a in enumerate(sizes):
        X = np.vstack([human_train, train[a]])
        y = np.r_[np.zeros(len(human_train)), np.ones(len(train[a]))]
        est = make_estimator().fit(X, y)
        h = est.predict_proba(human_test)[:, 1]
        for j, b in enumerate(sizes):
            m = est.predict_proba(test[b])[:, 1]
            yy, ss = np.r_[np.zeros(len(h)), np.ones(len(m))], np.r_[h, m]
            au[i][j], tp[i][j] = auroc(yy, ss), tpr_at_fpr(yy, ss, fpr)
    return {"sizes": sizes, "auroc": au, f"tpr@{fpr:g}": tp}


def _fmt(v, ci=None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    text = f"{v:.3f}"
    return text + (f" [{ci[0]:.3f},{ci[1]:.3f}]" if ci else "")


def format_table(result: dict) -> str:
    """Plain-text table of an evaluation result (``overall`` plus the breakdowns and transfer)."""
    cols = ["auroc"] + [f"tpr@{f:g}" for f in FPRS]
    lines = [f"{'group':<28} {'n_h':>5} {'n_m':>5} " + " ".join(f"{c:>22}" for c in cols) + f" {'acc':>6}"]

    def row(name, m):
        lines.append(f"{name[:28]:<28} {m['n_human']:>5} {m['n_machine']:>5} "
                     + " ".join(f"{_fmt(m.get(c), m.get(c + '_ci')):>22}" for c in cols)
                     + f" {_fmt(m.get('accuracy')):>6}")

    row("overall", result["overall"])
    for by in ("size", "sampling", "length"):
        for g, m in (result.get("by_" + by) or {}).items():
            row(f"{by}={g}", m)
    tr = result.get("transfer")
    if tr:
        lines.append("")
        lines.append("transfer AUROC (row: trained on, column: tested on)")
        lines.append(f"{'':<14}" + "".join(f"{b:>12}" for b in tr["sizes"]))
        for a, vals in zip(tr["sizes"], tr["auroc"]):
            lines.append(f"{a:<14}" + "".join(f"{_fmt(v):>12}" for v in vals))
    return "\n".join(lines)


def roc_figure(curves: dict, title: str = "ROC"):
    """A matplotlib figure of ROC curves, ``curves = {label: (y, scores)}``, on a log-scaled
    FPR axis (1e-3 to 1), with the chance line TPR = FPR (a curve on that axis)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    for label, (y, s) in curves.items():
        y, s, _ = _split(y, s)
        if len(set(y.tolist())) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(np.maximum(fpr, 1e-4), tpr, label=f"{label} (AUROC {auroc(y, s):.3f})")
    chance = np.logspace(-4, 0, 200)  # TPR = FPR is a curve on a log-FPR axis: draw it through many points
    ax.plot(chance, chance, color="grey", linestyle=":", linewidth=1, label="_chance")
    ax.set_xscale("log")
    ax.set_xlim(1e-3, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (human called machine)")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def roc_plot(curves: dict, path, title: str = "ROC") -> None:
    """Write a PNG of :func:`roc_figure` to ``path``."""
    import matplotlib.pyplot as plt

    fig = roc_figure(curves, title)
    fig.savefig(path, format="png")
    plt.close(fig)

"""Measure one stage: train and calibrate a detector on released sizes, then test this stage's.

:func:`measure_stage` is the question OpenAI asked before every GPT-2 release. A detector is
trained only on outputs of the sizes released so far (when nothing is released yet, on the
stage's own sizes: the detector a lab would publish with its first release), with features
from scorer models that are themselves released. Its threshold is calibrated on human-only
text for the plan's false-positive rate; then it is tested on this stage's held-out samples
per size and sampling method, on the released sizes' samples (transfer), and every size's
perplexity is measured on held-out human text (the quality step).

Abstentions (documents too short to judge) count as *not detected* in the gate's TPR, so
short outputs cannot make a size look more detectable than it is.
"""

from __future__ import annotations

import math

import numpy as np

from gpt2guard.release.data import RunData


def family_order(plan) -> list[str]:
    from gpt2guard.family import get_family

    return [s.name for s in get_family(plan.family).sizes]


def pick_scorers(sizes: list[str], order: list[str], max_scorers: int) -> list[str]:
    """The smallest and largest of ``sizes`` (or just the smallest when one is allowed)."""
    ranked = sorted(set(sizes), key=order.index)
    return list(dict.fromkeys([ranked[0], ranked[-1]]))[:max_scorers]


def _quantiles(vals, confidence: float = 0.95):
    vals = np.asarray([v for v in vals if not math.isnan(v)], dtype=np.float64)
    if not len(vals):
        return None
    a = (1 - confidence) / 2
    return [float(v) for v in np.quantile(vals, [a, 1 - a])]


def calibrated_tpr(human_cal, machine, fpr: float, n_boot: int, seed: int) -> tuple[float, list | None]:
    """TPR at the threshold calibrated on ``human_cal``, and its bootstrap interval.

    Each resample draws the calibration documents (so the threshold moves) and the machine
    documents; NaN machine scores (abstentions) count as misses.
    """
    from gpt2guard.detector.calibrate import fpr_threshold

    h = np.asarray(human_cal, dtype=np.float64)
    h = h[~np.isnan(h)]
    m = np.nan_to_num(np.asarray(machine, dtype=np.float64), nan=-np.inf)
    tpr = float((m > fpr_threshold(h, fpr)).mean())
    if n_boot < 1:
        return tpr, None
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        t = fpr_threshold(h[rng.integers(0, len(h), len(h))], fpr)
        boots.append(float((m[rng.integers(0, len(m), len(m))] > t).mean()))
    return tpr, _quantiles(boots)


def perplexity(stats, n_boot: int, seed: int) -> tuple[dict, np.ndarray, np.ndarray]:
    """Perplexity over documents (token-weighted), its bootstrap interval, and the per-document
    negative log-likelihood sums and token counts (for paired comparisons)."""
    nll = np.array([-float(np.sum(s.logp)) for s in stats if s.n_tokens], dtype=np.float64)
    n = np.array([s.n_tokens for s in stats if s.n_tokens], dtype=np.float64)
    ppl = float(np.exp(nll.sum() / n.sum()))
    rng = np.random.default_rng(seed)
    idx = [rng.integers(0, len(n), len(n)) for _ in range(n_boot)]
    ci = _quantiles([float(np.exp(nll[i].sum() / n[i].sum())) for i in idx])
    return {"ppl": ppl, "ci": ci, "n_docs": int(len(n)), "n_tokens": int(n.sum())}, nll, n


def quality_gain(prev: tuple, new: tuple, n_boot: int, seed: int) -> tuple[float, list | None]:
    """Relative perplexity reduction ``1 - ppl_new / ppl_prev`` on the same documents, with a
    paired bootstrap interval."""
    (nll_a, n_a), (nll_b, n_b) = prev, new
    value = 1.0 - math.exp(nll_b.sum() / n_b.sum() - nll_a.sum() / n_a.sum())
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(n_a), len(n_a))
        boots.append(1.0 - math.exp(nll_b[i].sum() / n_b[i].sum() - nll_a[i].sum() / n_a[i].sum()))
    return value, _quantiles(boots)


class StageDetector:
    """The stage's detector with its scoring shortcuts (abstain below ``min_tokens``)."""

    def __init__(self, data: RunData, plan, trained_on: list[str], scorers: list[str]):
        from gpt2guard.detector.estimators import FeatureDetector
        from gpt2guard.detector.trained import TrainedDetector

        ev = plan.evaluation
        self.data, self.plan, self.trained_on, self.scorers = data, plan, trained_on, scorers
        cv = 5 if ev.detector == "logistic" else None  # regularisation chosen on the training data only
        self.det = TrainedDetector(FeatureDetector(ev.detector, random_state=plan.seed, cv=cv), plan.family, scorers,
                                   min_tokens=ev.min_tokens)
        # statistics come from the run's scorers, so record their weights for the saved detector's check
        self.det.model_hashes = {z: data.scorer(z).scorer.model_hash for z in scorers}

    def stats(self, texts: list[str]) -> dict:
        return {s: self.data.stats(s, texts) for s in self.scorers}

    def fit(self) -> "StageDetector":
        human = self.data.human_split("train")
        machine = [t for s in self.trained_on for texts in self.data.samples(s, "train").values() for t in texts]
        if len(machine) > len(human):  # balance the classes: a seeded, even subsample of the machine side
            keep = np.sort(np.random.default_rng(self.plan.seed).choice(len(machine), len(human), replace=False))
            machine = [machine[i] for i in keep]
        texts = human + machine
        self.det.fit(texts, ["human"] * len(human) + ["machine"] * len(machine), stats_by_size=self.stats(texts))
        self.n_train = {"human": len(human), "machine": len(machine)}
        return self

    def scores(self, texts: list[str]) -> np.ndarray:
        """Log-odds of machine; NaN for documents the detector abstains on."""
        stats = self.stats(texts)
        z = self.det.logit_from_stats(stats)
        short = np.array([s.n_tokens < self.det.min_tokens for s in stats[self.scorers[0]]], dtype=bool)
        return np.where(short, np.nan, z)

    def features(self, texts: list[str]) -> np.ndarray:
        return self.det.feature_matrix(self.stats(texts))


def _auroc_drop(h, ref, cands: dict, n_boot: int, seed: int):
    from gpt2guard.detector.evaluate import auroc

    def au(hh, mm):
        y = np.r_[np.zeros(len(hh)), np.ones(len(mm))]
        return auroc(y, np.r_[hh, mm])

    def clean(x):
        return np.asarray(x, dtype=np.float64)[~np.isnan(x)]

    h, ref = clean(h), clean(ref)
    cands = {k: clean(v) for k, v in cands.items()}
    ref_au = au(h, ref)
    cand_au = {k: au(h, v) for k, v in cands.items()}
    drop = ref_au - min(cand_au.values())
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        hb = h[rng.integers(0, len(h), len(h))]
        rb = au(hb, ref[rng.integers(0, len(ref), len(ref))])
        boots.append(rb - min(au(hb, v[rng.integers(0, len(v), len(v))]) for v in cands.values()))
    return ref_au, cand_au, drop, _quantiles(boots)


def measure_stage(data: RunData, plan, sizes: list[str], released: list[str]) -> tuple[dict, StageDetector]:
    """Every number the gates and the model card of a stage need (see the module docstring).

    Returns
    -------
    (dict, StageDetector)
        ``detector``, ``calibration``, ``detection`` (per size and sampling, at the calibrated
        threshold), ``detection_summary`` (overall, by sampling, by length), ``transfer``
        (AUROC drop; None before a release), ``transfer_matrix``, ``perplexity`` per size,
        ``quality_gain`` (None before a release), ``data`` (counts and digests).
    """
    from gpt2guard.detector.calibrate import threshold_for_fpr
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.evaluate import breakdown, length_bucket, metrics, transfer_matrix
    from gpt2guard.paths import sha256_json

    ev, seed = plan.evaluation, plan.seed
    order = family_order(plan)
    trained_on = sorted(released or sizes, key=order.index)
    sd = StageDetector(data, plan, trained_on, pick_scorers(trained_on, order, ev.max_scorers)).fit()

    cal_scores = sd.scores(data.human_split("calibration"))
    cal = threshold_for_fpr(cal_scores, ev.fpr, n_boot=ev.n_boot, seed=seed)
    sd.det.threshold = cal.threshold
    human_test = data.human_split("test")
    h = sd.scores(human_test)
    kw = dict(threshold=cal.threshold, n_boot=ev.n_boot, seed=seed)

    detection, ys, ss, methods, lengths = {}, [np.zeros(len(h))], [h], [None] * len(h), \
        [s.n_tokens for s in sd.stats(human_test)[sd.scorers[0]]]
    for size in sizes:
        detection[size] = {}
        for method, texts in data.samples(size, "test").items():
            m = sd.scores(texts)
            tpr, ci = calibrated_tpr(cal_scores, m, ev.fpr, ev.n_boot, seed)
            cell = metrics(np.r_[np.zeros(len(h)), np.ones(len(m))], np.r_[h, m], **kw)
            detection[size][method] = {**cell, "tpr": tpr, "tpr_ci": ci, "n_abstain": int(np.isnan(m).sum())}
            ys.append(np.ones(len(m)))
            ss.append(m)
            methods += [method] * len(m)
            lengths += [s.n_tokens for s in sd.stats(texts)[sd.scorers[0]]]
    y, s = np.concatenate(ys), np.concatenate(ss)
    summary = {"overall": metrics(y, s, **kw),
               "by_sampling": breakdown(y, s, methods, machine_only=True, **kw),
               "by_length": breakdown(y, s, [length_bucket(n) for n in lengths], machine_only=False, **kw)}

    transfer = None
    if released:
        ref = np.concatenate([sd.scores(t) for r in released for t in data.samples(r, "test").values()])
        cands = {size: np.concatenate([sd.scores(t) for t in data.samples(size, "test").values()]) for size in sizes}
        ref_au, cand_au, drop, drop_ci = _auroc_drop(h, ref, cands, ev.n_boot, seed)
        transfer = {"reference_auroc": ref_au, "candidate_auroc": cand_au, "drop": drop, "drop_ci": drop_ci,
                    "released": list(released)}

    both = sorted(set(released) | set(sizes), key=order.index)
    feats = {split: {z: np.vstack([sd.features(t) for t in data.samples(z, split).values()]) for z in both}
             for split in ("train", "test")}
    matrix = transfer_matrix(feats["train"], feats["test"], sd.features(data.human_split("train")),
                             sd.features(human_test),
                             lambda: FeatureDetector(**sd.det.estimator.get_params()), fpr=ev.fpr)

    prev = max(released, key=order.index) if released else None
    ppl, raw = {}, {}
    for z in sorted(set(sizes) | ({prev} if prev else set()), key=order.index):
        ppl[z], nll, n = perplexity(data.stats(z, human_test), ev.n_boot, seed)
        raw[z] = (nll, n)
    gain = None
    if prev:
        best = max(sizes, key=lambda z: 1 - ppl[z]["ppl"] / ppl[prev]["ppl"])
        value, ci = quality_gain(raw[prev], raw[best], ev.n_boot, seed)
        gain = {"vs": prev, "size": best, "value": value, "ci": ci}

    human_digest = sha256_json({k: data.human_split(k) for k in ("train", "calibration", "test")})
    measured = {
        "detector": {"kind": ev.detector, "trained_on": trained_on, "scorers": sd.scorers,
                     "fallback": None if released else "nothing released yet: trained on this stage's own sizes",
                     "fpr": ev.fpr, "threshold": cal.threshold, "threshold_ci": [cal.ci_low, cal.ci_high],
                     "n_human_calibration": cal.n_human, "n_train": sd.n_train, "warning": cal.warning},
        "calibration": cal.to_dict(), "detection": detection, "detection_summary": summary,
        "transfer": transfer, "transfer_matrix": matrix, "perplexity": ppl, "quality_gain": gain,
        "data": {"human": {"set": "builtin", "splits": {k: len(data.human_split(k))
                                                        for k in ("train", "calibration", "test")},
                           "sha256": human_digest},
                 "samples": [{"set": data.set_name(z, meth), "size": z, "sampling": meth, "split": split,
                              "n": len(t), "sha256": sha256_json(t)}
                             for z in both for split in ("train", "test")
                             for meth, t in data.samples(z, split).items()]},
    }
    return measured, sd

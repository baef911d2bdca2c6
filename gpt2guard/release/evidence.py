"""Measure what a stage's gates ask: the publishable detector, third parties' detectors, perplexity.

:class:`MeasuredWorld` answers the questions of :class:`~gpt2guard.release.judge.World` on a
run's samples and human text. A detector is a function of the sizes it is trained on: trained
on human text and those sizes' training samples (features from the smallest of them as scorer
model), its threshold calibrated on human-only text for the plan's false-positive rate, and
kept for the whole run, so the same training set gives the same detector in every stage and
scenario, whatever the order they run in. :func:`measure_stage` adds what the stage's
evaluation record and model card show besides the gates: the publishable detector's
calibration, detection by sampling method and length, the transfer matrix, perplexities.

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
    """The stage's detector with its scoring shortcuts (abstain below ``min_tokens``).

    A plan's ``detector = "finetune"`` makes it a
    :class:`~gpt2guard.detector.finetune.FinetunedDetector` on the first scorer size (the
    smallest size it is trained on) instead of a feature detector; the transfer matrix still
    compares logistic feature detectors (third parties' detectors), whose features
    :meth:`features` gives either way.
    """

    def __init__(self, data: RunData, plan, trained_on: list[str], scorers: list[str]):
        from gpt2guard.detector.estimators import FeatureDetector
        from gpt2guard.detector.trained import TrainedDetector

        ev = plan.evaluation
        self.data, self.plan, self.trained_on, self.scorers = data, plan, trained_on, scorers
        self.finetune = ev.detector == "finetune"
        kind = "logistic" if self.finetune else ev.detector
        cv = 5 if kind == "logistic" else None  # regularisation chosen on the training data only
        self.features_det = TrainedDetector(FeatureDetector(kind, random_state=plan.seed, cv=cv), plan.family, scorers,
                                            min_tokens=ev.min_tokens)
        # statistics come from the run's scorers, so record their weights for the saved detector's check
        self.features_det.model_hashes = {z: data.scorer(z).scorer.model_hash for z in scorers}
        if self.finetune:
            from gpt2guard.detector.finetune import FinetunedDetector

            self.det = FinetunedDetector(f"{plan.family}:{scorers[0]}", min_tokens=ev.min_tokens,
                                         random_state=plan.seed)
        else:
            self.det = self.features_det

    def stats(self, texts: list[str]) -> dict:
        return {s: self.data.stats(s, texts) for s in self.scorers}

    def fit(self) -> "StageDetector":
        human = self.data.human_split("train")
        machine = [t for s in self.trained_on for texts in self.data.samples(s, "train").values() for t in texts]
        if len(machine) > len(human):  # balance the classes: a seeded, even subsample of the machine side
            keep = np.sort(np.random.default_rng(self.plan.seed).choice(len(machine), len(human), replace=False))
            machine = [machine[i] for i in keep]
        texts = human + machine
        labels = ["human"] * len(human) + ["machine"] * len(machine)
        if self.finetune:
            self.det.fit(texts, labels)
        else:
            self.det.fit(texts, labels, stats_by_size=self.stats(texts))
        self.n_train = {"human": len(human), "machine": len(machine)}
        return self

    def scores(self, texts: list[str]) -> np.ndarray:
        """Log-odds of machine; NaN for documents the detector abstains on."""
        if self.finetune:
            return self.det.abstaining_scores(texts)
        stats = self.stats(texts)
        z = self.det.logit_from_stats(stats)
        short = np.array([s.n_tokens < self.det.min_tokens for s in stats[self.scorers[0]]], dtype=bool)
        return np.where(short, np.nan, z)

    def features(self, texts: list[str]) -> np.ndarray:
        return self.features_det.feature_matrix(self.stats(texts))


def _clean(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[~np.isnan(x)]


def _auroc(h, m) -> float:
    from gpt2guard.detector.evaluate import auroc

    return auroc(np.r_[np.zeros(len(h)), np.ones(len(m))], np.r_[h, m])


class MeasuredWorld:
    """The :class:`~gpt2guard.release.judge.World` of a run: every answer measured on its data.

    Detectors, scores and perplexities are kept by what they depend on (training sizes, size),
    so a question asked twice, in another stage or scenario, gets the same answer.
    """

    def __init__(self, data: RunData, plan):
        self.data, self.plan = data, plan
        self.order = family_order(plan)
        self._detectors: dict[tuple, StageDetector] = {}
        self._scores: dict[tuple, dict] = {}
        self._ppl: dict[str, tuple] = {}
        self._attacked: dict[tuple, object] = {}
        self._robust: dict[tuple, dict] = {}
        self._watermark: dict[tuple, dict] = {}

    def attacked(self, texts: list[str], key: str) -> list:
        """``texts`` attacked by ``key`` (:class:`gpt2guard.attacks.Attacked` each), seeded from
        the plan's seed and each text, so a text is attacked once per run."""
        from gpt2guard.release.robustness import attack_texts

        todo = list(dict.fromkeys(t for t in texts if (key, t) not in self._attacked))
        for t, a in zip(todo, attack_texts(todo, key, self.plan.seed)):
            self._attacked[(key, t)] = a
        return [self._attacked[(key, t)] for t in texts]

    def robustness(self, trained_on: tuple, size: str, attacks: list[str]) -> dict:
        from gpt2guard.release.robustness import robustness_cells

        key = (tuple(self.detector(trained_on).trained_on), size, tuple(attacks))
        if key not in self._robust:
            self._robust[key] = robustness_cells(self, trained_on, size, attacks)
        return self._robust[key]

    def watermark(self, plan, stage, attacks: list[str]) -> dict:
        from gpt2guard.release.plan import resolve_file
        from gpt2guard.release.robustness import watermark_evidence

        w = stage.watermark
        key = (str(resolve_file(plan, w.key, stage)), w.gamma, w.delta, w.scheme, w.z_threshold,
               tuple(stage.sizes), tuple(attacks))
        if key not in self._watermark:
            self._watermark[key] = watermark_evidence(self, plan, stage, attacks)
        return self._watermark[key]

    def detector(self, trained_on: tuple) -> StageDetector:
        """The detector trained on ``trained_on``, calibrated for the plan's FPR."""
        from gpt2guard.detector.calibrate import threshold_for_fpr

        trained_on = tuple(sorted(trained_on, key=self.order.index))
        if trained_on not in self._detectors:
            ev = self.plan.evaluation
            sd = StageDetector(self.data, self.plan, list(trained_on),
                               pick_scorers(list(trained_on), self.order, ev.max_scorers)).fit()
            sd.cal_scores = sd.scores(self.data.human_split("calibration"))
            sd.cal = threshold_for_fpr(sd.cal_scores, ev.fpr, n_boot=ev.n_boot, seed=self.plan.seed)
            sd.det.threshold = sd.cal.threshold
            sd.human_test = sd.scores(self.data.human_split("test"))
            self._detectors[trained_on] = sd
        return self._detectors[trained_on]

    def scores(self, trained_on: tuple, size: str) -> dict[str, np.ndarray]:
        """``{sampling method: scores}`` of ``size``'s test samples under the detector."""
        sd = self.detector(trained_on)
        key = (tuple(sd.trained_on), size)
        if key not in self._scores:
            self._scores[key] = {m: sd.scores(t) for m, t in self.data.samples(size, "test").items()}
        return self._scores[key]

    def detection(self, trained_on: tuple, size: str) -> dict:
        from gpt2guard.detector.evaluate import metrics

        ev, seed = self.plan.evaluation, self.plan.seed
        sd = self.detector(trained_on)
        h, out = sd.human_test, {}
        for method, m in self.scores(trained_on, size).items():
            tpr, ci = calibrated_tpr(sd.cal_scores, m, ev.fpr, ev.n_boot, seed)
            cell = metrics(np.r_[np.zeros(len(h)), np.ones(len(m))], np.r_[h, m], threshold=sd.cal.threshold,
                           n_boot=ev.n_boot, seed=seed)
            out[method] = {**cell, "tpr": tpr, "tpr_ci": ci, "n_abstain": int(np.isnan(m).sum())}
        return out

    def _pair(self, trained_on: tuple, size: str):
        sd = self.detector(trained_on)
        return _clean(sd.human_test), _clean(np.concatenate(list(self.scores(trained_on, size).values())))

    def auroc(self, trained_on: tuple, size: str) -> float:
        return float(_auroc(*self._pair(trained_on, size)))

    def drop_ci(self, publishable: tuple, third_party: tuple | None, size: str, floor: float) -> list | None:
        """Paired bootstrap: the same resampled human and machine documents under both detectors
        (documents either detector abstains on are left out of both)."""
        n_boot, seed = self.plan.evaluation.n_boot, self.plan.seed
        hp, mp = self.detector(publishable).human_test, np.concatenate(list(self.scores(publishable, size).values()))
        if third_party is None:
            ht, mt = np.zeros_like(hp), np.zeros_like(mp)
        else:
            ht = self.detector(third_party).human_test
            mt = np.concatenate(list(self.scores(third_party, size).values()))
        hk, mk = ~(np.isnan(hp) | np.isnan(ht)), ~(np.isnan(mp) | np.isnan(mt))
        hp, ht, mp, mt = hp[hk], ht[hk], mp[mk], mt[mk]
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            i, j = rng.integers(0, len(hp), len(hp)), rng.integers(0, len(mp), len(mp))
            third = floor if third_party is None else max(floor, _auroc(ht[i], mt[j]))
            boots.append(_auroc(hp[i], mp[j]) - third)
        return _quantiles(boots)

    def _perplexity(self, size: str) -> tuple:
        if size not in self._ppl:
            ev = self.plan.evaluation
            self._ppl[size] = perplexity(self.data.stats(size, self.data.human_split("test")), ev.n_boot, self.plan.seed)
        return self._ppl[size]

    def perplexity(self, size: str) -> float:
        return self._perplexity(size)[0]["ppl"]

    def perplexity_record(self, size: str) -> dict:
        return self._perplexity(size)[0]

    def gain_ci(self, after: str, before: str | None, before_ppl: float) -> list | None:
        ev = self.plan.evaluation
        _, nll_b, n_b = self._perplexity(after)
        if before is not None:
            _, nll_a, n_a = self._perplexity(before)
            return quality_gain((nll_a, n_a), (nll_b, n_b), ev.n_boot, self.plan.seed)[1]
        rng = np.random.default_rng(self.plan.seed)
        boots = []
        for _ in range(ev.n_boot):
            i = rng.integers(0, len(n_b), len(n_b))
            boots.append(1.0 - math.exp(nll_b[i].sum() / n_b[i].sum()) / before_ppl)
        return _quantiles(boots)


def measure_stage(world: MeasuredWorld, ev) -> tuple[dict, StageDetector]:
    """Every number the evaluation record and model card of a stage need, around its gate
    evidence ``ev`` (a :class:`~gpt2guard.release.judge.StageEvidence`).

    Returns
    -------
    (dict, StageDetector)
        ``detector`` (the publishable one), ``calibration``, ``detection`` (per size and
        sampling, at the calibrated threshold), ``detection_summary`` (overall, by sampling, by
        length), ``transfer`` (the third-party question), ``transfer_matrix``, ``perplexity``
        of every size involved, ``quality_gain``, ``robustness`` and ``watermark`` (None when
        the stage measures neither), ``data`` (counts and digests), and the publishable
        detector.
    """
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.evaluate import breakdown, length_bucket, metrics, transfer_matrix
    from gpt2guard.paths import sha256_json

    data, plan = world.data, world.plan
    e, seed, order = plan.evaluation, plan.seed, world.order
    sizes = list(ev.stage.sizes)
    pub = tuple(ev.publishable)
    sd = world.detector(pub)
    cal = sd.cal
    human_test = data.human_split("test")
    h = sd.human_test
    kw = dict(threshold=cal.threshold, n_boot=e.n_boot, seed=seed)

    ys, ss, methods = [np.zeros(len(h))], [h], [None] * len(h)
    lengths = [s.n_tokens for s in sd.stats(human_test)[sd.scorers[0]]]
    for size in sizes:
        for method, m in world.scores(pub, size).items():
            ys.append(np.ones(len(m)))
            ss.append(m)
            methods += [method] * len(m)
            lengths += [s.n_tokens for s in sd.stats(data.samples(size, "test")[method])[sd.scorers[0]]]
    y, s = np.concatenate(ys), np.concatenate(ss)
    summary = {"overall": metrics(y, s, **kw),
               "by_sampling": breakdown(y, s, methods, machine_only=True, **kw),
               "by_length": breakdown(y, s, [length_bucket(n) for n in lengths], machine_only=False, **kw)}

    both = sorted(set(ev.released) | set(sizes), key=order.index)
    feats = {split: {z: np.vstack([sd.features(t) for t in data.samples(z, split).values()]) for z in both}
             for split in ("train", "test")}
    matrix = transfer_matrix(feats["train"], feats["test"], sd.features(data.human_split("train")),
                             sd.features(human_test),
                             lambda: FeatureDetector(**sd.features_det.estimator.get_params()), fpr=e.fpr)

    from gpt2guard.release.plan import prerelease_size

    ref = prerelease_size(plan)
    involved = sorted(set(both) | ({ref} if ref else set()), key=order.index)
    ppl = {z: world.perplexity_record(z) for z in involved}

    human_digest = sha256_json({k: data.human_split(k) for k in ("train", "calibration", "test")})
    measured = {
        "detector": {"kind": e.detector, "role": "publishable: the detector the lab can publish with this stage",
                     "trained_on": list(pub), "scorers": sd.scorers, "fallback": None,
                     "fpr": e.fpr, "threshold": cal.threshold, "threshold_ci": [cal.ci_low, cal.ci_high],
                     "n_human_calibration": cal.n_human, "n_train": sd.n_train, "warning": cal.warning},
        "calibration": cal.to_dict(), "detection": ev.detection, "detection_summary": summary,
        "transfer": ev.transfer, "transfer_matrix": matrix, "perplexity": ppl, "quality_gain": ev.quality_gain,
        "robustness": ev.robustness, "watermark": ev.watermark,
        "data": {"human": {"set": "builtin", "splits": {k: len(data.human_split(k))
                                                        for k in ("train", "calibration", "test")},
                           "sha256": human_digest},
                 "samples": [{"set": data.set_name(z, meth), "size": z, "sampling": meth, "split": split,
                              "n": len(t), "sha256": sha256_json(t)}
                             for z in both for split in ("train", "test")
                             for meth, t in data.samples(z, split).items()]},
    }
    return measured, sd

"""What every detector that reads texts shares as a scikit-learn classifier.

:class:`TextDetector` is the base of :class:`~gpt2guard.detector.trained.TrainedDetector`
and :class:`~gpt2guard.detector.tfidf.TfidfDetector`: ``X`` is a list of texts, ``y`` their
labels (``"human"``/``"machine"`` or 0/1). It gives them ``predict``, ``predict_proba``,
``score`` (accuracy), the input checks of ``fit`` (as many labels and weights as texts,
both classes present, ``class_weight`` folded into ``sample_weight``) and :meth:`calibrate`
(the threshold for a false-positive rate on human text). So ``clone``, ``cross_val_score``
and ``GridSearchCV`` work on lists of texts.

Labels are kept as given: ``classes_`` is ``["human", "machine"]`` or ``[0, 1]``, and
``predict`` returns the same kind. The second class is always "machine", the positive one.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

# scikit-learn at module level: the classes derive from its bases. Nothing imports this
# module at package import time, so ``gpt2guard --help`` stays free of scikit-learn.
from sklearn.base import BaseEstimator, ClassifierMixin

from gpt2guard.errors import GuardError

LABELS = ("human", "machine")


def data_digest(texts, labels) -> str:
    """SHA-256 over (label, text) pairs in order: identifies a training set."""
    h = hashlib.sha256()
    for text, label in zip(texts, labels):
        raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
        h.update(f"{label}\0{len(raw)}\0".encode())
        h.update(raw)
    return h.hexdigest()


def label_array(labels) -> np.ndarray:
    """Labels as 0 (human) / 1 (machine); accepts those ints or the strings."""
    out = []
    for lab in labels:
        if isinstance(lab, (str, np.str_)) and str(lab) in LABELS:
            out.append(LABELS.index(str(lab)))
        elif not isinstance(lab, (str, bytes)) and lab in (0, 1):
            out.append(int(lab))
        else:
            raise GuardError(f"label must be 'human', 'machine', 0 or 1, not {lab!r}")
    return np.asarray(out, dtype=np.int64)


def label_classes(labels) -> np.ndarray:
    """``classes_`` for labels given as strings (``["human", "machine"]``) or numbers (``[0, 1]``)."""
    kinds = {isinstance(lab, (str, np.str_)) for lab in labels}
    if len(kinds) > 1:
        raise GuardError("labels mix strings and numbers: use 'human'/'machine' or 0/1 throughout")
    return np.array(LABELS) if kinds == {True} else np.array([0, 1])


def as_texts(X) -> list:
    """``X`` as a list of documents (str or bytes); refuses one bare string and 2-D input."""
    if isinstance(X, (str, bytes)):
        raise GuardError("pass a list of texts, not a single string")
    if isinstance(X, np.ndarray) and X.ndim != 1:
        if X.ndim == 2 and X.shape[1] == 1:
            X = X[:, 0]
        else:
            raise GuardError(f"texts must be a 1-D sequence, not an array of shape {X.shape}")
    texts = list(X)
    bad = next((t for t in texts if not isinstance(t, (str, bytes))), None)
    if bad is not None:
        raise GuardError(f"each document must be a str (or bytes), not {type(bad).__name__}")
    return texts


def _weight_key(key):
    """A ``class_weight`` key as 0/1 (accepts the labels, 0/1 and their strings)."""
    if isinstance(key, str) and key in ("0", "1"):
        return int(key)
    return int(label_array([key])[0])


def fit_weights(y: np.ndarray, sample_weight=None, class_weight=None) -> np.ndarray | None:
    """Per-document weights: ``sample_weight`` times the ``class_weight`` of each label (None when
    neither is given). ``class_weight`` is ``"balanced"`` or a dict keyed by label."""
    from sklearn.utils.class_weight import compute_sample_weight

    w = None
    if sample_weight is not None:
        w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
        if w.shape != y.shape:
            raise GuardError(f"{len(y)} texts but {w.size} sample weights")
    if class_weight is not None:
        if isinstance(class_weight, dict):
            cw = {_weight_key(k): float(v) for k, v in class_weight.items()}
        elif class_weight == "balanced":
            cw = "balanced"
        else:
            raise GuardError(f"class_weight must be a dict of label to weight or 'balanced', not {class_weight!r}")
        c = compute_sample_weight(cw, y)
        w = c if w is None else w * c
    if w is not None and (not np.all(np.isfinite(w)) or (w < 0).any() or not w.sum() > 0):
        raise GuardError("sample weights must be finite, non-negative and not all zero")
    return w


class TextDetector(ClassifierMixin, BaseEstimator):
    """Base of the detectors whose ``X`` is a list of texts (see the module docstring).

    A subclass gives ``decision_function(X)`` (log-odds of machine, NaN where a document
    cannot be scored), ``verdicts(texts)`` and the ``threshold``/``min_tokens`` parameters.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.classifier_tags.multi_class = False
        return tags

    @property
    def meta(self) -> dict:
        """What is recorded with the fitted detector (training digest, calibration...)."""
        return self.__dict__.setdefault("_meta", {})

    @meta.setter
    def meta(self, value: dict) -> None:
        self._meta = dict(value)

    def _fit_inputs(self, X, y, sample_weight=None):
        """Checked texts, 0/1 labels and weights; sets ``classes_``."""
        texts = as_texts(X)
        labels = list(y) if not isinstance(y, (str, bytes)) else [y]
        if len(labels) != len(texts):
            raise GuardError(f"{len(texts)} texts but {len(labels)} labels")
        y01 = label_array(labels)
        if len(set(y01.tolist())) < 2:
            raise GuardError("training needs human and machine documents")
        self.classes_ = label_classes(labels)
        return texts, y01, fit_weights(y01, sample_weight, getattr(self, "class_weight", None))

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise GuardError(f"this {type(self).__name__} is not fitted: call fit(texts, labels) first")

    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of ``classes_[0]`` (human) and ``classes_[1]`` (machine): shape (n, 2).
        Rows of documents that cannot be scored (empty, binary) are NaN."""
        self._check_fitted()
        z = np.asarray(self.decision_function(X), dtype=np.float64)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
        return np.column_stack([1.0 - p, p])

    def predict(self, X) -> np.ndarray:
        """``classes_[1]`` (machine) where the score is above :attr:`threshold` (0 until
        calibrated), else ``classes_[0]``; a document that cannot be scored is never machine."""
        self._check_fitted()
        z = np.asarray(self.decision_function(X), dtype=np.float64)
        t = 0.0 if self.threshold is None else float(self.threshold)
        with np.errstate(invalid="ignore"):
            return self.classes_[(z > t).astype(int)]

    def abstaining_scores(self, texts) -> np.ndarray:
        """The verdicts' scores (log-odds), NaN where a verdict abstains (too short, unscorable)."""
        verdicts = self.verdicts(list(texts))
        return np.array([math.nan if v.decision == "abstain" else v.score for v in verdicts], dtype=np.float64)

    def calibrate(self, human_texts, fpr: float = 0.01, *, n_boot: int = 1000, seed: int = 0):
        """Set :attr:`threshold` so at most ``fpr`` of ``human_texts`` are called machine.

        The rule of :func:`~gpt2guard.detector.calibrate.threshold_for_fpr` on the verdict
        scores (abstentions left out), as ``gpt2guard detector calibrate`` does. The result,
        with its bootstrap interval and any warning, is kept as ``calibration_`` and saved.

        Returns
        -------
        self
        """
        from gpt2guard.detector.calibrate import threshold_for_fpr

        self._check_fitted()
        cal = threshold_for_fpr(self.abstaining_scores(as_texts(human_texts)), fpr, n_boot=n_boot, seed=seed)
        self.threshold = cal.threshold
        self.calibration_ = cal
        self.meta["calibration"] = cal.to_dict()
        return self


def json_class_weight(class_weight):
    """``class_weight`` as JSON can hold it (dict keys as strings)."""
    if isinstance(class_weight, dict):
        return {str(k): float(v) for k, v in class_weight.items()}
    return class_weight

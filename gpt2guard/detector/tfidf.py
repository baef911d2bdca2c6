"""OpenAI's baseline detector: TF-IDF of word 1- and 2-grams, then logistic regression.

Fitting uses scikit-learn's ``TfidfVectorizer`` (its default tokenisation, lower-casing,
smoothed idf) to choose the vocabulary and idf weights; the features themselves are then
computed here, as term counts (``CountVectorizer`` with the fixed vocabulary) times idf,
each row scaled to unit L2 norm, both in training and after loading. The saved state is
the vocabulary (JSON, in ``detector.json``), the idf, the coefficients and the intercept
(``model.npz``): no pickle.

It needs no language model, so its verdicts count whitespace-separated words as
``n_tokens`` and report ``n_windows`` as 0.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from gpt2guard.detector.hygiene import clean_text, is_scorable, prepare_text
from gpt2guard.detector.text_estimator import TextDetector, as_texts, data_digest, json_class_weight
from gpt2guard.detector.trained import FORMAT_VERSION, LABELS, save_npz
from gpt2guard.detector.verdict import DEFAULT_MIN_TOKENS, Verdict, decide
from gpt2guard.errors import GuardError
from gpt2guard.paths import write_json


class TfidfDetector(TextDetector):
    """TF-IDF (word 1-2-grams) + logistic regression, a scikit-learn classifier on texts.

    Parameters
    ----------
    max_features : int
        Vocabulary cap (most frequent n-grams).
    min_df : int
        Keep n-grams seen in at least this many training documents.
    C : float
        Inverse regularisation strength.
    class_weight : dict, "balanced" or None
        Weight of each class (keys: ``"human"``/``"machine"`` or 0/1) in the training loss.
    min_tokens : int
        Documents with fewer words get an ``abstain`` verdict.
    threshold : float, optional
        Threshold on the score, the log-odds of machine (default 0, probability 0.5);
        :meth:`calibrate` sets it for a false-positive rate.

    Attributes
    ----------
    classes_ : ndarray
        ``["human", "machine"]`` or ``[0, 1]``, as the training labels were given.
    vocabulary_ : dict of str to int
    idf_, coef_ : ndarray, shape (n_terms,)
    intercept_ : float
    """

    kind = "tfidf"

    def __init__(self, max_features: int = 50000, min_df: int = 1, C: float = 1.0, *, class_weight=None,
                 min_tokens: int = DEFAULT_MIN_TOKENS, threshold: float | None = None):
        self.max_features = max_features
        self.min_df = min_df
        self.C = C
        self.class_weight = class_weight
        self.min_tokens = min_tokens
        self.threshold = threshold

    def _transform(self, texts) -> "object":
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        if getattr(self, "vocabulary_", None) is None:
            raise GuardError("the TF-IDF detector is not fitted")
        counts = CountVectorizer(ngram_range=(1, 2), vocabulary=self.vocabulary_).transform(texts)
        return normalize(counts.astype(np.float64).multiply(self.idf_[None, :]).tocsr(), norm="l2")

    def fit(self, X, y, sample_weight=None) -> "TfidfDetector":
        """Fit on texts ``X`` (cleaned with :func:`prepare_text`) and labels ``y``
        (human/machine or 0/1), each weighted by ``sample_weight`` times ``class_weight``."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        raw, y, w = self._fit_inputs(X, y, sample_weight)
        cleaned = [prepare_text(t)[0] for t in raw]
        keep = np.array([bool(t.strip()) for t in cleaned], dtype=bool)
        docs = [t for t, k in zip(cleaned, keep) if k]
        if len(set(y[keep].tolist())) < 2:
            raise GuardError("training needs non-empty human and machine documents")
        vec = TfidfVectorizer(ngram_range=(1, 2), max_features=int(self.max_features), min_df=int(self.min_df))
        vec.fit(docs)
        self.vocabulary_ = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        self.idf_ = vec.idf_.astype(np.float64)
        lr = LogisticRegression(C=float(self.C), max_iter=2000)
        lr.fit(self._transform(docs), y[keep], sample_weight=None if w is None else w[keep])
        self.coef_, self.intercept_ = lr.coef_[0].astype(np.float64), float(lr.intercept_[0])
        self.meta = {"train_digest": data_digest(raw, y.tolist()), "n_train": int(keep.sum()),
                     "n_train_machine": int(y[keep].sum())}
        return self

    def raw_decision(self, texts) -> np.ndarray:
        """Log-odds of machine per text (cleaned first), for every text (the lexical feature)."""
        X = self._transform([prepare_text(t)[0] for t in texts])
        return np.asarray(X @ self.coef_).ravel() + self.intercept_

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of machine per text; NaN for unscorable input (the verdicts' score)."""
        texts = as_texts(X)
        z = self.raw_decision(texts) if texts else np.zeros(0)
        ok = [is_scorable(prepare_text(t)[1]) for t in texts]
        return np.where(np.array(ok, dtype=bool), z, math.nan)

    decision_texts = decision_function

    def predict_proba_texts(self, texts) -> np.ndarray:
        """Machine probability per text; NaN for unscorable input (empty, binary)."""
        texts = as_texts(texts)
        prepared = [prepare_text(t) for t in texts]
        z = self.raw_decision(texts) if texts else np.zeros(0)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
        ok = np.array([bool(t.strip()) and "binary" not in f for t, f in prepared], dtype=bool)
        return np.where(ok, p, math.nan)

    def verdicts(self, texts, names=None) -> list[Verdict]:
        """Machine / human / abstain per text (see :func:`~gpt2guard.detector.verdict.decide`)."""
        texts = list(texts)
        from gpt2guard.detector.calibrate import apply_probability_calibration

        probs = self.decision_texts(texts)  # scores: log-odds
        shown = apply_probability_calibration(self.meta, probs)
        threshold = 0.0 if self.threshold is None else self.threshold
        q_threshold = float(apply_probability_calibration(self.meta, [threshold])[0])  # the same threshold, as a probability
        out = []
        for i, (t, p, q) in enumerate(zip(texts, probs, shown)):
            c = clean_text(t)
            out.append(decide(i, (names or [None] * len(texts))[i], float(p), float(q), threshold, len(c.text.split()),
                              0, c.flags, int(self.min_tokens), method="tfidf-logistic", scorer="none",
                              probability_threshold=q_threshold, repairs=c.counts))
        return out

    def describe(self) -> dict:
        """The ``detector.json`` content."""
        return {"format": FORMAT_VERSION, "kind": self.kind,
                "estimator": {"max_features": int(self.max_features), "min_df": int(self.min_df), "C": float(self.C)},
                "class_weight": json_class_weight(self.class_weight),
                "vocabulary": self.vocabulary_, "labels": list(LABELS), "classes": ["0", "1"],
                "label_classes": self.classes_.tolist(), "threshold": self.threshold,
                "min_tokens": int(self.min_tokens), **self.meta}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``detector.json`` (with the vocabulary) and ``model.npz`` (idf, coef, intercept)."""
        if getattr(self, "vocabulary_", None) is None:
            raise GuardError("the TF-IDF detector is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_npz(directory / "model.npz", {"idf": self.idf_, "coef": self.coef_,
                                           "intercept": np.array([self.intercept_])})
        write_json(directory / "detector.json", self.describe())
        return directory

    @classmethod
    def from_saved(cls, meta: dict, arrays) -> "TfidfDetector":
        est = meta.get("estimator") or {}
        try:
            det = cls(est.get("max_features", 50000), est.get("min_df", 1), est.get("C", 1.0),
                      class_weight=meta.get("class_weight"), min_tokens=meta.get("min_tokens", DEFAULT_MIN_TOKENS),
                      threshold=meta.get("threshold"))
            det.vocabulary_ = {str(k): int(v) for k, v in meta["vocabulary"].items()}
            det.idf_ = np.asarray(arrays["idf"], np.float64)
            det.coef_ = np.asarray(arrays["coef"], np.float64)
            det.intercept_ = float(np.asarray(arrays["intercept"])[0])
            det.classes_ = np.array(meta.get("label_classes") or LABELS)
        except KeyError as exc:
            raise GuardError(f"saved TF-IDF detector lacks {exc.args[0]!r}") from None
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            raise GuardError(f"saved TF-IDF detector is damaged: {exc}") from None
        det.meta = {k: v for k, v in meta.items() if k not in det.describe()}
        return det

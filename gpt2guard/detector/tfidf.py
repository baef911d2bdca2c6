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
from gpt2guard.detector.trained import FORMAT_VERSION, LABELS, data_digest, label_array, save_npz
from gpt2guard.detector.verdict import DEFAULT_MIN_TOKENS, Verdict, decide
from gpt2guard.errors import GuardError
from gpt2guard.paths import write_json


class TfidfDetector:
    """TF-IDF (word 1-2-grams) + logistic regression.

    Parameters
    ----------
    max_features : int
        Vocabulary cap (most frequent n-grams).
    min_df : int
        Keep n-grams seen in at least this many training documents.
    C : float
        Inverse regularisation strength.
    min_tokens : int
        Documents with fewer words get an ``abstain`` verdict.
    threshold : float, optional
        Threshold on the score, the log-odds of machine (default 0, probability 0.5).
    """

    kind = "tfidf"

    def __init__(self, max_features: int = 50000, min_df: int = 1, C: float = 1.0, *,
                 min_tokens: int = DEFAULT_MIN_TOKENS, threshold: float | None = None):
        self.max_features, self.min_df, self.C = int(max_features), int(min_df), float(C)
        self.min_tokens, self.threshold = int(min_tokens), threshold
        self.vocabulary: dict[str, int] | None = None
        self.idf = self.coef = None
        self.intercept = 0.0
        self.meta: dict = {}

    def _transform(self, texts) -> "object":
        from sklearn.feature_extraction.text import CountVectorizer
        from sklearn.preprocessing import normalize

        if self.vocabulary is None:
            raise GuardError("the TF-IDF detector is not fitted")
        counts = CountVectorizer(ngram_range=(1, 2), vocabulary=self.vocabulary).transform(texts)
        return normalize(counts.astype(np.float64).multiply(self.idf[None, :]).tocsr(), norm="l2")

    def fit(self, texts, labels) -> "TfidfDetector":
        """Fit on texts (cleaned with :func:`prepare_text`) and labels (human/machine or 0/1)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        raw, y = list(texts), label_array(labels)
        cleaned = [prepare_text(t)[0] for t in raw]
        keep = np.array([bool(t.strip()) for t in cleaned])
        docs = [t for t, k in zip(cleaned, keep) if k]
        if len(set(y[keep].tolist())) < 2:
            raise GuardError("training needs non-empty human and machine documents")
        vec = TfidfVectorizer(ngram_range=(1, 2), max_features=self.max_features, min_df=self.min_df)
        vec.fit(docs)
        self.vocabulary = {str(k): int(v) for k, v in vec.vocabulary_.items()}
        self.idf = vec.idf_.astype(np.float64)
        lr = LogisticRegression(C=self.C, max_iter=2000)
        lr.fit(self._transform(docs), y[keep])
        self.coef, self.intercept = lr.coef_[0].astype(np.float64), float(lr.intercept_[0])
        self.meta.update(train_digest=data_digest(raw, y.tolist()), n_train=int(keep.sum()),
                         n_train_machine=int(y[keep].sum()))
        return self

    def decision_function(self, texts) -> np.ndarray:
        """Log-odds of machine per text (cleaned first)."""
        X = self._transform([prepare_text(t)[0] for t in texts])
        return np.asarray(X @ self.coef).ravel() + self.intercept

    def decision_texts(self, texts) -> np.ndarray:
        """Log-odds of machine per text; NaN for unscorable input (the verdicts' score)."""
        texts = list(texts)
        z = self.decision_function(texts) if texts else np.zeros(0)
        ok = [is_scorable(prepare_text(t)[1]) for t in texts]
        return np.where(np.array(ok, dtype=bool), z, math.nan)

    def predict_proba_texts(self, texts) -> np.ndarray:
        """Machine probability per text; NaN for unscorable input (empty, binary)."""
        texts = list(texts)
        prepared = [prepare_text(t) for t in texts]
        z = self.decision_function(texts) if texts else np.zeros(0)
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
                              0, c.flags, self.min_tokens, method="tfidf-logistic", scorer="none",
                              probability_threshold=q_threshold, repairs=c.counts))
        return out

    def describe(self) -> dict:
        return {"format": FORMAT_VERSION, "kind": self.kind,
                "estimator": {"max_features": self.max_features, "min_df": self.min_df, "C": self.C},
                "vocabulary": self.vocabulary, "labels": list(LABELS), "classes": ["0", "1"],
                "threshold": self.threshold, "min_tokens": self.min_tokens, **self.meta}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``detector.json`` (with the vocabulary) and ``model.npz`` (idf, coef, intercept)."""
        if self.vocabulary is None:
            raise GuardError("the TF-IDF detector is not fitted")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_npz(directory / "model.npz", {"idf": self.idf, "coef": self.coef,
                                           "intercept": np.array([self.intercept])})
        write_json(directory / "detector.json", self.describe())
        return directory

    @classmethod
    def from_saved(cls, meta: dict, arrays) -> "TfidfDetector":
        est = meta.get("estimator") or {}
        det = cls(est.get("max_features", 50000), est.get("min_df", 1), est.get("C", 1.0),
                  min_tokens=meta.get("min_tokens", DEFAULT_MIN_TOKENS), threshold=meta.get("threshold"))
        try:
            det.vocabulary = {str(k): int(v) for k, v in meta["vocabulary"].items()}
            det.idf = np.asarray(arrays["idf"], np.float64)
            det.coef = np.asarray(arrays["coef"], np.float64)
            det.intercept = float(np.asarray(arrays["intercept"])[0])
        except KeyError as exc:
            raise GuardError(f"saved TF-IDF detector lacks {exc.args[0]!r}") from None
        det.meta = {k: v for k, v in meta.items() if k not in det.describe()}
        return det

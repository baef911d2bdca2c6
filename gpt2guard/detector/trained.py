"""Trained detectors on text: token statistics under one or more family sizes -> features -> classifier.

A :class:`TrainedDetector` scores each document under every scorer size it names (through
:class:`~gpt2guard.detector.scoring.Scorer`, optionally with a reference size per scorer),
turns each :class:`TokenStats` into :func:`~gpt2guard.detector.features.features`,
concatenates them with a ``<size>:`` prefix, adds the
:func:`~gpt2guard.detector.features.pair_features` of consecutive sizes, and hands the row
to a :class:`~gpt2guard.detector.estimators.FeatureDetector`.

Saved as a directory, never as a pickle:

``detector.json``
    kind, estimator parameters, feature names, scorer family/sizes/model hashes, the
    training data digest (SHA-256 over texts and labels), metrics, calibrated threshold,
    minimum tokens, classes.
``model.npz``
    the estimator's arrays (read with ``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np

from gpt2guard.detector.verdict import DEFAULT_MIN_TOKENS, Verdict, decide
from gpt2guard.errors import GuardError
from gpt2guard.paths import write_json

FORMAT_VERSION = 1
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
        if lab in (0, 1, False, True):
            out.append(int(lab))
        elif lab in LABELS:
            out.append(LABELS.index(lab))
        else:
            raise GuardError(f"label must be 'human', 'machine', 0 or 1, not {lab!r}")
    return np.asarray(out, dtype=np.int64)


class TrainedDetector:
    """A feature classifier over the token statistics of one or more scorer sizes.

    Parameters
    ----------
    estimator : FeatureDetector
        Fitted, or to be fitted by :meth:`fit`.
    family : str
        Scorer family (``micro``, ``nano``, ``gpt2`` or a model directory).
    sizes : sequence of str
        Scorer sizes; features of each are concatenated with a ``<size>:`` prefix.
    references : dict of str to str, optional
        A reference size (same family) per scorer size: that size is scored with it as
        :class:`~gpt2guard.detector.scoring.Scorer`'s reference, so its features add the
        cross terms and the reference methods (Binoculars, ``fast-detectgpt-ref``).
    min_tokens : int
        Documents with fewer scored tokens get an ``abstain`` verdict.
    threshold : float, optional
        Threshold on the score, the estimator's log-odds of machine (a document is machine
        when its score is strictly above it). Default 0 (probability 0.5) until
        :mod:`~gpt2guard.detector.calibrate` sets one. Log-odds, not probabilities, are
        thresholded because probabilities saturate at 0 and 1 in floating point, and a tie
        there would make a false-positive rate unreachable.
    scorer_kwargs : dict, optional
        Passed to :class:`~gpt2guard.detector.scoring.Scorer` (``cache``, ``max_tokens``...).
    device : str, optional
        Device to load scorers on.
    lexical : bool
        Also read the text itself: one more feature, the log-odds of a TF-IDF word 1-2-gram
        model (:class:`~gpt2guard.detector.tfidf.TfidfDetector`) stacked on the token
        statistics. In training that column is cross-fitted (each document scored by a
        TF-IDF model fitted on the other folds), so the estimator weighs it as it will
        behave on unseen text; the TF-IDF model fitted on all training text (``tfidf_``)
        gives it afterwards. Scoring then needs the texts, not only their statistics.
    """

    kind = "features"
    LEXICAL = "lexical:tfidf"

    def __init__(self, estimator, family: str, sizes, *, references: dict | None = None,
                 min_tokens: int = DEFAULT_MIN_TOKENS, threshold: float | None = None,
                 scorer_kwargs: dict | None = None, device: str | None = None, lexical: bool = False):
        if not sizes:
            raise GuardError("a trained detector needs at least one scorer size")
        self.estimator, self.family, self.sizes = estimator, family, list(sizes)
        self.references = {str(k): str(v) for k, v in (references or {}).items()}
        unknown = sorted(set(self.references) - set(self.sizes))
        if unknown:
            raise GuardError(f"references named for sizes the detector does not score with: {', '.join(unknown)}")
        self.min_tokens, self.threshold = int(min_tokens), threshold
        self.scorer_kwargs, self.device = dict(scorer_kwargs or {}), device
        self.lexical = bool(lexical)
        self.tfidf_ = None
        self.feature_names: list[str] | None = None
        self.model_hashes: dict[str, str] = {}
        self.meta: dict = {}
        self._scorers: dict = {}
        self._models: dict = {}

    # --- scoring ---------------------------------------------------------------------------

    def _load(self, size: str):
        """One size's model, loaded once (a size may be a scorer and another size's reference)."""
        from gpt2guard.family import load_model

        if size in self._models:
            return self._models[size]
        loaded = load_model(self.family, size, device=self.device)
        expected = self.model_hashes.get(size)
        if expected and expected != loaded.model_hash:
            raise GuardError(f"scorer {self.family} {size} has weights {loaded.model_hash[:12]} but the detector "
                             f"was trained with {expected[:12]}: retrain or use the original weights")
        self.model_hashes[size] = loaded.model_hash
        self._models[size] = loaded
        return loaded

    def scorer(self, size: str):
        """The :class:`Scorer` of one size (with its reference, if one is named), loaded on
        first use (model hashes are checked against the saved ones)."""
        if size not in self._scorers:
            from gpt2guard.detector.scoring import Scorer

            ref = self.references.get(size)
            self._scorers[size] = Scorer(self._load(size), self._load(ref) if ref else None, **self.scorer_kwargs)
        return self._scorers[size]

    def token_stats(self, texts) -> dict[str, list]:
        """``{size: [TokenStats, ...]}`` for every scorer size."""
        texts = list(texts)
        return {size: self.scorer(size).score(texts) for size in self.sizes}

    def feature_matrix(self, stats_by_size: dict[str, list], texts=None, *, lexical_column=None) -> np.ndarray:
        """Concatenated, prefixed feature matrix of :meth:`token_stats` output, in
        :attr:`feature_names` order (set on the first call).

        Each size's :func:`~gpt2guard.detector.features.features` come prefixed
        ``<size>:``, then for each consecutive pair of sizes the
        :func:`~gpt2guard.detector.features.pair_features` prefixed ``<a>><b>:``, then for
        a ``lexical`` detector the TF-IDF log-odds of ``texts`` (``lexical_column`` instead
        while training).
        """
        from gpt2guard.detector.features import feature_matrix, pair_feature_matrix, pair_feature_names

        blocks, names = [], []
        for size in self.sizes:
            X, cols = feature_matrix(stats_by_size[size])
            blocks.append(X)
            names += [f"{size}:{c}" for c in cols]
        for a, b in zip(self.sizes, self.sizes[1:]):
            blocks.append(pair_feature_matrix(stats_by_size[a], stats_by_size[b]))
            names += [f"{a}>{b}:{c}" for c in pair_feature_names()]
        X = np.hstack(blocks) if blocks else np.zeros((0, 0))
        if self.feature_names is None:
            self.feature_names = names + ([self.LEXICAL] if self.lexical else [])
        known = [n for n in self.feature_names if n != self.LEXICAL]
        if names != known:
            index = {n: i for i, n in enumerate(names)}
            X = np.column_stack([X[:, index[n]] if n in index else np.full(len(X), math.nan) for n in known])
        if self.lexical:
            X = np.column_stack([X, self._lexical(texts) if lexical_column is None else lexical_column])
        return X

    def _lexical(self, texts) -> np.ndarray:
        """The TF-IDF log-odds column of a lexical detector."""
        if texts is None:
            raise GuardError("this detector also reads the text (trained with lexical features): pass the texts")
        if self.tfidf_ is None:
            raise GuardError("the detector's TF-IDF part is not fitted")
        texts = list(texts)
        return self.tfidf_.decision_function(texts) if texts else np.zeros(0)

    def _cross_fitted_lexical(self, texts: list, y: np.ndarray) -> np.ndarray:
        """Each training document's TF-IDF log-odds from a model fitted on the other folds."""
        from sklearn.model_selection import StratifiedKFold

        from gpt2guard.detector.tfidf import TfidfDetector

        folds = int(min(5, np.bincount(y, minlength=2).min()))
        if folds < 2:
            raise GuardError("lexical features need at least 2 human and 2 machine training documents")
        seed = getattr(self.estimator, "random_state", None)
        out = np.zeros(len(texts))
        for fit_idx, held_idx in StratifiedKFold(folds, shuffle=True, random_state=seed or 0).split(texts, y):
            part = TfidfDetector().fit([texts[i] for i in fit_idx], y[fit_idx])
            out[held_idx] = part.decision_function([texts[i] for i in held_idx])
        return out

    # --- training and prediction ------------------------------------------------------------

    def fit(self, texts, labels, *, stats_by_size=None) -> "TrainedDetector":
        """Score ``texts`` (unless ``stats_by_size`` is given) and fit the estimator.

        Unscorable documents (empty, binary) are left out of training.
        """
        texts, y = list(texts), label_array(labels)
        stats_by_size = stats_by_size or self.token_stats(texts)
        column = None
        if self.lexical:
            from gpt2guard.detector.tfidf import TfidfDetector

            column = self._cross_fitted_lexical(texts, y)
            self.tfidf_ = TfidfDetector().fit(texts, y)
        X = self.feature_matrix(stats_by_size, texts, lexical_column=column)
        keep = np.array([s.scorable for s in stats_by_size[self.sizes[0]]], dtype=bool)
        if len(set(y[keep].tolist())) < 2:
            raise GuardError("training needs scorable human and machine documents")
        self.estimator.fit(X[keep], y[keep])
        self.meta.update(train_digest=data_digest(texts, y.tolist()), n_train=int(keep.sum()),
                         n_train_machine=int(y[keep].sum()))
        if getattr(self.estimator, "C_", None) is not None:  # the C a cross-validated logistic regression chose
            self.meta["fitted_C"] = float(self.estimator.C_)
        return self

    def logit_from_stats(self, stats_by_size, texts=None) -> np.ndarray:
        """Log-odds of machine per document (NaN where unscorable): the verdicts' score.
        A ``lexical`` detector also needs the ``texts``."""
        X = self.feature_matrix(stats_by_size, texts)
        z = self.estimator.decision_function(X) if len(X) else np.zeros(0)
        scorable = np.array([s.scorable for s in stats_by_size[self.sizes[0]]], dtype=bool)
        return np.where(scorable, z, math.nan)

    def proba_from_stats(self, stats_by_size, texts=None) -> np.ndarray:
        """Machine probability per document (NaN where unscorable)."""
        X = self.feature_matrix(stats_by_size, texts)
        p = self.estimator.predict_proba(X)[:, 1] if len(X) else np.zeros(0)
        scorable = np.array([s.scorable for s in stats_by_size[self.sizes[0]]], dtype=bool)
        return np.where(scorable, p, math.nan)

    def decision_texts(self, texts) -> np.ndarray:
        """Log-odds of machine per text (NaN where unscorable)."""
        texts = list(texts)
        return self.logit_from_stats(self.token_stats(texts), texts)

    def predict_proba_texts(self, texts) -> np.ndarray:
        """Machine probability per text (NaN where unscorable)."""
        texts = list(texts)
        return self.proba_from_stats(self.token_stats(texts), texts)

    def verdicts(self, texts, names=None) -> list[Verdict]:
        """Score texts and decide machine / human / abstain for each (see :func:`decide`)."""
        texts = list(texts)
        stats = self.token_stats(texts)
        from gpt2guard.detector.calibrate import apply_probability_calibration

        probs = self.logit_from_stats(stats, texts)  # scores: log-odds
        shown = apply_probability_calibration(self.meta, probs)
        first = stats[self.sizes[0]]
        threshold = 0.0 if self.threshold is None else self.threshold
        q_threshold = float(apply_probability_calibration(self.meta, [threshold])[0])  # the same threshold, as a probability
        return [decide(i, (names or [None] * len(texts))[i], float(p), float(q), threshold, s.n_tokens, s.n_windows,
                       s.flags, self.min_tokens, method=f"trained-{self.estimator.kind}",
                       scorer=f"{self.family}:{','.join(self.sizes)}", probability_threshold=q_threshold,
                       repairs=s.repairs)
                for i, (p, q, s) in enumerate(zip(probs, shown, first))]

    # --- storage ---------------------------------------------------------------------------

    def describe(self) -> dict:
        """The ``detector.json`` content."""
        return {"format": FORMAT_VERSION, "kind": self.kind, "estimator": self.estimator.get_params(),
                "feature_names": self.feature_names, "family": self.family, "sizes": self.sizes,
                "references": self.references, "model_hashes": self.model_hashes,
                "classes": [str(c) for c in self.estimator.classes_], "labels": list(LABELS),
                "threshold": self.threshold, "min_tokens": self.min_tokens, **self._lexical_meta(), **self.meta}

    def _lexical_meta(self) -> dict:
        if not self.lexical:
            return {}
        tf = self.tfidf_
        return {"lexical": True, "tfidf": None if tf is None else {"estimator": tf.describe()["estimator"],
                                                                   "vocabulary": tf.vocabulary}}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``detector.json`` and ``model.npz`` into ``directory`` (created)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = dict(self.estimator.to_arrays())
        if self.tfidf_ is not None:
            arrays.update({"tfidf_idf": self.tfidf_.idf, "tfidf_coef": self.tfidf_.coef,
                           "tfidf_intercept": np.array([self.tfidf_.intercept])})
        save_npz(directory / "model.npz", arrays)
        write_json(directory / "detector.json", self.describe())
        return directory

    @classmethod
    def from_saved(cls, meta: dict, arrays, **kwargs) -> "TrainedDetector":
        from gpt2guard.detector.estimators import FeatureDetector

        est = FeatureDetector.from_arrays(meta["estimator"], arrays)
        det = cls(est, meta["family"], meta["sizes"], references=meta.get("references"),
                  min_tokens=meta.get("min_tokens", DEFAULT_MIN_TOKENS), threshold=meta.get("threshold"),
                  lexical=bool(meta.get("lexical")), **kwargs)
        if det.lexical:
            from gpt2guard.detector.tfidf import TfidfDetector

            saved = meta.get("tfidf") or {}
            det.tfidf_ = TfidfDetector.from_saved(
                {"estimator": saved.get("estimator"), "vocabulary": saved.get("vocabulary") or {}},
                {k[len("tfidf_"):]: v for k, v in arrays.items() if k.startswith("tfidf_")})
        det.feature_names = list(meta["feature_names"])
        det.model_hashes = dict(meta.get("model_hashes") or {})
        det.meta = {k: v for k, v in meta.items() if k not in det.describe()}
        return det


def save_npz(path: Path, arrays: dict) -> None:
    """Write numeric/unicode arrays atomically as ``.npz``; refuses object arrays."""
    import io

    for name, arr in arrays.items():
        if np.asarray(arr).dtype == object:
            raise GuardError(f"array {name!r} holds Python objects and would need a pickle")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def read_meta(directory: str | os.PathLike) -> dict:
    """``detector.json`` of a saved detector directory (GuardError if missing or unreadable)."""
    path = Path(directory) / "detector.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GuardError(f"{directory} is not a saved detector (no detector.json)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise GuardError(f"{path} is not valid JSON: {exc}") from None
    if meta.get("format") != FORMAT_VERSION:
        raise GuardError(f"{path} has format {meta.get('format')!r}; this gpt2guard reads {FORMAT_VERSION}")
    return meta


def update_meta(directory: str | os.PathLike, **changes) -> dict:
    """Merge ``changes`` into a saved detector's ``detector.json``."""
    meta = read_meta(directory)
    meta.update(changes)
    write_json(Path(directory) / "detector.json", meta)
    return meta


def load_detector(directory: str | os.PathLike, **kwargs):
    """Load a saved :class:`TrainedDetector` or :class:`~gpt2guard.detector.tfidf.TfidfDetector`."""
    meta = read_meta(directory)
    try:
        with np.load(Path(directory) / "model.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise GuardError(f"{directory} has no model.npz") from None
    except ValueError as exc:
        raise GuardError(f"{directory}/model.npz cannot be read without pickles: {exc}") from None
    if meta.get("kind") == "features":
        return TrainedDetector.from_saved(meta, arrays, **kwargs)
    if meta.get("kind") == "tfidf":
        from gpt2guard.detector.tfidf import TfidfDetector

        return TfidfDetector.from_saved(meta, arrays)
    raise GuardError(f"{directory}: unknown detector kind {meta.get('kind')!r}")

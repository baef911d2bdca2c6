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

import json
import math
import os
from pathlib import Path

import numpy as np

from gpt2guard.detector.text_estimator import (LABELS, TextDetector, as_texts, data_digest,  # noqa: F401
                                               json_class_weight, label_array)
from gpt2guard.detector.verdict import DEFAULT_MIN_TOKENS, Verdict, decide
from gpt2guard.errors import GuardError
from gpt2guard.paths import write_json

FORMAT_VERSION = 1


class TrainedDetector(TextDetector):
    """A feature classifier over the token statistics of one or more scorer sizes, and a
    scikit-learn classifier on texts (``clone``, ``cross_val_score``, ``GridSearchCV``).

    Parameters
    ----------
    estimator : classifier, optional
        The classifier of the feature rows, cloned by :meth:`fit` into ``estimator_``; only
        a :class:`~gpt2guard.detector.estimators.FeatureDetector` can be saved. Default
        ``FeatureDetector("logistic", cv=5)``.
    family : str, optional
        Scorer family (``micro``, ``nano``, ``gpt2`` or a model directory). Default: the
        family of ``model``, else ``nano``.
    sizes : sequence of str, optional
        Scorer sizes; features of each are concatenated with a ``<size>:`` prefix. Default:
        the sizes of ``model``, else the family's smallest.
    model : LoadedModel or dict of str to LoadedModel, optional
        Already loaded scorer model(s) (from :func:`gpt2guard.family.load_model`, or
        :func:`gpt2guard.detector.wrap_model` for a model built in memory), by size: used
        instead of loading those sizes. Shared, not copied, by ``clone``.
    references : dict of str to str, optional
        A reference size (same family) per scorer size: that size is scored with it as
        :class:`~gpt2guard.detector.scoring.Scorer`'s reference, so its features add the
        cross terms and the reference methods (Binoculars, ``fast-detectgpt-ref``).
    class_weight : dict, "balanced" or None
        Weight of each class (keys: ``"human"``/``"machine"`` or 0/1) in training,
        multiplied into ``sample_weight``.
    min_tokens : int
        Documents with fewer scored tokens get an ``abstain`` verdict.
    threshold : float, optional
        Threshold on the score, the estimator's log-odds of machine (a document is machine
        when its score is strictly above it). Default 0 (probability 0.5) until
        :meth:`calibrate` sets one. Log-odds, not probabilities, are thresholded because
        probabilities saturate at 0 and 1 in floating point, and a tie there would make a
        false-positive rate unreachable.
    scorer_kwargs : dict, optional
        Passed to :class:`~gpt2guard.detector.scoring.Scorer` (``cache``, ``max_tokens``,
        ``progress``...); ``engine`` picks where it scores (:func:`~gpt2guard.engine.make_scorer`).
    device : str, optional
        Device to load scorers on.
    lexical : bool
        Also read the text itself: one more feature, the log-odds of a TF-IDF word 1-2-gram
        model (:class:`~gpt2guard.detector.tfidf.TfidfDetector`) stacked on the token
        statistics. In training that column is cross-fitted (each document scored by a
        TF-IDF model fitted on the other folds), so the estimator weighs it as it will
        behave on unseen text; the TF-IDF model fitted on all training text (``tfidf_``)
        gives it afterwards. Scoring then needs the texts, not only their statistics.

    Attributes
    ----------
    classes_ : ndarray
        ``["human", "machine"]`` or ``[0, 1]``, as the training labels were given.
    estimator_ : FeatureDetector
        The fitted classifier of the feature rows.
    feature_names : list of str
    model_hashes : dict of str to str
        Weights hash of each scorer size; checked when a saved detector loads its scorers.
    tfidf_ : TfidfDetector or None
    calibration_ : Calibration
        Set by :meth:`calibrate`.
    """

    kind = "features"
    LEXICAL = "lexical:tfidf"

    def __init__(self, estimator=None, family: str | None = None, sizes=None, *, model=None,
                 references: dict | None = None, class_weight=None, min_tokens: int = DEFAULT_MIN_TOKENS,
                 threshold: float | None = None, scorer_kwargs: dict | None = None, device: str | None = None,
                 lexical: bool = False):
        self.estimator = estimator
        self.family = family
        self.sizes = sizes
        self.model = model
        self.references = references
        self.class_weight = class_weight
        self.min_tokens = min_tokens
        self.threshold = threshold
        self.scorer_kwargs = scorer_kwargs
        self.device = device
        self.lexical = lexical

    def __sklearn_clone__(self):
        """A clone shares the loaded ``model`` (read-only weights) instead of deep-copying it."""
        from sklearn.base import clone

        params = self.get_params(deep=False)
        return type(self)(**{k: (v if k == "model" else clone(v, safe=False)) for k, v in params.items()})

    # --- parameters, resolved ----------------------------------------------------------------

    def _state(self, name: str, default):
        """Private per-instance state created on first use (``__init__`` stores parameters only)."""
        return self.__dict__.setdefault(name, default)

    def _given_models(self) -> dict:
        from gpt2guard.family.load import LoadedModel

        m = self.model
        if m is None:
            return {}
        if isinstance(m, LoadedModel):
            return {m.size: m}
        if isinstance(m, dict) and all(isinstance(v, LoadedModel) for v in m.values()):
            return {str(k): v for k, v in m.items()}
        raise GuardError("model must be a LoadedModel (gpt2guard.load_model, or gpt2guard.detector.wrap_model for "
                         f"a model in memory) or a dict of them by size, not {type(m).__name__}")

    @property
    def family_name(self) -> str:
        """The scorer family: ``family``, else that of ``model``, else ``nano``."""
        if self.family is not None:
            return str(self.family)
        given = self._given_models()
        return next(iter(given.values())).family if given else "nano"

    @property
    def size_list(self) -> list[str]:
        """The scorer sizes in order (see ``sizes``)."""
        if self.sizes is not None:
            sizes = [self.sizes] if isinstance(self.sizes, str) else [str(z) for z in self.sizes]
        else:
            sizes = list(self._given_models())
            if not sizes:
                from gpt2guard.family import get_family

                sizes = [get_family(self.family_name).sizes[0].name]
        if not sizes:
            raise GuardError("a trained detector needs at least one scorer size")
        return sizes

    @property
    def reference_map(self) -> dict[str, str]:
        """``references`` as ``{size: reference size}``, checked against the scorer sizes."""
        refs = {str(k): str(v) for k, v in (self.references or {}).items()}
        unknown = sorted(set(refs) - set(self.size_list))
        if unknown:
            raise GuardError(f"references named for sizes the detector does not score with: {', '.join(unknown)}")
        return refs

    @property
    def feature_names(self) -> list[str] | None:
        """Column names of :meth:`feature_matrix` (set by the first call, or by :meth:`fit`)."""
        return self.__dict__.get("feature_names_")

    @feature_names.setter
    def feature_names(self, names) -> None:
        self.feature_names_ = None if names is None else list(names)

    @property
    def model_hashes(self) -> dict[str, str]:
        """Weights hash of each scorer size (filled as scorers load; checked against saved ones)."""
        return self._state("_model_hashes", {})

    @model_hashes.setter
    def model_hashes(self, value: dict) -> None:
        self._model_hashes = dict(value)

    def _estimator_kind(self) -> str:
        est = getattr(self, "estimator_", None) or self.estimator
        if est is None:
            return "logistic"
        return getattr(est, "kind", None) or type(est).__name__.lower()

    # --- scoring ---------------------------------------------------------------------------

    def _load(self, size: str):
        """One size's model, loaded once (a size may be a scorer and another size's reference)."""
        models = self._state("_models", {})
        if size in models:
            return models[size]
        given = self._given_models()
        if size in given:
            loaded = given[size]
        else:
            from gpt2guard.family import load_model

            loaded = load_model(self.family_name, size, device=self.device)
        expected = self.model_hashes.get(size)
        if expected and expected != loaded.model_hash:
            raise GuardError(f"scorer {self.family_name} {size} has weights {loaded.model_hash[:12]} but the detector "
                             f"was trained with {expected[:12]}: retrain or use the original weights")
        self.model_hashes[size] = loaded.model_hash
        models[size] = loaded
        return loaded

    def scorer(self, size: str):
        """The :class:`Scorer` of one size (with its reference, if one is named), loaded on
        first use (model hashes are checked against the saved ones)."""
        scorers = self._state("_scorers", {})
        if size not in scorers:
            from gpt2guard.engine import make_scorer

            ref = self.reference_map.get(size)
            scorers[size] = make_scorer(self._load(size), self._load(ref) if ref else None,
                                        **(self.scorer_kwargs or {}))
        return scorers[size]

    def token_stats(self, texts) -> dict[str, list]:
        """``{size: [TokenStats, ...]}`` for every scorer size."""
        texts = list(texts)
        return {size: self.scorer(size).score(texts) for size in self.size_list}

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

        sizes = self.size_list
        blocks, names = [], []
        for size in sizes:
            X, cols = feature_matrix(stats_by_size[size])
            blocks.append(X)
            names += [f"{size}:{c}" for c in cols]
        for a, b in zip(sizes, sizes[1:]):
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
        if getattr(self, "tfidf_", None) is None:
            raise GuardError("the detector's TF-IDF part is not fitted")
        texts = list(texts)
        return self.tfidf_.raw_decision(texts) if texts else np.zeros(0)

    def _cross_fitted_lexical(self, texts: list, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """Each training document's TF-IDF log-odds from a model fitted on the other folds."""
        from sklearn.model_selection import StratifiedKFold

        from gpt2guard.detector.tfidf import TfidfDetector

        folds = int(min(5, np.bincount(y, minlength=2).min()))
        if folds < 2:
            raise GuardError("lexical features need at least 2 human and 2 machine training documents")
        seed = getattr(self.estimator, "random_state", None)
        out = np.zeros(len(texts))
        for fit_idx, held_idx in StratifiedKFold(folds, shuffle=True, random_state=seed or 0).split(texts, y):
            part = TfidfDetector().fit([texts[i] for i in fit_idx], y[fit_idx],
                                       sample_weight=None if w is None else w[fit_idx])
            out[held_idx] = part.raw_decision([texts[i] for i in held_idx])
        return out

    # --- training and prediction ------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, stats_by_size=None) -> "TrainedDetector":
        """Score the texts ``X`` (unless ``stats_by_size`` is given) and fit the estimator on
        labels ``y`` (``"human"``/``"machine"`` or 0/1), each document weighted by
        ``sample_weight`` times ``class_weight``.

        Unscorable documents (empty, binary) are left out of training.
        """
        from sklearn.base import clone

        from gpt2guard.detector.estimators import FeatureDetector

        texts, y, w = self._fit_inputs(X, y, sample_weight)
        sizes, _ = self.size_list, self.reference_map  # parameters checked before any scoring
        self.feature_names = None
        stats_by_size = stats_by_size or self.token_stats(texts)
        missing = [z for z in sizes if z not in stats_by_size or len(stats_by_size[z]) != len(texts)]
        if missing:
            raise GuardError(f"stats_by_size needs one TokenStats per text for every scorer size; not for {missing}")
        column = None
        self.tfidf_ = None
        if self.lexical:
            from gpt2guard.detector.tfidf import TfidfDetector

            column = self._cross_fitted_lexical(texts, y, w)
            self.tfidf_ = TfidfDetector().fit(texts, y, sample_weight=w)
        Xf = self.feature_matrix(stats_by_size, texts, lexical_column=column)
        keep = np.array([s.scorable for s in stats_by_size[sizes[0]]], dtype=bool)
        if len(set(y[keep].tolist())) < 2:
            raise GuardError("training needs scorable human and machine documents")
        est = clone(self.estimator) if self.estimator is not None else FeatureDetector("logistic", cv=5)
        if w is None:
            est.fit(Xf[keep], y[keep])
        else:
            est.fit(Xf[keep], y[keep], sample_weight=w[keep])
        self.estimator_ = est
        self.meta = {"train_digest": data_digest(texts, y.tolist()), "n_train": int(keep.sum()),
                     "n_train_machine": int(y[keep].sum())}
        if getattr(est, "C_", None) is not None:  # the C a cross-validated logistic regression chose
            self.meta["fitted_C"] = float(est.C_)
        return self

    def _fitted_estimator(self):
        est = getattr(self, "estimator_", None)
        if est is None:
            raise GuardError("this TrainedDetector is not fitted: call fit(texts, labels) first")
        return est

    def logit_from_stats(self, stats_by_size, texts=None) -> np.ndarray:
        """Log-odds of machine per document (NaN where unscorable): the verdicts' score.
        A ``lexical`` detector also needs the ``texts``."""
        est = self._fitted_estimator()
        X = self.feature_matrix(stats_by_size, texts)
        z = est.decision_function(X) if len(X) else np.zeros(0)
        scorable = np.array([s.scorable for s in stats_by_size[self.size_list[0]]], dtype=bool)
        return np.where(scorable, z, math.nan)

    def proba_from_stats(self, stats_by_size, texts=None) -> np.ndarray:
        """Machine probability per document (NaN where unscorable)."""
        est = self._fitted_estimator()
        X = self.feature_matrix(stats_by_size, texts)
        p = est.predict_proba(X)[:, 1] if len(X) else np.zeros(0)
        scorable = np.array([s.scorable for s in stats_by_size[self.size_list[0]]], dtype=bool)
        return np.where(scorable, p, math.nan)

    def decision_function(self, X) -> np.ndarray:
        """Log-odds of machine per text (NaN where unscorable)."""
        texts = as_texts(X)
        return self.logit_from_stats(self.token_stats(texts), texts)

    decision_texts = decision_function

    def predict_proba_texts(self, texts) -> np.ndarray:
        """Machine probability per text (NaN where unscorable)."""
        texts = as_texts(texts)
        return self.proba_from_stats(self.token_stats(texts), texts)

    def verdicts(self, texts, names=None, stats=None) -> list[Verdict]:
        """Score texts and decide machine / human / abstain for each (see :func:`decide`);
        ``stats`` are :meth:`token_stats` of the texts when already computed."""
        texts = list(texts)
        stats = stats if stats is not None else self.token_stats(texts)
        from gpt2guard.detector.calibrate import apply_probability_calibration

        probs = self.logit_from_stats(stats, texts)  # scores: log-odds
        shown = apply_probability_calibration(self.meta, probs)
        first = stats[self.size_list[0]]
        threshold = 0.0 if self.threshold is None else self.threshold
        q_threshold = float(apply_probability_calibration(self.meta, [threshold])[0])  # the same threshold, as a probability
        return [decide(i, (names or [None] * len(texts))[i], float(p), float(q), threshold, s.n_tokens, s.n_windows,
                       s.flags, int(self.min_tokens), method=f"trained-{self._estimator_kind()}",
                       scorer=f"{self.family_name}:{','.join(self.size_list)}", probability_threshold=q_threshold,
                       repairs=s.repairs)
                for i, (p, q, s) in enumerate(zip(probs, shown, first))]

    # --- storage ---------------------------------------------------------------------------

    def describe(self) -> dict:
        """The ``detector.json`` content."""
        est = self._fitted_estimator()
        return {"format": FORMAT_VERSION, "kind": self.kind, "estimator": est.get_params(),
                "feature_names": self.feature_names, "family": self.family_name, "sizes": self.size_list,
                "references": self.reference_map, "model_hashes": self.model_hashes,
                "classes": [str(c) for c in est.classes_], "labels": list(LABELS),
                "label_classes": np.asarray(getattr(self, "classes_", LABELS)).tolist(),
                "class_weight": json_class_weight(self.class_weight), "threshold": self.threshold,
                "min_tokens": int(self.min_tokens), **self._lexical_meta(), **self.meta}

    def _lexical_meta(self) -> dict:
        if not self.lexical:
            return {}
        tf = getattr(self, "tfidf_", None)
        return {"lexical": True, "tfidf": None if tf is None else {"estimator": tf.describe()["estimator"],
                                                                   "vocabulary": tf.vocabulary_}}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``detector.json`` and ``model.npz`` into ``directory`` (created)."""
        est = self._fitted_estimator()
        if not hasattr(est, "to_arrays"):
            raise GuardError(f"only a FeatureDetector estimator can be saved without pickles, not {type(est).__name__}")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = dict(est.to_arrays())
        tf = getattr(self, "tfidf_", None)
        if tf is not None:
            arrays.update({"tfidf_idf": tf.idf_, "tfidf_coef": tf.coef_, "tfidf_intercept": np.array([tf.intercept_])})
        save_npz(directory / "model.npz", arrays)
        write_json(directory / "detector.json", self.describe())
        return directory

    @classmethod
    def from_saved(cls, meta: dict, arrays, **kwargs) -> "TrainedDetector":
        """Rebuild a saved detector; ``kwargs`` are parameters (``model``, ``scorer_kwargs``,
        ``device``...)."""
        from gpt2guard.detector.estimators import FeatureDetector

        try:
            est = FeatureDetector.from_arrays(meta["estimator"], arrays)
            det = cls(FeatureDetector(**meta["estimator"]), meta["family"], list(meta["sizes"]),
                      references=meta.get("references") or None, class_weight=meta.get("class_weight"),
                      min_tokens=meta.get("min_tokens", DEFAULT_MIN_TOKENS), threshold=meta.get("threshold"),
                      lexical=bool(meta.get("lexical")), **kwargs)
        except TypeError as exc:  # parameters this FeatureDetector does not take
            raise GuardError(f"saved detector's estimator parameters do not fit: {exc}") from None
        det.estimator_ = est
        det.classes_ = np.array(meta.get("label_classes") or LABELS)
        det.tfidf_ = None
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
    if not isinstance(meta, dict):
        raise GuardError(f"{path} is not a detector description (a JSON object)")
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
    """Load a saved :class:`TrainedDetector`, :class:`~gpt2guard.detector.tfidf.TfidfDetector` or
    :class:`~gpt2guard.detector.finetune.FinetunedDetector`."""
    import zipfile
    import zlib

    meta = read_meta(directory)
    if meta.get("kind") == "finetune":
        from gpt2guard.detector.finetune import FinetunedDetector

        return FinetunedDetector.load(directory, meta, **kwargs)
    if meta.get("kind") not in ("features", "tfidf"):
        raise GuardError(f"{directory}: unknown detector kind {meta.get('kind')!r}")
    check_meta(meta, Path(directory) / "detector.json")
    path = Path(directory) / "model.npz"
    try:
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise GuardError(f"{path} is a single array, not the archive of a saved detector")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise GuardError(f"{directory} has no model.npz") from None
    except (ValueError, EOFError, OSError, zipfile.BadZipFile, zlib.error) as exc:
        reason = "it is empty" if path.is_file() and path.stat().st_size == 0 else str(exc).splitlines()[0]
        raise GuardError(f"{path} is damaged or not a NumPy .npz archive without pickles ({reason})") from None
    if meta["kind"] == "features":
        det = TrainedDetector.from_saved(meta, arrays, **kwargs)
    else:
        from gpt2guard.detector.tfidf import TfidfDetector

        det = TfidfDetector.from_saved(meta, arrays)
    check_arrays(det, path)
    return det


def _bad(path, what: str):
    return GuardError(f"{path} is damaged: {what}; retrain the detector (`gpt2guard detector train`)")


def check_meta(meta: dict, path) -> None:
    """Refuse a ``detector.json`` whose fields have the wrong types (a damaged or hand-edited file)."""
    def need(key, types, name, optional=False):
        if key not in meta and optional:
            return
        if key not in meta:
            raise _bad(path, f"no {key!r}")
        v = meta[key]
        if not isinstance(v, types) or isinstance(v, bool) and bool not in (types if isinstance(types, tuple)
                                                                             else (types,)):
            raise _bad(path, f"{key!r} is {type(v).__name__}, not {name}")

    need("estimator", dict, "an object", optional=meta["kind"] == "tfidf")
    need("min_tokens", int, "an integer", optional=True)
    need("threshold", (int, float, type(None)), "a number", optional=True)
    t = meta.get("threshold")
    if t is not None and not math.isfinite(t):
        raise _bad(path, f"threshold {t!r} is not a finite number")
    if meta["kind"] == "features":
        need("family", str, "a string")
        need("sizes", list, "a list")
        need("feature_names", list, "a list")
        need("references", (dict, type(None)), "an object", optional=True)
        need("model_hashes", (dict, type(None)), "an object", optional=True)
        if not meta["sizes"] or not all(isinstance(z, str) for z in meta["sizes"]):
            raise _bad(path, "'sizes' must be a non-empty list of size names")
        if not all(isinstance(z, str) for z in meta["feature_names"]):
            raise _bad(path, "'feature_names' must be a list of strings")
        if meta.get("lexical"):
            need("tfidf", dict, "an object")
    else:
        need("vocabulary", dict, "an object")
    vocab = meta.get("vocabulary") if meta["kind"] == "tfidf" else (meta.get("tfidf") or {}).get("vocabulary")
    if vocab is not None and (not isinstance(vocab, dict) or not all(
            isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in vocab.values())):
        raise _bad(path, "the TF-IDF vocabulary must map words to column numbers")


def check_arrays(det, path) -> None:
    """Refuse arrays whose shapes do not fit together (a damaged ``model.npz``)."""
    tf = det if det.kind == "tfidf" else det.tfidf_
    if tf is not None:
        n = len(tf.vocabulary_ or {})
        if tf.idf_.ndim != 1 or tf.coef_.ndim != 1 or not len(tf.idf_) == len(tf.coef_) == n or (
                n and max(tf.vocabulary_.values()) >= n):
            raise _bad(path, f"TF-IDF arrays of {tf.idf_.shape} and {tf.coef_.shape} for a vocabulary of {n}")
    if det.kind != "features":
        return
    est, n = det.estimator_, len(det.feature_names)
    a = est.arrays_
    if est.fill_.shape != (n,):
        raise _bad(path, f"{n} features but {est.fill_.shape} fill values")
    if est.kind == "logistic":
        for key in ("mean", "scale", "coef"):
            if key not in a or a[key].shape != (n,):
                raise _bad(path, f"logistic array {key!r} does not have {n} entries")
        if "intercept" not in a or a["intercept"].size < 1:
            raise _bad(path, "no logistic intercept")
    elif est.kind == "boosting":
        keys = ("left", "right", "feature", "threshold", "value", "offsets", "init", "learning_rate")
        if any(k not in a or a[k].ndim != 1 for k in keys):
            raise _bad(path, "boosting arrays missing or not one-dimensional")
        m, off = len(a["left"]), a["offsets"]
        if any(len(a[k]) != m for k in ("right", "feature", "threshold", "value")) or len(off) < 1 or \
                off[0] != 0 or off[-1] != m or np.any(np.diff(off) <= 0) or not (a["init"].size and a[
                    "learning_rate"].size):
            raise _bad(path, "boosting tree arrays do not fit together")
        for start, stop in zip(off[:-1], off[1:]):
            local = np.arange(stop - start)
            left, right = a["left"][start:stop], a["right"][start:stop]
            inner = left != -1
            # every child comes after its parent and inside its tree, so a walk always ends at a leaf
            if np.any(inner & ((left <= local) | (right <= local) | (left >= stop - start) | (right >= stop - start))) \
                    or np.any(inner & ((a["feature"][start:stop] < 0) | (a["feature"][start:stop] >= n))):
                raise _bad(path, "a boosting tree's nodes do not form a tree")
    else:
        raise _bad(path, f"unknown estimator kind {est.kind!r}")

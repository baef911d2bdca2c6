"""A scikit-learn classifier on feature matrices whose fitted state is plain numpy arrays.

:class:`FeatureDetector` trains with scikit-learn (a ``StandardScaler`` + ``LogisticRegression``
pipeline, or a ``GradientBoostingClassifier``) and then keeps only arrays: the scaler's
mean and scale with the linear coefficients, or every regression tree's
``children_left``/``children_right``/``feature``/``threshold``/``value`` arrays. Prediction
evaluates those arrays with numpy, both right after fitting and after loading, so a saved
detector (:meth:`FeatureDetector.to_arrays`, ``.npz`` without pickles) predicts exactly what
the fitted one did. Missing features (NaN) are filled with the training medians.

The estimator is binary: the second of the sorted ``classes_`` is the positive class
("machine" when labels are ``"human"``/``"machine"`` or 0/1).
"""

from __future__ import annotations

import numpy as np

from gpt2guard.errors import GuardError

# The one scikit-learn import at module level: the class must derive from its bases. Every
# other gpt2guard module imports this module inside functions, so the CLI and the package
# stay free of scikit-learn until a trained detector is used.
from sklearn.base import BaseEstimator, ClassifierMixin  # noqa: E402

KINDS = ("logistic", "boosting")


class FeatureDetector(ClassifierMixin, BaseEstimator):
    """Binary classifier on feature vectors, with a pickle-free fitted state.

    Parameters
    ----------
    kind : {"logistic", "boosting"}
        ``logistic``: standardise, then L2-regularised logistic regression.
        ``boosting``: gradient-boosted regression trees (log loss).
    C : float
        Inverse regularisation strength of the logistic regression (when ``cv`` is unset).
    cv : int, optional
        Logistic regression: choose ``C`` from ``Cs`` by stratified ``cv``-fold
        cross-validation on the training data (lowest mean held-out log loss; the scaler is
        fitted inside each fold), then fit on all of it. Fewer folds are used when a class
        has fewer than ``cv`` rows; with fewer than two, ``C`` is used. Also, as in
        scikit-learn, a splitter or an iterable of (train, test) index arrays.
    Cs : sequence of float, optional
        Candidate values of ``C`` for ``cv``; default 13 values from 1e-3 to 1e3, log-spaced.
    max_iter : int
        Iteration cap of the logistic regression solver.
    n_estimators, learning_rate, max_depth : int, float, int
        Gradient boosting: number of trees, shrinkage, tree depth.
    random_state : int or None
        Seed of the boosting's tie-breaking among features (logistic regression with the
        lbfgs solver is deterministic).
    class_weight : dict, "balanced" or None
        Weights of the classes (keys: the labels of ``y``), multiplied into ``sample_weight``
        as scikit-learn's ``compute_sample_weight`` gives them.

    Attributes
    ----------
    classes_ : ndarray, shape (2,)
    n_features_in_ : int
    n_iter_ : int
        Solver iterations (logistic) or trees fitted (boosting).
    C_ : float
        The ``C`` the logistic regression was fitted with (chosen by ``cv`` when set).
    cv_scores_ : dict of float to float
        With ``cv``: mean held-out log loss per candidate ``C``.
    fill_ : ndarray, shape (n_features,)
        Training medians used for missing values.
    arrays_ : dict of str to ndarray
        The fitted model (see the module docstring).
    """

    def __init__(self, kind="logistic", C=1.0, max_iter=1000, n_estimators=100, learning_rate=0.1, max_depth=3,
                 random_state=None, cv=None, Cs=None, class_weight=None):
        self.kind = kind
        self.C = C
        self.cv = cv
        self.Cs = Cs
        self.max_iter = max_iter
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.random_state = random_state
        self.class_weight = class_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags

    # --- fitting ---------------------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n_samples, n_features) and binary labels ``y``, each row weighted by
        ``sample_weight`` (times ``class_weight``); returns self."""
        from sklearn.utils.class_weight import compute_sample_weight
        from sklearn.utils.multiclass import check_classification_targets
        from sklearn.utils.validation import _check_sample_weight, validate_data

        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype=np.float64)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) > 2:
            raise ValueError(f"Only binary classification is supported. y has {len(classes)} classes.")
        if len(classes) < 2:
            raise ValueError("FeatureDetector needs two classes in y; got one class")
        self.classes_ = classes
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is not None:
            cw = compute_sample_weight(self.class_weight, y)
            sw = cw if sw is None else sw * cw
        with np.errstate(all="ignore"):
            fill = np.nanmedian(np.where(np.isnan(X).all(0, keepdims=True), 0.0, X), axis=0)
        self.fill_ = np.nan_to_num(fill, nan=0.0)
        Xf = self._filled(X)
        if self.kind == "logistic":
            self.arrays_ = self._fit_logistic(Xf, y_idx, sw)
        else:
            self.arrays_ = self._fit_boosting(Xf, y_idx, sw)
        return self

    def _choose_C(self, X, y, sw=None) -> float:
        """``C`` by stratified k-fold cross-validation on the training data (see ``cv``)."""
        from sklearn.metrics import log_loss
        from sklearn.model_selection import StratifiedKFold, check_cv

        Cs = [float(c) for c in (np.logspace(-3, 3, 13) if self.Cs is None else self.Cs)]
        self.cv_scores_ = {}
        if isinstance(self.cv, (int, np.integer)):
            folds = min(int(self.cv), int(np.bincount(y).min()))
            if folds < 2 or len(Cs) < 2:
                return Cs[0] if len(Cs) == 1 else float(self.C)
            split = list(StratifiedKFold(folds, shuffle=True, random_state=self.random_state or 0).split(X, y))
        else:
            if len(Cs) < 2:
                return Cs[0] if Cs else float(self.C)
            split = list(check_cv(self.cv, y, classifier=True).split(X, y))
        losses = {}
        for C in Cs:
            loss = []
            for tr, te in split:
                pipe = self._pipeline(C).fit(X[tr], y[tr], **self._weights(None if sw is None else sw[tr]))
                loss.append(log_loss(y[te], pipe.predict_proba(X[te])[:, 1], labels=[0, 1],
                                     sample_weight=None if sw is None else sw[te]))
            losses[C] = float(np.mean(loss))
        self.cv_scores_ = losses
        return min(Cs, key=lambda c: (losses[c], c))  # ties: the stronger regularisation

    def _pipeline(self, C):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=self.max_iter))

    @staticmethod
    def _weights(sw) -> dict:
        """``fit`` keywords routing sample weights to both steps of the pipeline."""
        return {} if sw is None else {"standardscaler__sample_weight": sw, "logisticregression__sample_weight": sw}

    def _fit_logistic(self, X, y, sw=None) -> dict:
        self.C_ = self._choose_C(X, y, sw) if self.cv else float(self.C)
        pipe = self._pipeline(self.C_)
        pipe.fit(X, y, **self._weights(sw))
        scaler, lr = pipe[0], pipe[-1]
        self.n_iter_ = int(lr.n_iter_[0])
        return {"mean": scaler.mean_.astype(np.float64), "scale": scaler.scale_.astype(np.float64),
                "coef": lr.coef_[0].astype(np.float64), "intercept": np.asarray(lr.intercept_, np.float64)}

    def _fit_boosting(self, X, y, sw=None) -> dict:
        from sklearn.ensemble import GradientBoostingClassifier

        gb = GradientBoostingClassifier(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                                        max_depth=self.max_depth, random_state=self.random_state)
        gb.fit(X, y, sample_weight=sw)
        self.n_iter_ = int(gb.n_estimators_)
        trees = [est[0].tree_ for est in gb.estimators_]
        offsets = np.cumsum([0] + [t.node_count for t in trees])
        p = float(np.clip(np.average(y, weights=sw), 1e-12, 1 - 1e-12))  # the default init estimator's prior
        return {"left": np.concatenate([t.children_left for t in trees]).astype(np.int64),
                "right": np.concatenate([t.children_right for t in trees]).astype(np.int64),
                "feature": np.concatenate([t.feature for t in trees]).astype(np.int64),
                "threshold": np.concatenate([t.threshold for t in trees]).astype(np.float64),
                "value": np.concatenate([t.value[:, 0, 0] for t in trees]).astype(np.float64),
                "offsets": offsets.astype(np.int64), "init": np.array([np.log(p / (1 - p))]),
                "learning_rate": np.array([float(self.learning_rate)])}

    # --- prediction ------------------------------------------------------------------------

    def _filled(self, X):
        X = np.array(X, dtype=np.float64, copy=True)
        rows, cols = np.nonzero(np.isnan(X))
        X[rows, cols] = self.fill_[cols]
        return X

    def _check(self, X):
        from sklearn.utils.validation import check_is_fitted, validate_data

        check_is_fitted(self, "arrays_")
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype=np.float64)
        return self._filled(X)

    def decision_function(self, X):
        """Log-odds of the positive class (``classes_[1]``): shape (n_samples,)."""
        X = self._check(X)
        a = self.arrays_
        if self.kind == "logistic":
            return ((X - a["mean"]) / a["scale"]) @ a["coef"] + a["intercept"][0]
        raw = np.full(X.shape[0], a["init"][0])
        rows = np.arange(X.shape[0])
        for start in a["offsets"][:-1]:
            node = np.full(X.shape[0], start, dtype=np.int64)
            while True:
                inner = a["left"][node] != -1
                if not inner.any():
                    break
                i = node[inner]
                go_left = X[rows[inner], a["feature"][i]] <= a["threshold"][i]
                node[inner] = np.where(go_left, a["left"][i], a["right"][i]) + start
            raw += a["learning_rate"][0] * a["value"][node]
        return raw

    def predict_proba(self, X):
        """Probabilities of ``classes_[0]`` and ``classes_[1]``: shape (n_samples, 2)."""
        z = self.decision_function(X)
        p1 = 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X):
        """The more probable class per row."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    # --- storage ---------------------------------------------------------------------------

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Fitted state as numeric/unicode arrays for ``np.savez`` (no objects)."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "arrays_")
        out = {f"model_{k}": v for k, v in self.arrays_.items()}
        out["fill"] = self.fill_
        out["n_iter"] = np.array(getattr(self, "n_iter_", 0), np.int64)
        out["classes"] = np.asarray(self.classes_)
        if out["classes"].dtype == object:
            out["classes"] = out["classes"].astype(str)
        return out

    @classmethod
    def from_arrays(cls, params: dict, arrays) -> "FeatureDetector":
        """Rebuild a fitted detector from :meth:`get_params` output and :meth:`to_arrays` arrays."""
        det = cls(**params)
        try:
            det.arrays_ = {k[len("model_"):]: np.asarray(arrays[k]) for k in arrays if k.startswith("model_")}
            det.fill_ = np.asarray(arrays["fill"], np.float64)
            det.classes_ = np.asarray(arrays["classes"])
        except KeyError as exc:
            raise GuardError(f"saved detector is missing the array {exc.args[0]!r}") from None
        except ValueError as exc:
            raise GuardError(f"saved detector's fill values are not numbers ({exc})") from None
        n_iter = np.asarray(arrays.get("n_iter", 0))
        if det.fill_.ndim != 1 or det.classes_.shape != (2,) or n_iter.size != 1 or n_iter.dtype.kind not in "iu":
            raise GuardError("saved detector's arrays are damaged (fill, classes or n_iter has the wrong shape)")
        det.n_features_in_ = int(det.fill_.shape[0])
        det.n_iter_ = int(n_iter)
        return det

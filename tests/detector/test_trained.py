"""Trained detectors: scikit-learn conventions, numpy evaluation == scikit-learn, pickle-free
save/load round trips on text, TF-IDF baseline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gpt2guard.errors import GuardError


def _toy(seed=0, n=120):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (X[:, 0] + 0.7 * X[:, 1] + 0.5 * rng.normal(size=n) > 0).astype(int)
    return X, y


def _checks():
    from sklearn.utils.estimator_checks import parametrize_with_checks

    from gpt2guard.detector.estimators import FeatureDetector

    def expected(est):
        # Boosting equals scikit-learn's GradientBoostingClassifier (which has no class_weight and
        # so never runs this check): a few shallow trees do not follow extreme class weights.
        return {"check_class_weight_classifiers": "boosted trees under extreme class weights"} \
            if est.kind == "boosting" else {}

    # Expected skips, not failures: array-API input needs SCIPY_ARRAY_API, data-frame input needs pandas.
    return parametrize_with_checks([FeatureDetector("logistic"), FeatureDetector("boosting", n_estimators=10,
                                                                                 random_state=0)],
                                   expected_failed_checks=expected)


@_checks()
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_numpy_evaluation_matches_sklearn():
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from gpt2guard.detector.estimators import FeatureDetector

    X, y = _toy()
    Xt, _ = _toy(seed=1)
    gb = GradientBoostingClassifier(n_estimators=30, random_state=3).fit(X, y)
    det = FeatureDetector("boosting", n_estimators=30, random_state=3).fit(X, y)
    np.testing.assert_allclose(det.decision_function(Xt), gb.decision_function(Xt), atol=1e-10)
    np.testing.assert_allclose(det.predict_proba(Xt), gb.predict_proba(Xt), atol=1e-10)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    det = FeatureDetector("logistic").fit(X, y)
    np.testing.assert_allclose(det.predict_proba(Xt), lr.predict_proba(Xt), atol=1e-10)
    assert list(det.predict(Xt)) == list(lr.predict(Xt))


@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_feature_detector_arrays_round_trip_with_nan(kind, tmp_path):
    from gpt2guard.detector.estimators import FeatureDetector

    X, y = _toy()
    X[::7, 2] = np.nan
    det = FeatureDetector(kind, n_estimators=20, random_state=0).fit(X, ["machine" if v else "human" for v in y])
    np.savez(tmp_path / "m.npz", **det.to_arrays())
    with np.load(tmp_path / "m.npz", allow_pickle=False) as npz:
        again = FeatureDetector.from_arrays(det.get_params(), {k: npz[k] for k in npz.files})
    assert np.array_equal(det.predict_proba(X), again.predict_proba(X))
    assert list(again.classes_) == ["human", "machine"]
    assert list(again.predict(X)) == list(det.predict(X))


def test_boosting_is_seeded():
    from gpt2guard.detector.estimators import FeatureDetector

    X, y = _toy()
    a = FeatureDetector("boosting", n_estimators=15, random_state=5).fit(X, y).decision_function(X)
    b = FeatureDetector("boosting", n_estimators=15, random_state=5).fit(X, y).decision_function(X)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("kind", ["logistic", "boosting"])
def test_trained_detector_text_round_trip(kind, labelled, tmp_path):
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.trained import TrainedDetector, load_detector

    texts, labels = labelled
    det = TrainedDetector(FeatureDetector(kind, n_estimators=30, random_state=0), "micro", ["small", "medium"])
    det.fit(texts, labels)
    assert det.feature_names[0].startswith("small:") and any(n.startswith("medium:") for n in det.feature_names)
    probe = texts[:4] + texts[-4:] + ["", "\x00\x01binary"]
    p = det.predict_proba_texts(probe)
    det.save(tmp_path / "det")
    meta = json.loads((tmp_path / "det" / "detector.json").read_text())
    assert meta["kind"] == "features" and meta["sizes"] == ["small", "medium"] and len(meta["train_digest"]) == 64
    assert set(meta["model_hashes"]) == {"small", "medium"}
    with np.load(tmp_path / "det" / "model.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)
    again = load_detector(tmp_path / "det")
    p2 = again.predict_proba_texts(probe)
    assert np.array_equal(p, p2, equal_nan=True)
    assert math.isnan(p[-1]) and math.isnan(p[-2])
    verdicts = again.verdicts(probe)
    assert [v.decision for v in verdicts[-2:]] == ["abstain", "abstain"]
    for v, prob in zip(verdicts[:-2], p[:-2]):  # score = log-odds, probability = its logistic
        assert v.probability == pytest.approx(prob, abs=1e-12)
        if 1e-9 < prob < 1 - 1e-9:
            assert v.score == pytest.approx(math.log(prob / (1 - prob)), abs=1e-6)
        if v.decision != "abstain":
            assert (v.decision == "machine") == (v.score > 0.0)
    # well separated on its own training data (tiny random models, yet machine text is distinct)
    y = np.array([1 if lab == "machine" else 0 for lab in labels])
    assert ((det.predict_proba_texts(texts) > 0.5) == y).mean() > 0.8


def test_lexical_detector_stacks_a_cross_fitted_tfidf_score_and_round_trips(labelled, tmp_path):
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.tfidf import TfidfDetector
    from gpt2guard.detector.trained import TrainedDetector, load_detector

    texts, labels = labelled
    y = np.array([1 if lab == "machine" else 0 for lab in labels])
    det = TrainedDetector(FeatureDetector("logistic", random_state=0), "micro", ["small"], lexical=True)
    det.fit(texts, labels)
    assert det.feature_names[-1] == "lexical:tfidf"
    # after training, the column is the TF-IDF model fitted on all training text
    stats = det.token_stats(texts[:5])
    X = det.feature_matrix(stats, texts[:5])
    np.testing.assert_allclose(X[:, -1], TfidfDetector().fit(texts, labels).decision_function(texts[:5]))
    # in training it was cross-fitted: TF-IDF memorises its training text, held-out folds score lower
    oof = det._cross_fitted_lexical(texts, y)
    in_sample = det.tfidf_.raw_decision(texts)  # the lexical feature: every text, binary ones too
    sign = np.where(y == 1, 1.0, -1.0)
    assert np.mean(sign * oof) < np.mean(sign * in_sample)
    with pytest.raises(GuardError, match="pass the texts"):
        det.logit_from_stats(stats)
    probe = texts[:4] + texts[-4:] + [""]
    p = det.predict_proba_texts(probe)
    det.save(tmp_path / "lex")
    meta = json.loads((tmp_path / "lex" / "detector.json").read_text())
    assert meta["lexical"] is True and meta["tfidf"]["vocabulary"]
    again = load_detector(tmp_path / "lex")
    assert again.lexical and np.array_equal(again.predict_proba_texts(probe), p, equal_nan=True)
    assert ((det.predict_proba_texts(texts) > 0.5) == y).mean() > 0.8


def test_trained_detector_refuses_other_weights(labelled, tmp_path):
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.trained import TrainedDetector, load_detector, update_meta

    texts, labels = labelled
    TrainedDetector(FeatureDetector("logistic"), "micro", ["small"]).fit(texts, labels).save(tmp_path / "d")
    update_meta(tmp_path / "d", model_hashes={"small": "0" * 64})
    with pytest.raises(GuardError, match="retrain"):
        load_detector(tmp_path / "d").predict_proba_texts(texts[:1])


def test_load_detector_bad_dirs(tmp_path):
    from gpt2guard.detector.trained import load_detector

    with pytest.raises(GuardError, match="not a saved detector"):
        load_detector(tmp_path)
    (tmp_path / "detector.json").write_text("{nope")
    with pytest.raises(GuardError, match="not valid JSON"):
        load_detector(tmp_path)


def test_tfidf_matches_sklearn_and_round_trips(labelled, tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from gpt2guard.detector.tfidf import TfidfDetector
    from gpt2guard.detector.trained import load_detector

    texts, labels = labelled
    det = TfidfDetector().fit(texts, labels)
    vec = TfidfVectorizer(ngram_range=(1, 2), max_features=50000)
    Xs = vec.fit_transform(texts)
    ref = LogisticRegression(max_iter=2000).fit(Xs, labels)
    np.testing.assert_allclose(det.predict_proba_texts(texts), ref.predict_proba(Xs)[:, 1], atol=1e-6)
    det.save(tmp_path / "tf")
    again = load_detector(tmp_path / "tf")
    probe = texts[:3] + ["", b"\xff\xfe\x00\x00"]
    assert np.array_equal(det.predict_proba_texts(probe), again.predict_proba_texts(probe), equal_nan=True)
    assert [v.decision for v in again.verdicts(probe)[-2:]] == ["abstain", "abstain"]

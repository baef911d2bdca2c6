"""TrainedDetector and TfidfDetector as scikit-learn classifiers on lists of texts: clone,
cross_val_score, GridSearchCV, length checks, sample and class weights, classes_, an already
loaded model, and calibrate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpt2guard.errors import GuardError


def _trained(**kw):
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.trained import TrainedDetector

    return TrainedDetector(FeatureDetector("logistic"), "micro", ["small"], **kw)


def test_init_only_stores_parameters_and_clone_round_trips(micro_family):
    from sklearn.base import clone

    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.tfidf import TfidfDetector
    from gpt2guard.detector.trained import TrainedDetector
    from gpt2guard.family import load_model

    refs = {"medium": "small"}  # wrong, but only fit checks it
    det = TrainedDetector(FeatureDetector("logistic", C=0.3), "micro", ["small"], references=refs, min_tokens=8)
    assert det.get_params(deep=False)["references"] is refs and det.get_params()["estimator__C"] == 0.3
    again = clone(det)
    assert again is not det and again.get_params()["estimator__C"] == 0.3 and again.references == refs
    assert again.set_params(estimator__C=2.0, threshold=1.5).estimator.C == 2.0 and det.estimator.C == 0.3
    lm = load_model("micro", "small")
    assert clone(TrainedDetector(model=lm)).model is lm  # the loaded weights are shared, not copied
    tf = TfidfDetector(C=0.5, class_weight="balanced")
    assert clone(tf).get_params() == tf.get_params()


def test_fit_checks_lengths_labels_and_weights(labelled):
    from gpt2guard.detector.tfidf import TfidfDetector

    texts, labels = labelled
    for det in (_trained(), TfidfDetector()):
        with pytest.raises(GuardError, match=f"{len(texts)} texts but {len(texts) - 1} labels"):
            det.fit(texts, labels[:-1])
        with pytest.raises(GuardError, match="sample weights"):
            det.fit(texts, labels, sample_weight=np.ones(3))
        with pytest.raises(GuardError, match="list of texts"):
            det.fit("one string", ["human"])
        with pytest.raises(GuardError, match="label must be"):
            det.fit(texts, ["spam"] * len(texts))
        with pytest.raises(GuardError, match="not fitted"):
            type(det)().predict(texts[:1])
    with pytest.raises(GuardError, match="references named"):
        _trained(references={"medium": "small"}).fit(texts, labels)


def test_classes_order_predict_proba_and_predict_returns_the_given_labels(labelled):
    texts, labels = labelled
    det = _trained().fit(texts, labels)
    assert det.classes_.tolist() == ["human", "machine"]
    proba = det.predict_proba(texts)
    np.testing.assert_allclose(proba[:, 1], det.predict_proba_texts(texts))
    scorable = ~np.isnan(proba[:, 1])  # a sample that decodes to binary bytes has no probability
    assert scorable.sum() >= len(texts) - 2
    np.testing.assert_allclose(proba[scorable].sum(axis=1), 1.0)
    pred = det.predict(texts)
    assert set(pred.tolist()) <= {"human", "machine"}
    assert (pred == np.where(proba[:, 1] > 0.5, "machine", "human")).all()
    assert det.score(texts, labels) == pytest.approx(np.mean(pred == np.array(labels)))
    y01 = [int(lab == "machine") for lab in labels]
    numeric = _trained().fit(texts, y01)
    assert numeric.classes_.tolist() == [0, 1] and set(numeric.predict(texts).tolist()) <= {0, 1}
    np.testing.assert_allclose(numeric.decision_function(texts), det.decision_function(texts))


def test_cross_val_score_and_grid_search_run_on_texts(labelled):
    from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score

    from gpt2guard.detector.tfidf import TfidfDetector

    texts, labels = labelled
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(_trained(), texts, labels, cv=cv)
    assert scores.shape == (3,) and scores.mean() > 0.7  # micro's machine text is easy to tell apart
    grid = GridSearchCV(_trained(), {"estimator__C": [0.01, 1.0]}, cv=cv, scoring="roc_auc").fit(texts, labels)
    assert grid.best_params_["estimator__C"] in (0.01, 1.0) and grid.best_score_ > 0.7
    assert set(grid.predict(texts[:3]).tolist()) <= {"human", "machine"}
    tf = GridSearchCV(TfidfDetector(), {"C": [0.1, 10.0]}, cv=cv).fit(texts, labels)
    assert tf.best_estimator_.C in (0.1, 10.0) and len(tf.cv_results_["mean_test_score"]) == 2


def test_sample_weight_and_class_weight(labelled):
    from gpt2guard.detector.tfidf import TfidfDetector

    texts, labels = labelled
    y = np.array([lab == "machine" for lab in labels])
    # a zero weight is the same as leaving the document out (features of a text do not depend on the others)
    w = np.ones(len(texts))
    w[::4] = 0.0
    kept = [t for t, wi in zip(texts, w) if wi]
    weighted = _trained().fit(texts, labels, sample_weight=w)
    subset = _trained().fit(kept, [lab for lab, wi in zip(labels, w) if wi])
    np.testing.assert_allclose(weighted.decision_function(texts), subset.decision_function(texts), rtol=1e-3,
                               atol=1e-3)
    # class_weight is a per-class sample weight, keyed by the labels as given
    by_class = TfidfDetector(class_weight={"machine": 5.0}).fit(texts, labels)
    by_sample = TfidfDetector().fit(texts, labels, sample_weight=np.where(y, 5.0, 1.0))
    plain = TfidfDetector().fit(texts, labels)
    np.testing.assert_allclose(by_class.decision_function(texts), by_sample.decision_function(texts))
    assert by_class.decision_function(texts).mean() > plain.decision_function(texts).mean()
    heavy = _trained(class_weight={"machine": 20.0}).fit(texts, labels)
    assert heavy.predict_proba(texts)[:, 1].mean() > _trained().fit(texts, labels).predict_proba(texts)[:, 1].mean()
    with pytest.raises(GuardError, match="finite, non-negative"):
        TfidfDetector().fit(texts, labels, sample_weight=-w)


def test_an_already_loaded_model_trains_saves_and_loads(tiny_pair, labelled, tmp_path):
    from gpt2guard.detector.trained import TrainedDetector, load_detector

    texts, labels = labelled
    scorer = tiny_pair[0]  # built in memory: no family to load it from
    det = TrainedDetector(model=scorer).fit(texts, labels)
    assert det.size_list == [scorer.size] and det.model_hashes == {scorer.size: scorer.model_hash}
    det.save(tmp_path / "det")
    again = load_detector(tmp_path / "det", model=scorer)
    np.testing.assert_array_equal(again.decision_function(texts[:5]), det.decision_function(texts[:5]))
    with pytest.raises(GuardError, match="model must be a LoadedModel"):
        TrainedDetector(model="gpt2").fit(texts, labels)


def test_calibrate_sets_the_threshold_for_a_false_positive_rate(labelled, human_docs, tmp_path):
    from gpt2guard.detector.calibrate import threshold_for_fpr
    from gpt2guard.detector.tfidf import TfidfDetector
    from gpt2guard.detector.trained import load_detector

    texts, labels = labelled
    human = human_docs["valid"][:40]
    for det in (_trained().fit(texts, labels), TfidfDetector().fit(texts, labels)):
        assert det.calibrate(human, fpr=0.1, n_boot=50, seed=1) is det
        verdict_scores = np.array([np.nan if v.decision == "abstain" else v.score for v in det.verdicts(human)])
        expected = threshold_for_fpr(verdict_scores, 0.1, n_boot=50, seed=1)
        assert det.threshold == expected.threshold and det.calibration_ == expected
        scored = verdict_scores[~np.isnan(verdict_scores)]
        assert (scored > det.threshold).mean() <= 0.1
        assert ((det.predict(human) == "machine") == (det.decision_function(human) > det.threshold)).all()
        det.save(tmp_path / det.kind)
        saved = json.loads((tmp_path / det.kind / "detector.json").read_text())
        assert saved["threshold"] == det.threshold and saved["calibration"]["target_fpr"] == 0.1
        assert load_detector(tmp_path / det.kind).threshold == det.threshold


def test_a_notebook_flow_through_the_top_level_names(labelled, human_docs):
    import gpt2guard as gg

    texts, labels = labelled
    lm = gg.load_model("micro", "small")
    det = gg.TrainedDetector(gg.FeatureDetector("logistic"), model=lm).fit(texts, labels)
    det.calibrate(human_docs["valid"][:30], fpr=0.1, n_boot=20)
    assert det.threshold is not None and len(det.predict(texts[:3])) == 3
    stats = gg.score_texts(texts[:2], lm)
    assert len(stats) == 2 and stats[0].n_tokens > 0
    assert "fast-detectgpt" in gg.list_methods()

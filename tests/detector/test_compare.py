"""The side-by-side comparison of every detector on the micro family: columns, ranges, length
matching, and an easy case the trained detector must get right."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpt2guard.errors import GuardError


@pytest.fixture(scope="module")
def split_docs(micro_family, micro_tokenizer, human_docs, tmp_path_factory):
    """Length-matched (texts, labels) for train and test: micro-small samples (train and test
    generated with different job seeds) against builtin human prose (train / test splits)."""
    from gpt2guard.datasets.sets import open_set
    from gpt2guard.detector.compare import length_matched
    from gpt2guard.generator.run import GenerationJob, run_generation

    out = tmp_path_factory.mktemp("compare-gen")
    docs = {}
    for split, seed in (("train", 0), ("test", 1)):
        run_generation(GenerationJob(out=str(out), family="micro", sizes="small", sampling="pure", n=24, length=40,
                                     split=split, seed=seed, stop_at_eos=False), progress=False)
        machine = [r.text for r in open_set(out, "micro-small", split)]
        docs[split] = length_matched(human_docs[split], machine, micro_tokenizer, seed=0, n=24)
    return docs


@pytest.fixture(scope="module")
def comparison(split_docs):
    from gpt2guard.detector.compare import compare_detectors

    return compare_detectors(split_docs["train"], split_docs["test"], "micro", "small", n_boot=20, seed=0)


def test_reference_size_is_the_neighbour(micro_family):
    from gpt2guard.detector.compare import reference_size

    assert reference_size("micro", "small") == "medium"
    assert reference_size("micro", "medium") == "small"  # the largest size takes the next smaller one
    with pytest.raises(GuardError):
        reference_size("micro", "huge")


def test_length_matched_equalises_token_lengths(micro_tokenizer):
    from gpt2guard.datasets.tokens import count_tokens
    from gpt2guard.detector.compare import length_matched

    human = [" ".join(["word"] * k) + "." for k in (3, 20, 40, 60, 80, 100)]
    machine = ["Short text here with words " * k for k in (4, 6, 9)]
    texts, labels = length_matched(human, machine, micro_tokenizer, seed=0, min_tokens=8)
    lengths = count_tokens(texts, micro_tokenizer)
    h = sorted(n for n, lab in zip(lengths, labels) if lab == "human")
    m = sorted(n for n, lab in zip(lengths, labels) if lab == "machine")
    assert len(h) == len(m) == 3 and h == m and min(h) >= 8
    assert labels == ["human"] * 3 + ["machine"] * 3
    with pytest.raises(GuardError, match="at least"):
        length_matched(["tiny"], machine, micro_tokenizer, min_tokens=8)


def test_comparison_has_every_column_in_range(comparison, split_docs):
    from gpt2guard.detector.compare import columns
    from gpt2guard.detector.methods import list_methods

    assert comparison["columns"] == list_methods() + ["tfidf", "trained", "finetune"] == columns()
    assert set(comparison["metrics"]) == set(comparison["columns"])
    assert comparison["scorer"] == "small" and comparison["reference"] == "medium"
    assert comparison["references"] == {"small": "medium", "medium": "small"}
    assert comparison["n_test"] == len(split_docs["test"][0])
    for name, m in comparison["metrics"].items():
        assert 0.0 <= m["auroc"] <= 1.0, name
        assert 0.0 <= m["tpr@0.01"] <= 1.0, name
        assert m["n_human"] > 0 and m["n_machine"] > 0 and m["n_abstain"] == 0, name
        lo, hi = m["auroc_ci"]
        assert 0.0 <= lo <= hi <= 1.0, name


def test_trained_detector_separates_an_easy_case(comparison):
    # samples of a model trained for seconds against human prose: the trained detector,
    # seeing every statistic of both sizes, must separate them on held-out documents
    assert comparison["metrics"]["trained"]["auroc"] >= 0.95
    assert comparison["estimator"]["C_"] > 0


def test_finetuned_column_is_trained_on_the_smallest_size(comparison):
    ft = comparison["finetune"]
    assert ft["base"] == "micro:small" and ft["params"]["random_state"] == 0
    assert ft["history"]["epochs_run"] >= 1 and ft["seconds_per_1000_docs"] > 0
    assert comparison["metrics"]["finetune"]["n_abstain"] == 0


def test_comparison_needs_both_classes(split_docs):
    from gpt2guard.detector.compare import compare_detectors

    texts, labels = split_docs["train"]
    humans = [t for t, lab in zip(texts, labels) if lab == "human"]
    with pytest.raises(GuardError, match="human and machine"):
        compare_detectors((humans, ["human"] * len(humans)), split_docs["test"], "micro", "small")


def test_trained_detector_with_references_round_trips(split_docs, tmp_path):
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.trained import TrainedDetector, load_detector

    texts, labels = split_docs["train"]
    det = TrainedDetector(FeatureDetector("logistic", cv=3), "micro", ["small", "medium"],
                          references={"small": "medium"})
    det.fit(texts, labels)
    names = det.feature_names
    assert "small:method_binoculars" in names and "medium:method_binoculars" not in names
    assert "small:fdg_ref_z_mean" in names and "small>medium:dlogp_q50" in names
    det.save(tmp_path / "det")
    again = load_detector(tmp_path / "det")
    assert again.references == {"small": "medium"} and set(again.model_hashes) == {"small", "medium"}
    probe = split_docs["test"][0][:6]
    assert np.array_equal(det.decision_texts(probe), again.decision_texts(probe))
    with pytest.raises(GuardError, match="references named"):  # checked by fit (scikit-learn: __init__ only stores)
        TrainedDetector(FeatureDetector(), "micro", ["small"], references={"medium": "small"}).fit(texts, labels)


def test_feature_detector_chooses_C_by_cross_validation():
    from gpt2guard.detector.estimators import FeatureDetector

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 6))
    y = (X[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(int)
    det = FeatureDetector("logistic", cv=4, Cs=(0.001, 1.0, 100.0)).fit(X, y)
    assert det.C_ in (0.001, 1.0, 100.0) and set(det.cv_scores_) == {0.001, 1.0, 100.0}
    assert det.C_ == min(det.cv_scores_, key=det.cv_scores_.get)
    again = FeatureDetector("logistic", cv=4, Cs=(0.001, 1.0, 100.0)).fit(X, y)
    assert np.array_equal(det.decision_function(X), again.decision_function(X))
    # too few rows of a class for two folds: the fixed C
    assert FeatureDetector("logistic", C=0.5, cv=5).fit(X[:3], [0, 1, 0]).C_ == 0.5


def test_pair_features_compare_aligned_tokens():
    from gpt2guard.detector.features import pair_feature_names, pair_features
    from gpt2guard.detector.stats import TokenStats

    def rec(ids, logp):
        n = len(ids)
        z = np.zeros(n, np.float32)
        return TokenStats(token_ids=np.asarray(ids, np.int32), logp=np.asarray(logp, np.float32),
                          rank=np.zeros(n, np.int32), entropy=z, mean_ref=z, var_ref=z + 1, n_windows=1,
                          model_hash="m")

    a, b = rec([1, 2, 3], [-3.0, -2.0, -1.0]), rec([1, 2, 3], [-1.0, -1.0, -1.0])
    f = pair_features(a, b)
    assert list(f) == pair_feature_names()
    assert f["dlogp_mean"] == pytest.approx(1.0) and f["dlogp_q95"] == pytest.approx(1.9)
    assert all(math.isnan(v) for v in pair_features(a, rec([1, 2, 4], [-1.0] * 3)).values())

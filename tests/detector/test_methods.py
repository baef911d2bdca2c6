"""Each zero-shot method and feature against a first-principles computation on a tiny model."""

import math

import numpy as np
import pytest

from gpt2guard.detector import (TokenStats, feature_matrix, feature_names, features, get_method, gltr_histogram,
                                list_methods, score_methods, score_texts)
from gpt2guard.errors import GuardError


@pytest.fixture(scope="module")
def scored(tiny_pair, texts):
    """(stats, brute-force quantities) for one document under the tiny scorer and reference."""
    import torch

    scorer, reference = tiny_pair
    text = texts[1]
    stats = score_texts([text], scorer, reference=reference, cache=False)[0]
    ids = [scorer.tokenizer.eos_token_id] + scorer.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        x = torch.tensor([ids[:-1]])
        logprobs = torch.log_softmax(scorer.model(x).logits[0].double(), -1)  # (T, V)
        q = torch.softmax(reference.model(x).logits[0].double(), -1)  # (T, V)
    y = torch.tensor(ids[1:])
    sorted_ids = torch.sort(logprobs, -1, descending=True).indices
    rank1 = torch.tensor([sorted_ids[t].tolist().index(int(y[t])) + 1 for t in range(len(y))]).double()
    brute = {"logp": logprobs[torch.arange(len(y)), y], "rank1": rank1, "logprobs": logprobs, "q": q}
    return stats, {k: v.numpy() for k, v in brute.items()}


def _fast_detectgpt(logp, logprobs, weights):
    mean = (weights * logprobs).sum(-1)
    var = (weights * logprobs ** 2).sum(-1) - mean ** 2
    return (logp.sum() - mean.sum()) / math.sqrt(var.sum())


def test_methods_match_direct_formulas(scored):
    stats, b = scored
    p = np.exp(b["logprobs"])
    entropy = -(p * b["logprobs"]).sum(-1)
    expected = {
        "logp": b["logp"].mean(),
        "rank": -b["rank1"].mean(),
        "logrank": -np.log(b["rank1"]).mean(),
        "entropy": -entropy.mean(),
        "gltr": (b["rank1"] <= 10).mean(),
        "lrr": -b["logp"].sum() / np.log(b["rank1"]).sum(),
        "fast-detectgpt": _fast_detectgpt(b["logp"], b["logprobs"], p),
        "fast-detectgpt-ref": _fast_detectgpt(b["logp"], b["logprobs"], b["q"]),
        # Binoculars: log-perplexity of the scorer (observer) over the cross-perplexity of the
        # reference's (performer's) distribution under the scorer's log-probabilities; negated
        "binoculars": -(-b["logp"].mean()) / (-(b["q"] * b["logprobs"]).sum(-1)).mean(),
    }
    assert set(expected) == set(list_methods())
    got = score_methods(stats)
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name


def test_methods_are_higher_for_model_like_text(tiny_pair):
    """Sanity on real numbers: greedy continuations of the scorer look more 'machine' than shuffles."""
    import torch

    scorer, _ = tiny_pair
    eos = scorer.tokenizer.eos_token_id
    torch.manual_seed(0)
    ids = torch.full((4, 1), eos)  # (B, T): 4 sequences sampled from the scorer's top 3, step by step
    with torch.no_grad():
        for _ in range(50):
            top = torch.topk(scorer.model(ids).logits[:, -1], 3).indices  # (B, 3)
            ids = torch.cat([ids, top.gather(1, torch.randint(0, 3, (4, 1)))], 1)
    machine = [row[1:].numpy() for row in ids]
    rng = np.random.default_rng(0)
    human = [rng.integers(1, len(scorer.tokenizer), 50) for _ in range(4)]
    from gpt2guard.detector import score_token_ids

    arrays = score_token_ids(machine + human, scorer)
    records = [TokenStats(**{k: v for k, v in a.items() if k != "n_windows"}, n_windows=a["n_windows"],
                          model_hash=scorer.model_hash) for a in arrays]
    for name in ("logp", "rank", "logrank", "entropy", "gltr", "lrr", "fast-detectgpt"):
        m = [get_method(name)(r) for r in records[:4]]
        h = [get_method(name)(r) for r in records[4:]]
        assert min(m) > max(h), name


def test_reference_methods_need_reference_terms(tiny_pair, texts):
    stats = score_texts([texts[0]], tiny_pair[0], cache=False)[0]
    assert not stats.has_reference
    for name in ("binoculars", "fast-detectgpt-ref"):
        with pytest.raises(GuardError, match="reference"):
            get_method(name)(stats)
    assert set(score_methods(stats)) == set(list_methods(with_reference=False))


def test_unknown_method_is_a_guard_error():
    with pytest.raises(GuardError, match="known methods"):
        get_method("detectgpt-with-perturbations")


def test_features_line_up_and_match_the_statistics(scored):
    stats, b = scored
    f = features(stats)
    assert list(f) == feature_names(reference=True)
    assert f["n_tokens"] == stats.n_tokens
    assert f["logp_mean"] == pytest.approx(b["logp"].mean(), abs=1e-5)
    assert f["logp_q50"] == pytest.approx(np.median(b["logp"]), abs=1e-5)
    hist = gltr_histogram(stats)
    r = b["rank1"]
    expected = [(r <= 10).mean(), ((r > 10) & (r <= 100)).mean(), ((r > 100) & (r <= 1000)).mean(), (r > 1000).mean()]
    np.testing.assert_allclose(hist, expected)
    assert hist.sum() == pytest.approx(1.0)
    assert f["method_binoculars"] == pytest.approx(get_method("binoculars")(stats))


def test_feature_matrix_handles_empty_documents(tiny_pair, texts):
    records = score_texts(["", texts[0], texts[3]], tiny_pair[0], cache=False)
    X, names = feature_matrix(records)
    assert X.shape == (3, len(names)) and names == feature_names(reference=False)
    assert X[0, 0] == 0 and np.isnan(X[0, 1:]).all()
    assert np.isfinite(X[1:]).all()


@pytest.mark.parametrize("with_reference", [False, True])
def test_sums_path_gives_every_method_of_the_per_token_path(tiny_pair, texts, with_reference):
    """Scorer.score_sums (no per-token arrays) and Scorer.score give the same score for every
    method, on every document, with and without a reference model."""
    from gpt2guard.detector import Scorer

    scorer, reference = tiny_pair
    s = Scorer(scorer, reference if with_reference else None, cache=False)
    docs = texts + ["", texts[1] * 8]  # an empty one, and one of several windows
    full, sums = s.score(docs), s.score_sums(docs)
    names = list_methods(with_reference=with_reference)
    for a, b in zip(full, sums):
        assert (a.n_tokens, a.n_windows, a.flags, a.text_hash) == (b.n_tokens, b.n_windows, b.flags, b.text_hash)
        for name in names:
            x, y = get_method(name)(a), get_method(name)(b)
            assert (math.isnan(x) and math.isnan(y)) or y == pytest.approx(x, rel=1e-9, abs=1e-12), name
    assert max(a.n_windows for a in full) > 1


def test_token_sums_reduce_in_chunks_and_round_trip(scored, tmp_path):
    """TokenStats.sums gives the float64 sums of the arrays whatever the chunk size, and a
    TokenSums record saves and loads without pickles."""
    from gpt2guard.detector.stats import TokenSums

    stats, _ = scored
    whole = stats.sums()
    tiny = stats.sums(chunk_tokens=3)
    r = stats.rank.astype(np.float64)
    expected = {"logp": stats.logp.astype(np.float64).sum(), "rank": r.sum(), "log_rank": np.log1p(r).sum(),
                "entropy": stats.entropy.astype(np.float64).sum(), "top10": (r < 10).sum(),
                "mean_ref": stats.mean_ref.astype(np.float64).sum(), "var_ref": stats.var_ref.astype(np.float64).sum(),
                "cross_entropy": stats.cross_entropy.astype(np.float64).sum(),
                "cross_var": stats.cross_var.astype(np.float64).sum()}
    for name, value in expected.items():
        assert whole.sums[name] == pytest.approx(value, rel=1e-12) and tiny.sums[name] == pytest.approx(value, rel=1e-12)
    assert whole.n_tokens == stats.n_tokens and whole.has_reference
    whole.save(tmp_path / "s.npz")
    back = TokenSums.load(tmp_path / "s.npz")
    assert back == whole
    with pytest.raises(ValueError):  # a full record is not a sums record, and the other way round
        TokenSums.load(_saved(stats, tmp_path))
    with pytest.raises(KeyError):
        TokenStats.load(tmp_path / "s.npz")


def _saved(stats, tmp_path):
    stats.save(tmp_path / "full.npz")
    return tmp_path / "full.npz"


def test_features_equal_their_float64_definitions(scored, monkeypatch):
    """The chunked features are the float64 formulas they were defined by (means, standard
    deviations, numpy's linear quantiles), on chunks much smaller than the document."""
    import importlib

    fm = importlib.import_module("gpt2guard.detector.features")
    stats, _ = scored
    f64 = lambda x: np.asarray(x, np.float64)  # noqa: E731
    defs = {"logp": f64(stats.logp), "logrank": np.log1p(f64(stats.rank)), "entropy": f64(stats.entropy),
            "var_ref": f64(stats.var_ref),
            "fdg_z": f64(stats.logp - stats.mean_ref) / np.sqrt(np.maximum(f64(stats.var_ref), 1e-12)),
            "cross_var": f64(stats.cross_var),
            "fdg_ref_z": (f64(stats.logp) + stats.cross_entropy) / np.sqrt(np.maximum(f64(stats.cross_var), 1e-12))}
    monkeypatch.setattr(fm, "CHUNK_TOKENS", 5)
    got = fm.features(stats)
    for prefix, x in defs.items():
        assert got[f"{prefix}_mean"] == pytest.approx(x.mean(), rel=1e-12, abs=1e-14), prefix
        assert got[f"{prefix}_std"] == pytest.approx(x.std(), rel=1e-12, abs=1e-14), prefix
        for q in (5, 25, 50, 75, 95):
            assert got[f"{prefix}_q{q:02d}"] == np.quantile(x, q / 100), (prefix, q)

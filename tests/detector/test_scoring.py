"""The scoring engine against brute-force computations on real (tiny) transformers models."""

import math

import numpy as np
import pytest

from gpt2guard.detector import Scorer, StatsCache, TokenStats, get_method, score_texts, score_token_ids
from gpt2guard.errors import GuardError

from detector_helpers import assert_stats_close, direct_stats, tiny_gpt2


def _ids(tokenizer, text):
    return [tokenizer.eos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"]


def test_single_document_matches_direct_computation(tiny_pair, tokenizer, texts, tmp_path):
    scorer, reference = tiny_pair
    stats = score_texts([texts[1]], scorer, reference=reference, cache=StatsCache(tmp_path))[0]
    ids = _ids(tokenizer, texts[1])
    assert 1 < len(ids) - 1 <= scorer.n_positions
    assert stats.token_ids.tolist() == ids[1:] and stats.n_windows == 1 and stats.n_tokens == len(ids) - 1
    assert_stats_close(stats, direct_stats(scorer.model, ids, reference.model))
    np.testing.assert_allclose(stats.mean_ref, -stats.entropy, atol=1e-5)
    assert stats.model_hash == scorer.model_hash and stats.reference_hash == reference.model_hash


def test_batched_equals_alone(tiny_pair, texts):
    """Right padding, masks and positions: a document's numbers do not depend on its batch."""
    scorer, reference = tiny_pair
    docs = [np.array(_ids(scorer.tokenizer, t)[1:]) for t in texts]
    together = score_token_ids(docs, scorer, reference=reference, batch_tokens=10 ** 6)
    for doc, joint in zip(docs, together):
        alone = score_token_ids([doc], scorer, reference=reference)[0]
        for key in ("logp", "entropy", "mean_ref", "var_ref", "cross_entropy", "cross_var"):
            np.testing.assert_allclose(joint[key], alone[key], atol=1e-5, rtol=1e-5, err_msg=key)
        assert np.array_equal(joint["rank"], alone["rank"])


def test_long_document_sliding_windows_match_direct_contexts(micro_family):
    """~500 tokens under micro (context 128): each token against a forward pass on exactly its
    context, computed here from the stride rule rather than from the engine's windows."""
    from gpt2guard.family import load_model

    loaded = load_model("micro", "small", device="cpu")
    C = loaded.n_positions
    assert C == 128
    rng = np.random.default_rng(0)
    doc = rng.integers(1, loaded.model.config.vocab_size, size=500)
    got = score_token_ids([doc], loaded, batch_tokens=300, chunk_elements=4096)[0]
    ids = np.concatenate([[loaded.tokenizer.eos_token_id], doc])
    stride = C // 2
    assert got["n_windows"] == 1 + math.ceil((500 - C) / stride)
    expected = {k: np.zeros(len(doc)) for k in ("logp", "rank", "entropy", "mean_ref", "var_ref")}
    starts = {}
    for i in range(len(doc)):  # document token i is ids[i + 1]
        k = max(0, math.ceil((i + 1 - C) / stride))  # first window reaching it
        assert i + 1 - k * stride >= (C / 2 if i >= C else 1)  # left context
        starts.setdefault(k * stride, []).append(i)
    for start, tokens in starts.items():
        # causal model: the prediction at a position of ids[start:end] sees only ids[start..position]
        one = direct_stats(loaded.model, ids[start: tokens[-1] + 2])
        for key in expected:
            expected[key][tokens] = one[key][np.array(tokens) - start]
    assert_stats_close(got, {k: np.array(v) for k, v in expected.items()})


def test_cache_makes_rescoring_free_and_survives_corruption(tiny_pair, texts, tmp_path, monkeypatch):
    import gpt2guard.detector.scoring as scoring

    scorer, _ = tiny_pair
    cache = StatsCache(tmp_path)
    first = Scorer(scorer, cache=cache).score(texts)
    files = sorted(tmp_path.rglob("*.npz"))
    assert len(files) == len(set(texts))

    def boom(*a, **k):
        raise AssertionError("the model ran although every document was cached")

    monkeypatch.setattr(scoring, "score_token_ids", boom)
    again = Scorer(scorer, cache=cache).score(texts)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.logp, b.logp)
        np.testing.assert_array_equal(a.rank, b.rank)
    monkeypatch.undo()
    files[0].write_bytes(b"not a zip file")
    repaired = Scorer(scorer, cache=cache).score(texts)
    for a, b in zip(first, repaired):
        np.testing.assert_array_equal(a.logp, b.logp)


def test_cache_files_are_plain_arrays(tiny_pair, texts, tmp_path):
    scorer, reference = tiny_pair
    stats = Scorer(scorer, reference, cache=StatsCache(tmp_path)).score([texts[0]])[0]
    (path,) = tmp_path.rglob("*.npz")
    with np.load(path, allow_pickle=False) as arrays:
        assert all(arrays[k].dtype != object for k in arrays.files)
    back = TokenStats.load(path)
    for key in ("token_ids", "logp", "rank", "entropy", "mean_ref", "var_ref", "cross_entropy", "cross_var"):
        np.testing.assert_array_equal(getattr(back, key), getattr(stats, key))
    assert (back.model_hash, back.reference_hash, back.n_windows) == (stats.model_hash, stats.reference_hash, 1)


def test_bad_documents_are_flagged_not_judged(tiny_pair, texts):
    scorer, _ = tiny_pair
    out = score_texts(["", "   \n", b"\x00\x01\x02binary\x00", texts[0], "Thе pаpеr\u200b"], scorer, cache=False)
    assert [s.n_tokens == 0 for s in out] == [True, True, True, False, False]
    assert "empty" in out[0].flags and "empty" in out[1].flags and "binary" in out[2].flags
    assert out[4].flags == ("homoglyphs", "zero_width")
    for s in out[:3]:
        assert math.isnan(get_method("fast-detectgpt")(s)) and math.isnan(get_method("logp")(s))
    assert not math.isnan(get_method("fast-detectgpt")(out[3]))


def test_duplicates_score_once_and_keep_their_own_flags(tiny_pair):
    scorer, _ = tiny_pair
    a, b = score_texts(["Hello world", "Hello\u200b world"], scorer, cache=False)
    np.testing.assert_array_equal(a.logp, b.logp)
    assert a.flags == () and b.flags == ("zero_width",)


def test_max_tokens_truncates_with_a_flag(tiny_pair, texts):
    scorer, _ = tiny_pair
    full, cut = (score_texts([texts[2]], scorer, cache=False, max_tokens=m)[0] for m in (None, 20))
    assert cut.n_tokens == 20 and "truncated" in cut.flags and "truncated" not in full.flags
    np.testing.assert_allclose(cut.logp, full.logp[:20], atol=1e-5)


def test_reference_with_another_tokenizer_is_refused(tiny_pair, tokenizer, tmp_path):
    from gpt2guard.detector import wrap_model
    from gpt2guard.family.tokenizer import train_tokenizer

    other_tok = train_tokenizer(["a different corpus of words entirely"] * 20, 300, 64, tmp_path)
    other = wrap_model(tiny_gpt2(len(other_tok), seed=3), other_tok, "other")
    with pytest.raises(GuardError, match="different tokenizers"):
        Scorer(tiny_pair[0], other, cache=False)
    with pytest.raises(GuardError, match="different tokenizers"):
        score_texts(["x"], tiny_pair[0], reference=other, cache=False)


def test_linear_backends_agree_and_key_the_cache(tiny_pair, texts, tmp_path):
    """oneDNN's linear (where available) and torch's default path give the same statistics
    to float32 tolerance; the backend is part of the cache key."""
    from gpt2guard.family.linear import backend_for

    scorer, reference = tiny_pair
    docs = [np.array(_ids(scorer.tokenizer, t)[1:]) for t in texts[:3]]
    fast = score_token_ids(docs, scorer, reference=reference, linear="auto")
    slow = score_token_ids(docs, scorer, reference=reference, linear="aten")
    for a, b in zip(fast, slow):
        for key in ("logp", "entropy", "mean_ref", "var_ref", "cross_entropy", "cross_var"):
            np.testing.assert_allclose(a[key], b[key], atol=1e-4, rtol=1e-4, err_msg=key)
        assert np.mean(a["rank"] == b["rank"]) > 0.95
    backend = backend_for("auto", scorer.model)  # measured on this CPU
    assert Scorer(scorer, cache=False).settings["linear"] == backend
    assert Scorer(scorer, cache=False, linear="aten").settings["linear"] == "aten"
    with pytest.raises(GuardError, match="unknown linear backend"):
        Scorer(scorer, cache=False, linear="blas")


def test_a_reference_of_another_dtype_runs_on_the_default_path(tiny_pair, texts):
    """oneDNN only when every model can run on it: a bfloat16 reference keeps torch's path."""
    import copy

    import torch

    from gpt2guard.detector.scoring import engine_backend
    from gpt2guard.family import LoadedModel

    scorer, reference = tiny_pair
    ref16 = LoadedModel(copy.deepcopy(reference.model).to(torch.bfloat16), reference.tokenizer, reference.family,
                        reference.size, reference.path, reference.device, reference.model_hash + "-bf16",
                        reference.tokenizer_hash)
    assert engine_backend(scorer, "auto", reference=ref16) == "aten"
    doc = np.array(_ids(scorer.tokenizer, texts[1])[1:])
    mixed = score_token_ids([doc], scorer, reference=ref16)[0]
    same = score_token_ids([doc], scorer, reference=reference)[0]
    np.testing.assert_allclose(mixed["logp"], same["logp"], atol=1e-4)
    np.testing.assert_allclose(mixed["cross_entropy"], same["cross_entropy"], atol=0.1)


def test_bf16_autocast_runs_close_to_float32(tiny_pair, texts):
    scorer, _ = tiny_pair
    f32, bf = (score_texts([texts[1]], scorer, cache=False, bf16=flag)[0] for flag in (False, True))
    np.testing.assert_allclose(bf.logp, f32.logp, atol=0.1)
    assert bf.logp.dtype == np.float32


def test_long_document_goes_through_the_scorer_whole(tiny_pair, tokenizer):
    scorer, _ = tiny_pair
    text = " ".join(f"Line {i} of a long report, with words that repeat." for i in range(400))
    n = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    stats = score_texts([text], scorer, cache=False)[0]
    assert n > 10 * scorer.n_positions
    assert stats.n_tokens == n and stats.flags == () and np.isfinite(stats.logp).all()
    assert stats.n_windows == 1 + math.ceil((n - scorer.n_positions) / (scorer.n_positions // 2))


def test_out_of_vocabulary_ids_are_a_guard_error(tiny_pair):
    with pytest.raises(GuardError, match="vocabulary"):
        score_token_ids([np.array([1, 2, 10 ** 6])], tiny_pair[0])

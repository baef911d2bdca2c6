"""Huge documents in bounded memory: the piecewise paths give exactly what the whole-text
paths give (checked here on normal documents by making the pieces small); the memory and
time figures are in bench/bench_large_docs.py."""

from __future__ import annotations

import math

import numpy as np
import pytest

TEXT = ("It returns  a list of   names, sorted (in arbitrary order); it raises\n\nOSError when 12,345 "
        "paths don't exist.\tTabs\t and  'quotes' stay. <|endoftext|> ")


def test_token_counts_in_pieces_equal_whole_counts(micro_tokenizer, monkeypatch):
    from gpt2guard.datasets import tokens

    texts = [TEXT * 40, "short one", TEXT * 7 + "tail", ""]
    whole = tokens.count_tokens(texts, micro_tokenizer)
    monkeypatch.setattr(tokens, "LONG_TEXT", 97)
    assert tokens.count_tokens(texts, micro_tokenizer) == whole and whole[0] > 1000


@pytest.mark.parametrize("text", [
    " ".join(f"w{i}" for i in range(3000)),                          # no repetition
    " ".join(f"w{i % 40}" for i in range(3000)),                     # a loop
    " ".join(f"w{i}" for i in range(3000)) + " again" * 3,           # a run of 3: not a loop
    " ".join(f"w{i}" for i in range(3000)) + " again" * 9,           # a run of 9
    " ".join(f"w{i}" for i in range(2000)) + " a b c d e" * 40,      # a late loop (tail)
    "word " * 10 + "x" * 70 + " end",                                # a character run
    "   \n  ",
])
def test_degeneracy_flags_of_long_texts_equal_the_exact_ones(text, monkeypatch):
    from gpt2guard.datasets import quality

    exact = quality.degeneracy_flags(text)
    monkeypatch.setattr(quality, "LARGE_TEXT", 10)
    assert quality.degeneracy_flags(text) == exact


def test_import_of_a_long_record_counts_its_tokens_in_pieces(tmp_path, micro_tokenizer, monkeypatch):
    """A long document goes through ``import`` with the exact token count and flags."""
    import json

    from gpt2guard.datasets import quality, tokens
    from gpt2guard.datasets.importing import import_set
    from gpt2guard.datasets.sets import open_set

    text = TEXT.replace("<|endoftext|> ", "") * 300  # about 32k characters
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps({"id": "big", "text": text}) + "\n" + json.dumps({"id": "small", "text": TEXT}) + "\n")
    monkeypatch.setattr(tokens, "LONG_TEXT", 1000)
    monkeypatch.setattr(quality, "LARGE_TEXT", 1000)
    import_set(src, tmp_path / "out", "big", "test", tokenizer=micro_tokenizer, family="micro", card=False)
    recs = {r.id: r for r in open_set(tmp_path / "out", "big", "test")}
    assert recs["big"].text == text
    assert recs["big"].length == len(micro_tokenizer(text, add_special_tokens=False)["input_ids"])
    assert recs["big"].flags == quality.degeneracy_flags(text[:900])  # a repeated sentence: a loop, both ways


def test_piecewise_encoding_stops_early_at_max_tokens(tokenizer):
    from gpt2guard.detector.encode import encode_texts

    text = TEXT * 200
    full = encode_texts(tokenizer, [text], chunk_chars=500)[0]
    cut = encode_texts(tokenizer, [text], chunk_chars=500, max_tokens=300)[0]
    assert full.dtype == np.int32 and 300 < len(cut) < len(full)
    np.testing.assert_array_equal(cut, full[: len(cut)])


def test_engine_is_the_same_on_int32_ids_and_long_documents(tiny_pair, tokenizer):
    """int32 ids (what the engine keeps) and int64 ids give the same statistics, over many windows."""
    from gpt2guard.detector import score_token_ids

    scorer, _ = tiny_pair
    ids = np.array(tokenizer(TEXT * 30)["input_ids"])
    a = score_token_ids([ids.astype(np.int64)], scorer)[0]
    b = score_token_ids([ids.astype(np.int32)], scorer)[0]
    assert a["n_windows"] > 3
    for k in ("token_ids", "logp", "rank", "entropy"):
        np.testing.assert_array_equal(a[k], b[k])
    # the first token after the prepended <|endoftext|> and a token deep in the document agree
    # with one model call on their own context
    import torch

    from gpt2guard.detector.models import eos_id

    with torch.no_grad():
        x = torch.tensor([[eos_id(scorer)] + ids[:5].tolist()])
        logp = torch.log_softmax(scorer.model(x).logits[0].float(), -1)
    np.testing.assert_allclose(a["logp"][:5], logp[np.arange(5), ids[:5]].numpy(), rtol=1e-4, atol=1e-5)


# --- the bounded path: per-document sums, streamed windows ------------------------------------

LONG = " ".join(f"w{i % 97} and {i % 13}." for i in range(900))  # thousands of tokens: many windows


def _uncached(scorer, reference=None, **kw):
    from gpt2guard.detector import Scorer

    return Scorer(scorer, reference, cache=False, **kw)


@pytest.mark.parametrize("n_tokens,pieces", [(0, 1), (1, 1), (5, 3), (64, 1), (65, 2), (200, 7), (1000, 13)])
def test_streamed_windows_are_the_planned_windows(n_tokens, pieces):
    from gpt2guard.detector.windows import iter_window_ids, plan_windows

    rng = np.random.default_rng(n_tokens)
    tokens = rng.integers(1, 500, n_tokens).astype(np.int32)
    ids = np.concatenate([[0], tokens])
    cuts = np.sort(rng.choice(np.arange(1, max(n_tokens, 2)), size=min(pieces - 1, max(n_tokens - 1, 0)),
                              replace=False))
    got = list(iter_window_ids(iter(np.split(tokens, cuts)), 64, eos=0))
    assert [w for w, _, _ in got] == plan_windows(n_tokens, 64)
    for w, fed, targets in got:
        np.testing.assert_array_equal(fed, ids[w.start:w.stop])
        np.testing.assert_array_equal(targets, tokens[w.start + w.first:w.stop])


@pytest.mark.parametrize("with_reference", [False, True])
def test_a_long_document_streamed_to_sums_scores_as_its_token_arrays(tiny_pair, monkeypatch, with_reference):
    """A multi-window document tokenised in pieces and scored window by window into sums
    gives every method's score of the full per-token record, and the same counts."""
    from gpt2guard.detector import encode, list_methods

    scorer, reference = tiny_pair
    ref = reference if with_reference else None
    full = _uncached(scorer, ref).score([LONG])[0]
    monkeypatch.setattr(encode, "DEFAULT_CHUNK_CHARS", 1000)  # streamed, in many pieces
    (sums,) = _uncached(scorer, ref, batch_tokens=300).score_sums([LONG])
    assert full.n_windows > 10 and (sums.n_tokens, sums.n_windows) == (full.n_tokens, full.n_windows)
    assert sums.has_reference == with_reference and sums.text_hash == full.text_hash
    for name in list_methods(with_reference=with_reference):
        m = get_method_(name)
        assert m(sums) == pytest.approx(m(full), rel=1e-5, abs=1e-6), name


def get_method_(name):
    from gpt2guard.detector import get_method

    return get_method(name)


def test_streamed_sums_respect_max_tokens(tiny_pair, monkeypatch):
    from gpt2guard.detector import encode

    scorer, _ = tiny_pair
    full = _uncached(scorer, max_tokens=700).score([LONG])[0]
    monkeypatch.setattr(encode, "DEFAULT_CHUNK_CHARS", 500)
    (sums,) = _uncached(scorer, max_tokens=700).score_sums([LONG])
    assert "truncated" in full.flags and "truncated" in sums.flags
    assert sums.n_tokens == full.n_tokens == 700 and sums.n_windows == full.n_windows
    assert get_method_("logrank")(sums) == pytest.approx(get_method_("logrank")(full), rel=1e-5)


def test_zero_shot_verdicts_of_a_long_document_in_the_bounded_path(tiny_pair, monkeypatch):
    """ZeroShotDetector.verdicts scores to sums (no per-token arrays) and decides as the full
    record decides, for duplicates and unscorable inputs too."""
    from gpt2guard.detector.zeroshot import ZeroShotDetector

    scorer, reference = tiny_pair
    det = ZeroShotDetector("binoculars", "micro", threshold=-1.0)
    det._scorer = _uncached(scorer, reference)
    docs = [LONG, "", LONG, "A short one about files and names, sorted in arbitrary order."]
    full = det.verdicts(docs, stats=det.scorer.score(docs))
    monkeypatch.setattr(det.scorer, "score", lambda texts: pytest.fail("per-token records were built"))
    from gpt2guard.detector import encode

    monkeypatch.setattr(encode, "DEFAULT_CHUNK_CHARS", 2000)
    bounded = det.verdicts(docs)
    for a, b in zip(full, bounded):
        assert (a.decision, a.n_tokens, a.n_windows, a.flags) == (b.decision, b.n_tokens, b.n_windows, b.flags)
        assert (math.isnan(a.score) and math.isnan(b.score)) or b.score == pytest.approx(a.score, rel=1e-5)
    assert bounded[0].n_windows > 10 and bounded[1].decision == "abstain"


def test_sums_are_cached_under_their_own_key_and_small(tiny_pair, tmp_path, monkeypatch):
    from gpt2guard.detector import Scorer, StatsCache, scoring

    scorer, _ = tiny_pair
    cache = StatsCache(tmp_path)
    s = Scorer(scorer, cache=cache)
    assert s.sums_settings["view"] == "sums" and "view" not in s.settings
    (first,) = s.score_sums([LONG])
    sums_file = cache.path(first.text_hash, s.sums_settings)
    assert sums_file.is_file() and sums_file.stat().st_size < 4096
    assert not cache.path(first.text_hash, s.settings).exists()  # no per-token record was written
    assert cache.get(first.text_hash, s.settings) is None  # a sums file never reads as a full record
    monkeypatch.setattr(scoring, "score_token_ids", lambda *a, **k: pytest.fail("scored again"))
    (again,) = s.score_sums([LONG])
    assert again.sums == first.sums and again.n_windows == first.n_windows


def test_sums_reuse_a_small_cached_full_record(tiny_pair, tmp_path, monkeypatch):
    from gpt2guard.detector import Scorer, StatsCache, scoring

    scorer, _ = tiny_pair
    s = Scorer(scorer, cache=StatsCache(tmp_path))
    (full,) = s.score([LONG])
    monkeypatch.setattr(scoring, "score_token_ids", lambda *a, **k: pytest.fail("scored again"))
    (sums,) = s.score_sums([LONG])
    assert sums.n_tokens == full.n_tokens and sums.sums == full.sums().sums


def test_mean_ref_is_exactly_minus_entropy(tiny_pair, texts):
    """The engine's E_p[log p] is the float negation of the entropy, bit for bit (so the sums
    path does not need it separately)."""
    from gpt2guard.detector import score_token_ids

    scorer, _ = tiny_pair
    out = score_token_ids([np.array(scorer.tokenizer(t)["input_ids"]) for t in texts], scorer)
    for a in out:
        assert np.array_equal(a["mean_ref"], -a["entropy"])


def test_html_report_renders_the_first_tokens_of_a_long_record(tiny_pair):
    """html_report(max_tokens=N) shows N tokens of a longer record, says so, and computes the
    alternatives for those N only."""
    import re

    from gpt2guard.detector.report_html import html_report
    from gpt2guard.detector.verdict import decide

    scorer, _ = tiny_pair
    (stats,) = _uncached(scorer).score([LONG])
    v = decide(0, "long", 1.0, None, 0.0, stats.n_tokens, stats.n_windows, stats.flags, 16, method="logrank",
               scorer="tiny")
    page = html_report([v], [stats], scorer, max_tokens=50)
    assert len(re.findall(r'<span class="tok ', page)) == 50
    assert f"Showing the first 50 of {stats.n_tokens:,} tokens" in page
    whole = html_report([v], [stats], scorer, max_tokens=stats.n_tokens)
    assert "Showing" not in whole and len(re.findall(r'<span class="tok ', whole)) == stats.n_tokens

"""Huge documents in bounded memory: the piecewise paths give exactly what the whole-text
paths give (checked here on normal documents by making the pieces small); the memory and
time figures are in bench/bench_large_docs.py."""

from __future__ import annotations

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

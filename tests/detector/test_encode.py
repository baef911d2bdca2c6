"""Tokenising long documents in pieces gives exactly the tokens of the whole text."""

import numpy as np

from gpt2guard.detector.encode import encode_texts, split_for_encoding


def test_split_pieces_rejoin_and_cut_only_at_safe_spaces():
    text = "alpha  beta\n\ngamma delta, epsilon. " * 50
    pieces = split_for_encoding(text, 37)
    assert "".join(pieces) == text and len(pieces) > 10
    for p in pieces[1:]:
        assert p[0] == " " and not p[1].isspace()


def test_chunked_encoding_equals_whole_encoding(tokenizer):
    text = ("It returns  a list of   names, sorted (in arbitrary order); it raises\n\nOSError when 12,345 "
            "paths don't exist.\tTabs\t and  'quotes' stay. <|endoftext|> ") * 30
    whole = encode_texts(tokenizer, [text], chunk_chars=10 ** 9)[0]
    for chunk in (50, 173, 1000):
        np.testing.assert_array_equal(encode_texts(tokenizer, [text, "short"], chunk_chars=chunk)[0], whole)


def test_special_token_text_is_not_the_control_token(tokenizer):
    ids = encode_texts(tokenizer, ["a <|endoftext|> b"])[0]
    assert tokenizer.eos_token_id not in ids.tolist()
    assert tokenizer.decode(ids.tolist()) == "a <|endoftext|> b"

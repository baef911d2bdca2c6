"""Tokenise documents for scoring, long ones in pieces, in memory bounded by the piece size.

Special-token strings in a document (a literal ``<|endoftext|>``) are tokenised as plain
text, never as the control token: a document cannot end or restart its own scoring.

A document longer than ``chunk_chars`` characters is cut into pieces at spaces that sit
between two non-space characters and tokenised piece by piece. For GPT-2-style byte-level
BPE this gives exactly the tokens of the whole text: the pre-tokeniser never lets a token
cross such a space (a space only ever starts a pre-token, as in ``" word"``), and BPE
merges stay inside pre-tokens. The tokenizer then never holds more than one piece (its
encodings of a whole 50 MB text take gigabytes: token strings, offsets and masks), the
ids are kept as int32 arrays, and the time is linear in the text's length.

The tokenizer's working memory is about 170 bytes per character of what one call holds
(measured on GPT-2's byte-level BPE: 177 MB for a 1 M-character piece, 7 MB for 64k), so
pieces are 64k characters, and short texts are tokenised together in calls of at most that
many characters (smaller pieces are no slower: 64k-character pieces tokenise a long text
faster than 1 M ones).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

DEFAULT_CHUNK_CHARS = 1 << 16


def safe_spans(text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of consecutive pieces of ``text`` of about ``chunk_chars`` characters,
    cut at token-safe spaces (see the module docstring); no piece is copied.

    A piece runs past ``chunk_chars`` only until the next safe space (a text without one
    stays whole).
    """
    start, n = 0, len(text)
    while n - start > chunk_chars:
        cut = start + chunk_chars
        while cut < n - 1 and not (text[cut] == " " and not text[cut - 1].isspace() and not text[cut + 1].isspace()):
            cut += 1
        if cut >= n - 1:
            break
        yield start, cut
        start = cut
    yield start, n


def split_for_encoding(text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> list[str]:
    """The pieces of :func:`safe_spans` as strings."""
    return [text[a:b] for a, b in safe_spans(text, chunk_chars)]


def _encoder(tokenizer):
    """``texts -> list of id lists`` without special tokens, special-token text as plain text."""
    return lambda batch: tokenizer(batch, add_special_tokens=False, split_special_tokens=True,
                                   return_attention_mask=False)["input_ids"] if batch else []


def iter_token_pieces(tokenizer, text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> Iterator[np.ndarray]:
    """Token ids of ``text``, one int32 array per piece (see the module docstring)."""
    encode = _encoder(tokenizer)
    for a, b in safe_spans(text, chunk_chars):
        yield np.asarray(encode([text[a:b]])[0], dtype=np.int32)


def count_tokens_streaming(tokenizer, text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> int:
    """Number of tokens of ``text``, counted piece by piece (memory bounded by one piece)."""
    return sum(len(ids) for ids in iter_token_pieces(tokenizer, text, chunk_chars))


def encode_texts(tokenizer, texts: list[str], chunk_chars: int = DEFAULT_CHUNK_CHARS,
                 max_tokens: int | None = None) -> list[np.ndarray]:
    """Token ids of each text (no special tokens added), as int32 arrays.

    Texts up to ``chunk_chars`` characters are tokenised together, in calls of at most
    ``chunk_chars`` characters (and at least one text); a longer text is tokenised piece by
    piece (see the module docstring), so the tokenizer's working memory stays bounded by
    the piece size.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    texts : list of str
    chunk_chars : int
        Texts longer than this are tokenised in pieces.
    max_tokens : int, optional
        Stop tokenising a long text once it has more than this many tokens (its array then
        holds at least ``max_tokens + 1`` ids, so the caller sees that it was cut).
    """
    encode = _encoder(tokenizer)
    out: list[np.ndarray | None] = [None] * len(texts)
    short = [i for i, t in enumerate(texts) if len(t) <= chunk_chars]
    k = 0
    while k < len(short):
        call, size = [], 0
        while k < len(short) and (not call or size + len(texts[short[k]]) <= chunk_chars):
            size += len(texts[short[k]])
            call.append(short[k])
            k += 1
        for i, ids in zip(call, encode([texts[i] for i in call])):
            out[i] = np.asarray(ids, dtype=np.int32)
    for i, text in enumerate(texts):
        if out[i] is None:
            parts, n = [], 0
            for ids in iter_token_pieces(tokenizer, text, chunk_chars):
                parts.append(ids)
                n += len(ids)
                if max_tokens is not None and n > max_tokens:
                    break
            out[i] = np.concatenate(parts)
    return out

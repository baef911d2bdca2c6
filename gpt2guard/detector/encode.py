"""Tokenise documents for scoring, long ones in pieces.

Special-token strings in a document (a literal ``<|endoftext|>``) are tokenised as plain
text, never as the control token: a document cannot end or restart its own scoring.

A document longer than ``chunk_chars`` characters is cut into pieces at spaces that sit
between two non-space characters and tokenised piece by piece. For GPT-2-style byte-level
BPE this gives exactly the tokens of the whole text: the pre-tokeniser never lets a token
cross such a space (a space only ever starts a pre-token, as in ``" word"``), and BPE
merges stay inside pre-tokens.
"""

from __future__ import annotations

import numpy as np

DEFAULT_CHUNK_CHARS = 1 << 20


def split_for_encoding(text: str, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> list[str]:
    """Cut ``text`` into pieces of about ``chunk_chars`` characters at token-safe spaces.

    A piece runs past ``chunk_chars`` only until the next safe space (a text without one
    stays whole).
    """
    pieces, start, n = [], 0, len(text)
    while n - start > chunk_chars:
        cut = start + chunk_chars
        while cut < n - 1 and not (text[cut] == " " and not text[cut - 1].isspace() and not text[cut + 1].isspace()):
            cut += 1
        if cut >= n - 1:
            break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def encode_texts(tokenizer, texts: list[str], chunk_chars: int = DEFAULT_CHUNK_CHARS) -> list[np.ndarray]:
    """Token ids of each text (no special tokens added), as int64 arrays.

    Texts up to ``chunk_chars`` characters are tokenised together in one call; a longer text
    is tokenised piece by piece (see the module docstring), so the tokenizer's working memory
    stays bounded by the piece size.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    texts : list of str
    chunk_chars : int
        Texts longer than this are tokenised in pieces.
    """
    def encode(batch: list[str]) -> list[list[int]]:
        return tokenizer(batch, add_special_tokens=False, split_special_tokens=True)["input_ids"] if batch else []

    out: list[np.ndarray | None] = [None] * len(texts)
    short = [i for i, t in enumerate(texts) if len(t) <= chunk_chars]
    for i, ids in zip(short, encode([texts[i] for i in short])):
        out[i] = np.asarray(ids, dtype=np.int64)
    for i, text in enumerate(texts):
        if out[i] is None:
            parts = [np.asarray(encode([piece])[0], dtype=np.int64) for piece in split_for_encoding(text, chunk_chars)]
            out[i] = np.concatenate(parts)
    return out

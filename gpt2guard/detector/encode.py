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

    Parameters
    ----------
    tokenizer : transformers tokenizer
    texts : list of str
    chunk_chars : int
        Texts longer than this are tokenised in pieces (see the module docstring).
    """
    pieces, owner = [], []
    for i, text in enumerate(texts):
        parts = split_for_encoding(text, chunk_chars) if len(text) > chunk_chars else [text]
        pieces.extend(parts)
        owner.extend([i] * len(parts))
    ids = tokenizer(pieces, add_special_tokens=False, split_special_tokens=True)["input_ids"] if pieces else []
    out: list[list[int]] = [[] for _ in texts]
    for i, piece_ids in zip(owner, ids):
        out[i].extend(piece_ids)
    return [np.asarray(x, dtype=np.int64) for x in out]

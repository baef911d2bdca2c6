"""Flags for degenerate text: empty documents and repetition loops.

Flags mark a record, they never remove it: a detector may train on flagged text or leave it
out, but it always knows how much there was. The one function is pure, so the generator
calls it on token ids as it samples and the datasets part on text as it imports.
"""

from __future__ import annotations

import re
from typing import Sequence

FLAGS = ("empty", "repetition")
_CHAR_RUN = re.compile(r"(\S)\1{63,}")
# Texts longer than this many characters are judged on word hashes in numpy arrays: the same
# rules in memory linear in the word count at 8 bytes a word (a list of word strings and
# one of 4-gram tuples take over 100 bytes a word, gigabytes for a 50 MB document).
LARGE_TEXT = 1 << 20


def _repeat_share(units: Sequence, n: int) -> float:
    """Share of the n-grams of ``units`` that repeat an earlier one (0: none, near 1: a loop)."""
    grams = [tuple(units[i:i + n]) for i in range(len(units) - n + 1)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def _longest_run(units: Sequence) -> int:
    best = run = 0
    prev = object()
    for u in units:
        run = run + 1 if u == prev else 1
        prev = u
        best = max(best, run)
    return best


def _word_hashes(text: str, slice_chars: int = 1 << 20):
    """int64 hashes of the whitespace-separated words of ``text``, split a slice at a time
    (slices end at white space, so no word is cut)."""
    import numpy as np

    parts, start, n = [], 0, len(text)
    while start < n:
        stop = min(start + slice_chars, n)
        while stop < n and not text[stop].isspace():
            stop += 1
        words = text[start:stop].split()
        parts.append(np.fromiter(map(hash, words), np.int64, len(words)))
        start = stop
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _large_text_flags(text, n, max_repeat_share, tail, max_tail_share, max_run, min_units) -> list[str]:
    """:func:`degeneracy_flags` of a long text, on word hashes (equal n-grams are told apart
    by 64-bit hashes: a collision among millions of n-grams has a chance below 1e-6)."""
    import numpy as np

    h = _word_hashes(text)
    if not len(h):
        return ["empty"]
    if _CHAR_RUN.search(text):
        return ["repetition"]
    change = np.flatnonzero(np.diff(h) != 0)  # run boundaries
    runs = np.diff(np.concatenate([[-1], change, [len(h) - 1]]))
    if runs.max() >= max_run:
        return ["repetition"]
    if len(h) < min_units:
        return []
    with np.errstate(over="ignore"):
        grams = np.zeros(len(h) - n + 1, np.int64)
        for k in range(n):  # a polynomial hash of each n-gram, wrapping around in int64
            grams = grams * np.int64(1_000_003) + h[k: len(h) - n + 1 + k]
    if len(grams) and 1.0 - len(np.unique(grams)) / len(grams) > max_repeat_share:
        return ["repetition"]
    if len(h) >= tail and _repeat_share(h[-tail:].tolist(), n) > max_tail_share:
        return ["repetition"]
    return []


def degeneracy_flags(text_or_ids: str | Sequence[int], *, n: int = 4, max_repeat_share: float = 0.5,
                     tail: int = 64, max_tail_share: float = 0.75, max_run: int = 8, min_units: int = 16) -> list[str]:
    """Flags of degenerate text, from its text (words) or its token ids.

    Parameters
    ----------
    text_or_ids : str or sequence of int
        Text is split into whitespace-separated words; ids are used as they are.
    n : int
        Length of the n-grams whose repetition reveals a loop.
    max_repeat_share : float
        ``repetition`` when more than this share of all n-grams repeat an earlier one.
    tail, max_tail_share : int, float
        ``repetition`` also when more than ``max_tail_share`` of the n-grams among the last
        ``tail`` units repeat (a loop that starts late, as greedy decoding gives).
    max_run : int
        ``repetition`` when one unit occurs this many times in a row ("the the the...",
        a line of blank-line tokens); for text, also one character 64 times in a row.
    min_units : int
        Texts shorter than this are too short to judge n-gram repetition.

    Returns
    -------
    list of str
        A subset of :data:`FLAGS`, in that order: ``"empty"`` when there is no word or
        token, ``"repetition"`` for a loop.
    """
    if isinstance(text_or_ids, str) and len(text_or_ids) > LARGE_TEXT:
        return _large_text_flags(text_or_ids, n, max_repeat_share, tail, max_tail_share, max_run, min_units)
    if isinstance(text_or_ids, str):
        units: Sequence = text_or_ids.split()
        char_loop = bool(_CHAR_RUN.search(text_or_ids))
    else:
        units, char_loop = list(text_or_ids), False
    if not units:
        return ["empty"]
    loop = char_loop or _longest_run(units) >= max_run
    if not loop and len(units) >= min_units:
        loop = (_repeat_share(units, n) > max_repeat_share
                or (len(units) >= tail and _repeat_share(units[-tail:], n) > max_tail_share))
    return ["repetition"] if loop else []


def add_flags(record, **kwargs) -> None:
    """Add a record's degeneracy flags to ``record.flags``, keeping flags it already has."""
    for flag in degeneracy_flags(record.text, **kwargs):
        if flag not in record.flags:
            record.flags.append(flag)

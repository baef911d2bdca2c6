"""Token counts and token-boundary cuts with a family tokenizer, in batches.

``length`` in a record is its number of tokens under the tokenizer its set's manifest names
(``meta["tokenizer"]``). Hugging Face fast tokenizers encode a batch on every core, so
every function here takes lists of texts, and :func:`with_lengths` batches a stream.
"""

from __future__ import annotations

from itertools import islice
from typing import Iterable, Iterator

from gpt2guard.datasets.records import Record
from gpt2guard.paths import sha256_text

BATCH = 256
# A text longer than this many characters is tokenised in pieces (the tokenizer's encoding of
# a whole 50 MB text takes gigabytes), and a batch of texts stops growing at this many
# characters in all.
LONG_TEXT = 1 << 20


def get_tokenizer(family: str = "nano"):
    """The tokenizer of a model family (``nano``, ``micro``, ``gpt2`` or a model directory),
    building a builtin family on first use."""
    from gpt2guard.family import load_tokenizer

    return load_tokenizer(family)


def resolve_tokenizer(tokenizer=None, family: str | None = "nano"):
    """``tokenizer`` if given, else the tokenizer of ``family``."""
    return tokenizer if tokenizer is not None else get_tokenizer(family or "nano")


def _backend(tokenizer):
    """The ``tokenizers.Tokenizer`` behind a Hugging Face fast tokenizer (or itself)."""
    return getattr(tokenizer, "backend_tokenizer", tokenizer)


def tokenizer_info(tokenizer, family: str | None = None) -> dict:
    """What names a tokenizer in provenance: family, vocabulary size and a SHA-256 of its
    full definition (vocabulary, merges, normalisation)."""
    backend = _backend(tokenizer)
    return {"family": family, "vocab_size": backend.get_vocab_size(), "sha256": sha256_text(backend.to_str())}


def count_tokens(texts: list[str], tokenizer) -> list[int]:
    """Token counts of ``texts`` (no special tokens added), encoded as one batch."""
    if not texts:
        return []
    backend = _backend(tokenizer)
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    long = [i for i, t in enumerate(texts) if len(t) > LONG_TEXT]
    if not long:
        return [len(e.ids) for e in encode(texts, add_special_tokens=False)]
    from gpt2guard.detector.encode import safe_spans

    counts = count_tokens([t if i not in long else "" for i, t in enumerate(texts)], tokenizer)
    for i in long:  # in pieces cut at token-safe spaces: the same count, bounded memory
        counts[i] = sum(len(e.ids) for a, b in safe_spans(texts[i], LONG_TEXT)
                        for e in encode([texts[i][a:b]], add_special_tokens=False))
    return counts


def token_offsets(texts: list[str], tokenizer) -> list[list[tuple[int, int]]]:
    """Character ``(start, end)`` of every token of every text."""
    if not texts:
        return []
    return [e.offsets for e in _backend(tokenizer).encode_batch(texts, add_special_tokens=False)]


def cut_at_tokens(texts: list[str], n_tokens: list[int], tokenizer) -> list[tuple[str, str]]:
    """Split each text after its first ``n`` tokens: ``(head, tail)`` with ``head + tail == text``.

    The cut falls on a character boundary: when a token is part of a character split over
    several byte tokens, the whole character goes to the head. A text with at most ``n``
    tokens is returned whole as the head.
    """
    out = []
    for text, n, offsets in zip(texts, n_tokens, token_offsets(texts, tokenizer)):
        if n >= len(offsets):
            out.append((text, ""))
            continue
        end = offsets[n - 1][1] if n > 0 else 0
        out.append((text[:end], text[end:]))
    return out


def batched(items: Iterable, size: int = BATCH) -> Iterator[list]:
    """Consecutive lists of at most ``size`` items."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _batched_by_size(records: Iterable[Record], size: int, max_chars: int) -> Iterator[list]:
    """Consecutive lists of at most ``size`` records and, past one record, ``max_chars`` characters."""
    chunk, chars = [], 0
    for rec in records:
        if chunk and (len(chunk) >= size or chars + len(rec.text) > max_chars):
            yield chunk
            chunk, chars = [], 0
        chunk.append(rec)
        chars += len(rec.text)
    if chunk:
        yield chunk


def with_lengths(records: Iterable[Record], tokenizer, keep_existing: bool = False,
                 batch_size: int = BATCH) -> Iterator[Record]:
    """Stream ``records`` with ``length`` set to their token count, counted in batches.

    Parameters
    ----------
    keep_existing : bool
        Keep a length already present (e.g. OpenAI's GPT-2 counts) and count only
        missing ones; by default every length is counted again with ``tokenizer``.
    """
    for chunk in _batched_by_size(records, batch_size, 8 * LONG_TEXT):
        todo = [r for r in chunk if not (keep_existing and r.length is not None)]
        for rec, n in zip(todo, count_tokens([r.text for r in todo], tokenizer)):
            rec.length = n
        yield from chunk

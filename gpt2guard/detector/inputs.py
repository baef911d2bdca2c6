"""Documents to score from the command line: text files, JSONL sets, or standard input.

A ``.jsonl`` / ``.jsonl.gz`` file yields one document per record (named ``FILE:ID``); any
other file is one document (its raw bytes, so invalid UTF-8 or binary content reaches
:func:`~gpt2guard.detector.hygiene.prepare_text` and is flagged, never guessed at); ``-``
reads standard input as one document.

:func:`iter_documents` reads them lazily, one at a time, so a caller that scores them in
groups (:func:`batched`) holds only the group it is scoring; :func:`read_documents` reads
them all.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterable, Iterator

from gpt2guard.errors import GuardError

# A group of documents scored together (gpt2guard score): at most this many documents, closed
# once it holds this many characters or bytes.
BATCH_CHARS = 8 << 20
BATCH_DOCS = 1024


def check_paths(paths) -> None:
    """GuardError for a path that is a directory or does not exist (``-`` is standard input),
    before anything is read or loaded."""
    for p in paths:
        if p == "-":
            continue
        path = Path(p)
        if path.is_dir():
            raise GuardError(f"{p} is a directory: give text or JSONL files")
        if not path.exists():
            raise GuardError(f"{p} does not exist")


def iter_documents(paths, stdin=None, skip_bad: bool = False, log=None) -> Iterator[tuple[str, str | bytes]]:
    """``(name, document)`` for the given paths, read one at a time (see the module docstring).

    A bad JSONL line is a GuardError when it is reached, or with ``skip_bad`` skipped and
    counted through ``log``.
    """
    from gpt2guard.datasets.jsonl import ReadStats, iter_jsonl

    check_paths(paths)
    for p in paths:
        if p == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            yield "-", stream.read()
            continue
        path = Path(p)
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            stats = ReadStats()
            for rec in iter_jsonl(path, on_error="skip" if skip_bad else "raise", stats=stats):
                yield f"{p}:{rec.id}", rec.text
            skipped = sum(stats.skipped.values())
            if skipped and log:
                log(f"{p}: skipped {skipped} bad line(s)")
        else:
            yield str(p), path.read_bytes()


def read_documents(paths, stdin=None, skip_bad: bool = False, log=None) -> tuple[list[str], list[str | bytes]]:
    """``(names, documents)`` for the given paths, all read (see :func:`iter_documents`)."""
    names: list[str] = []
    docs: list[str | bytes] = []
    for name, doc in iter_documents(paths, stdin, skip_bad, log):
        names.append(name)
        docs.append(doc)
    if not docs:
        raise GuardError("no documents to score")
    return names, docs


def batched(documents: Iterable[tuple[str, str | bytes]], max_chars: int | None = None,
            max_docs: int | None = None) -> Iterator[tuple[list[str], list[str | bytes]]]:
    """Consecutive groups ``(names, documents)`` of at most ``max_docs`` documents (default
    :data:`BATCH_DOCS`), a group closed as soon as it reaches ``max_chars`` characters
    (default :data:`BATCH_CHARS`); GuardError if there is no document. A group is yielded
    before the next document is read."""
    max_chars = BATCH_CHARS if max_chars is None else max_chars
    max_docs = BATCH_DOCS if max_docs is None else max_docs
    names: list[str] = []
    docs: list[str | bytes] = []
    size, seen = 0, False
    for name, doc in documents:
        seen = True
        names.append(name)
        docs.append(doc)
        size += len(doc)
        del doc
        if len(docs) >= max_docs or size >= max_chars:
            yield names, docs
            names, docs, size = [], [], 0
    if docs:
        yield names, docs
    if not seen:
        raise GuardError("no documents to score")

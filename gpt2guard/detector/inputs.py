"""Documents to score from the command line: text files, JSONL sets, or standard input.

A ``.jsonl`` / ``.jsonl.gz`` file yields one document per record (named ``FILE:ID``); any
other file is one document (its raw bytes, so invalid UTF-8 or binary content reaches
:func:`~gpt2guard.detector.hygiene.prepare_text` and is flagged, never guessed at); ``-``
reads standard input as one document.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gpt2guard.errors import GuardError


def read_documents(paths, stdin=None, skip_bad: bool = False, log=None) -> tuple[list[str], list[str | bytes]]:
    """``(names, documents)`` for the given paths (see the module docstring).

    A bad JSONL line is a GuardError, or with ``skip_bad`` skipped and counted through ``log``.
    """
    from gpt2guard.datasets.jsonl import ReadStats, iter_jsonl

    names: list[str] = []
    docs: list[str | bytes] = []
    for p in paths:
        if p == "-":
            stream = stdin if stdin is not None else sys.stdin.buffer
            data = stream.read()
            names.append("-")
            docs.append(data)
            continue
        path = Path(p)
        if path.is_dir():
            raise GuardError(f"{p} is a directory: give text or JSONL files")
        if path.name.endswith((".jsonl", ".jsonl.gz")):
            stats = ReadStats()
            for rec in iter_jsonl(path, on_error="skip" if skip_bad else "raise", stats=stats):
                names.append(f"{p}:{rec.id}")
                docs.append(rec.text)
            skipped = sum(stats.skipped.values())
            if skipped and log:
                log(f"{p}: skipped {skipped} bad line(s)")
        else:
            names.append(str(p))
            docs.append(path.read_bytes())
    if not docs:
        raise GuardError("no documents to score")
    return names, docs

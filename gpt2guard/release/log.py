"""The decision log: an append-only JSONL file whose entries are chained by SHA-256.

Every entry carries ``prev`` (the hash of the entry before it; 64 zeros for the first) and
``hash`` (the SHA-256 of its own canonical JSON without ``hash``). Changing, removing or
reordering any entry breaks the chain at that point, which :func:`verify_log` reports.
Appends are flushed and fsynced one line at a time, so a crash loses at most the entry
being written; :func:`read_log` drops a torn last line (and only a last line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_json

GENESIS = "0" * 64


def entry_hash(entry: dict) -> str:
    """The SHA-256 of an entry's canonical JSON, its ``hash`` key left out."""
    return sha256_json({k: v for k, v in entry.items() if k != "hash"})


def read_log(path: str | Path) -> list[dict]:
    """The entries of a log (empty when there is none); a torn final line is ignored."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    entries = []
    for i, line in enumerate(lines):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # a crash mid-append: the entry was never committed
                break
            raise GuardError(f"{path}:{i + 1}: the decision log has a line that is not JSON") from None
    return entries


def verify_log(path: str | Path) -> list[str]:
    """Problems with a log's chain, one line each; an empty list means intact."""
    problems, prev = [], GENESIS
    for i, e in enumerate(read_log(path), 1):
        if e.get("prev") != prev:
            problems.append(f"entry {i}: prev does not match the hash of entry {i - 1}")
        if e.get("hash") != entry_hash(e):
            problems.append(f"entry {i}: content does not match its hash (altered)")
        prev = e.get("hash")
    return problems


class DecisionLog:
    """Append entries to a chained log, continuing an existing one.

    Parameters
    ----------
    path : path
        The JSONL file; created on the first append.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        problems = verify_log(self.path)
        if problems:
            raise GuardError(f"{self.path}: the decision log is broken ({problems[0]}); refusing to append")
        self.entries = read_log(self.path)
        if self.path.is_file() and self.path.read_text(encoding="utf-8").count("\n") > len(self.entries):
            self._rewrite()  # drop the torn line so the next append starts on a fresh line

    @property
    def head(self) -> str:
        """The hash of the last entry."""
        return self.entries[-1]["hash"] if self.entries else GENESIS

    def _rewrite(self) -> None:
        from gpt2guard.paths import atomic_write_text

        atomic_write_text(self.path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries))

    def append(self, entry: dict) -> dict:
        """Chain ``entry`` to the log and write it durably; returns it with ``prev``/``hash``."""
        entry = {**entry, "seq": len(self.entries) + 1, "prev": self.head}
        entry["hash"] = entry_hash(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.entries.append(entry)
        return entry

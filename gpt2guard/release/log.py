"""The decision log: an append-only JSONL file whose entries are chained by SHA-256.

Every entry carries ``prev`` (the hash of the entry before it; 64 zeros for the first) and
``hash`` (the SHA-256 of its own canonical JSON without ``hash``). Changing, removing or
reordering any entry breaks the chain at that point, which :func:`verify_log` reports;
removing the last entries does not, which is why ``release verify`` also requires one
decision per stage. Appends are flushed and fsynced one line at a time, so a crash loses at
most the entry being written: a last line without its newline that is not JSON is a torn
append, which :class:`DecisionLog` drops before continuing. Any other line that is not
UTF-8 JSON object text is an error naming the file and the line.

An append takes an exclusive ``flock`` on the log and checks that the entry last on disk is
the one this writer chained to, so two writers can never fork the log.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_json

GENESIS = "0" * 64


def entry_hash(entry: dict) -> str:
    """The SHA-256 of an entry's canonical JSON, its ``hash`` key left out."""
    return sha256_json({k: v for k, v in entry.items() if k != "hash"})


def _parse(path: Path, data: bytes) -> tuple[list[dict], int | None]:
    """Entries of a log's bytes, and the line number of a torn last append (None if none)."""
    lines = data.split(b"\n")
    complete = data.endswith(b"\n") or not data
    if complete:
        lines = lines[:-1]
    entries: list[dict] = []
    for i, raw in enumerate(lines, 1):
        last_unfinished = i == len(lines) and not complete
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if last_unfinished:
                return entries, i
            raise GuardError(f"{path}:{i}: not valid UTF-8 (byte {exc.start + 1} of the line); "
                             "the decision log is damaged") from None
        try:
            entry = json.loads(text)
        except json.JSONDecodeError as exc:
            if last_unfinished:  # a crash mid-append: the entry was never committed
                return entries, i
            raise GuardError(f"{path}:{i}: not JSON ({exc.msg} at column {exc.colno}); "
                             "the decision log is damaged") from None
        if not isinstance(entry, dict):
            raise GuardError(f"{path}:{i}: a {type(entry).__name__} where a JSON object (an entry) belongs; "
                             "the decision log is damaged")
        entries.append(entry)
    return entries, None


def _scan(path: Path) -> tuple[list[dict], int | None]:
    if not path.is_file():
        return [], None
    return _parse(path, path.read_bytes())


def read_log(path: str | Path) -> list[dict]:
    """The entries of a log (empty when there is none); a torn final append is left out.

    Raises
    ------
    GuardError
        ``FILE:LINE: ...`` for a line that is not UTF-8, not JSON or not an object.
    """
    return _scan(Path(path))[0]


def _chain_problems(entries: list[dict]) -> list[str]:
    problems, prev = [], GENESIS
    for i, e in enumerate(entries, 1):
        if e.get("prev") != prev:
            problems.append(f"entry {i}: prev does not match the hash of entry {i - 1}")
        if e.get("hash") != entry_hash(e):
            problems.append(f"entry {i}: content does not match its hash (altered)")
        prev = e.get("hash")
    return problems


def verify_log(path: str | Path) -> list[str]:
    """Problems with a log, one line each; an empty list means intact.

    A torn last append is reported too (a finished run has none); lines that are not JSON
    objects raise GuardError naming the line.
    """
    entries, torn = _scan(Path(path))
    problems = _chain_problems(entries)
    if torn is not None:
        problems.append(f"line {torn}: a torn, unfinished entry (the simulation was killed mid-append)")
    return problems


def chain_head(entries: list[dict]) -> str:
    """The hash of the last entry (64 zeros for an empty log)."""
    return entries[-1].get("hash", "") if entries else GENESIS


class DecisionLog:
    """Append entries to a chained log, continuing an existing one.

    Parameters
    ----------
    path : path
        The JSONL file; created on the first append.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        entries, torn = _scan(self.path)
        problems = _chain_problems(entries)
        if problems:
            raise GuardError(f"{self.path}: the decision log is broken ({problems[0]}); refusing to append")
        self.entries = entries
        if torn is not None:
            self._rewrite()  # drop the torn line so the next append starts on a fresh line

    @property
    def head(self) -> str:
        """The hash of the last entry."""
        return chain_head(self.entries)

    def _rewrite(self) -> None:
        from gpt2guard.paths import atomic_write_text

        atomic_write_text(self.path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries))

    def append(self, entry: dict) -> dict:
        """Chain ``entry`` to the log and write it durably; returns it with ``prev``/``hash``.

        Raises
        ------
        GuardError
            When the log on disk no longer ends with this writer's last entry (another
            writer appended, or the file was edited): appending would fork the chain.
        """
        entry = {**entry, "seq": len(self.entries) + 1, "prev": self.head}
        entry["hash"] = entry_hash(entry)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file closes
            f.seek(0)
            on_disk, torn = _parse(self.path, f.read())
            if torn is not None or len(on_disk) != len(self.entries) or chain_head(on_disk) != self.head:
                raise GuardError(f"{self.path}: the decision log changed on disk since it was read (another "
                                 "simulation writing to the same run?); refusing to fork it")
            f.write((json.dumps(entry, sort_keys=True) + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self.entries.append(entry)
        return entry

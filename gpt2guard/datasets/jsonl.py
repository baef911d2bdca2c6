"""Stream JSONL files (plain or gzip) line by line, with an explicit policy for bad lines.

A bad line is one that is not UTF-8, not JSON, not a JSON object, or lacks a string text
field. By default the first bad line stops the read with a :class:`GuardError` naming the
file and line; with ``on_error="skip"`` it is skipped and counted, by reason, in a
:class:`ReadStats` that the writer stores in the manifest and the card reports. Blank lines
hold no record and are counted as such. Memory stays flat whatever the file size.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from gpt2guard.datasets.records import Record
from gpt2guard.errors import GuardError

ON_ERROR = ("raise", "skip")
MAX_EXAMPLES = 20
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass
class ReadStats:
    """What a read saw: lines, records, blank lines, and skipped lines by reason.

    ``examples`` keeps the first :data:`MAX_EXAMPLES` skipped lines as
    ``{"file", "line", "reason", "detail"}`` so a user can look at them.
    """

    lines: int = 0
    records: int = 0
    blank: int = 0
    skipped: Counter = field(default_factory=Counter)
    examples: list = field(default_factory=list)

    def skip(self, path, lineno: int, reason: str, detail: str) -> None:
        self.skipped[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"file": str(path), "line": lineno, "reason": reason, "detail": detail})

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    def to_dict(self) -> dict:
        return {"lines": self.lines, "records": self.records, "blank": self.blank,
                "skipped": dict(sorted(self.skipped.items())), "examples": list(self.examples)}


def open_binary(path: str | Path):
    """Open a file for reading bytes, decompressing it when it starts with the gzip magic."""
    path = Path(path)
    if path.is_dir():
        raise GuardError(f"{path} is a directory, not a JSONL file")
    if not path.is_file():
        raise GuardError(f"no such file: {path}")
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.BufferedReader(gzip.open(path, "rb"), buffer_size=1 << 20)
    return open(path, "rb", buffering=1 << 20)


def _decode_line(raw: bytes) -> tuple[object, str | None, str | None]:
    """``(object, reason, detail)`` of one line; ``reason`` is None when it parsed."""
    try:
        line = raw.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, "invalid_utf8", f"invalid UTF-8 at byte {exc.start}"
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, "invalid_json", f"{exc.msg} at column {exc.colno}"
    except (ValueError, RecursionError) as exc:
        return None, "invalid_json", str(exc)[:80]
    if not isinstance(obj, dict):
        return None, "not_object", f"a JSON {type(obj).__name__}, not an object"
    return obj, None, None


def iter_objects(path: str | Path, on_error: str = "raise", stats: ReadStats | None = None
                 ) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for every JSON object line of a JSONL file.

    Parameters
    ----------
    path : path
        A ``.jsonl`` file, plain or gzip-compressed (detected by content, not name).
    on_error : {"raise", "skip"}
        What a line that is not UTF-8 JSON holding an object does: stop with a
        GuardError naming file and line, or be skipped and counted in ``stats``.
    stats : ReadStats, optional
        Updated in place (lines, blank lines, skipped lines by reason).
    """
    if on_error not in ON_ERROR:
        raise GuardError(f"on_error must be one of {', '.join(ON_ERROR)}, not {on_error!r}")
    stats = stats if stats is not None else ReadStats()
    lineno = 0
    try:
        with open_binary(path) as f:
            for lineno, raw in enumerate(f, 1):
                stats.lines += 1
                if raw.isspace():
                    stats.blank += 1
                    continue
                obj, reason, detail = _decode_line(raw)
                # a \ud800-\udfff escape parses into a string no UTF-8 can hold: a quick scan finds
                # a candidate, a full check decides
                if reason is None and _SURROGATE_ESCAPE.search(raw) and _has_surrogate(obj):
                    obj, reason, detail = None, "invalid_utf8", "a \\u escape encodes a lone surrogate"
                if reason is not None:
                    bad_line(path, lineno, reason, detail, on_error, stats)
                    continue
                yield lineno, obj
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise GuardError(f"{path}: corrupt or truncated gzip data after line {lineno} ({exc})") from None


def _has_surrogate(obj) -> bool:
    """Whether a parsed object holds a string that cannot be written as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def bad_line(path, lineno: int, reason: str, detail: str, on_error: str, stats: ReadStats) -> None:
    """Apply the bad-line policy: raise GuardError, or count the line as skipped."""
    if on_error == "raise":
        raise GuardError(f"{path}:{lineno}: {reason.replace('_', ' ')}: {detail} "
                         "(--skip-bad skips and counts such lines)")
    stats.skip(path, lineno, reason, detail)


def iter_jsonl(path: str | Path, *, text_field: str = "text", id_field: str = "id", source_field: str = "source",
               on_error: str = "raise", stats: ReadStats | None = None) -> Iterator[Record]:
    """Stream the records of a JSONL file: gpt-2-output-dataset files or any JSONL with text.

    Parameters
    ----------
    path : path
        The file, plain or gzip.
    text_field : str
        Key holding the text (``"text"`` in OpenAI's files).
    id_field : str
        Key holding the id; a line without one gets its 0-based line index, so ids stay
        stable when the file is read again.
    source_field : str
        Key naming the document's source (used for leak-free splits) when ``source``
        itself is absent.
    on_error : {"raise", "skip"}
        Policy for bad lines, including a missing or non-string text field.
    stats : ReadStats, optional
        Updated in place.

    Yields
    ------
    Record
        Unknown keys are kept in ``Record.extra``. A ``length`` that is not a
        non-negative integer is moved to ``extra["invalid_length"]`` (kept, not lost) and
        ``length`` set to None, to be counted again with a tokenizer.
    """
    stats = stats if stats is not None else ReadStats()
    for lineno, obj in iter_objects(path, on_error, stats):
        text = obj.get(text_field)
        if not isinstance(text, str):
            reason = "missing_text" if text_field not in obj else "text_not_string"
            detail = (f"no field {text_field!r}" if text is None and text_field not in obj
                      else f"field {text_field!r} is {type(text).__name__}")
            bad_line(path, lineno, reason, detail, on_error, stats)
            continue
        rec = Record.from_dict(obj, text_field)
        if id_field != "id":
            rec.id = obj.get(id_field)
        if rec.id is None:
            rec.id = lineno - 1
        if rec.source is None and source_field != "source" and obj.get(source_field) is not None:
            rec.source = str(obj[source_field])
        if rec.length is not None and (type(rec.length) is not int or rec.length < 0):
            rec.extra["invalid_length"] = rec.length
            rec.length = None
        stats.records += 1
        yield rec

"""Validate a file or a set against the record schema, streaming.

Checks every line: UTF-8, JSON object, a string text field, an id unique in the file (or
set), ``length`` a non-negative integer, ``ended`` a boolean, ``label`` human or machine,
``flags`` a list of strings, ``provenance`` an object. With a tokenizer, each ``length`` is
also compared with a fresh count. For a set with a manifest, every shard's record count and
SHA-256 are checked too. A file or set named ``<set>.<split>`` with split ``train``,
``valid`` or ``test`` fails when any of its texts is also in another of those splits of the
same set in its directory (:func:`~gpt2guard.datasets.overlap.split_overlap`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from gpt2guard.datasets.jsonl import ReadStats, iter_objects
from gpt2guard.datasets.names import OPENAI_SPLITS, parse_file
from gpt2guard.datasets.overlap import describe, split_overlap
from gpt2guard.datasets.records import LABELS
from gpt2guard.datasets.sets import read_manifest
from gpt2guard.datasets.tokens import count_tokens, resolve_tokenizer
from gpt2guard.errors import GuardError

MAX_EXAMPLES = 20


class _Report:
    def __init__(self):
        self.errors: Counter = Counter()
        self.examples: list[dict] = []
        self.records = 0
        self.ids: set = set()

    def add(self, where: str, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"where": where, "problem": kind, "detail": detail})


def _check_object(obj: dict, text_field: str, where: str, rep: _Report) -> None:
    text = obj.get(text_field)
    if not isinstance(text, str):
        rep.add(where, "missing_text" if text_field not in obj else "text_not_string", f"field {text_field!r}")
    rid = obj.get("id")
    if rid is None or isinstance(rid, (bool, float, list, dict)):
        rep.add(where, "bad_id", f"id {rid!r} is not an integer or string")
    elif rid in rep.ids:
        rep.add(where, "duplicate_id", f"id {rid!r} seen before")
    else:
        rep.ids.add(rid)
    length = obj.get("length")
    if "length" not in obj:
        rep.add(where, "missing_length", "no length field")
    elif type(length) is not int or length < 0:
        rep.add(where, "bad_length", f"length {length!r} is not a non-negative integer")
    if "ended" in obj and obj["ended"] is not None and not isinstance(obj["ended"], bool):
        rep.add(where, "bad_ended", f"ended {obj['ended']!r} is not true or false")
    if "label" in obj and obj["label"] not in LABELS:
        rep.add(where, "bad_label", f"label {obj['label']!r} is not one of {', '.join(LABELS)}")
    flags = obj.get("flags", [])
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        rep.add(where, "bad_flags", "flags is not a list of strings")
    if "provenance" in obj and not isinstance(obj["provenance"], dict):
        rep.add(where, "bad_provenance", "provenance is not an object")


def _check_file(path: Path, text_field: str, tokenizer, rep: _Report, stats: ReadStats,
                want_hash: bool = False) -> tuple[int, str]:
    """Check one file's lines; return its record count and (if wanted) SHA-256."""
    todo = []

    def flush():
        texts = [t for _, t, _ in todo]
        for (where, _, length), n in zip(todo, count_tokens(texts, tokenizer)):
            if length != n:
                rep.add(where, "length_mismatch", f"length {length}, tokenizer counts {n}")
        todo.clear()

    n = 0
    for lineno, obj in iter_objects(path, on_error="skip", stats=stats):
        n += 1
        where = f"{path}:{lineno}"
        _check_object(obj, text_field, where, rep)
        if tokenizer is not None and isinstance(obj.get(text_field), str) and type(obj.get("length")) is int \
                and obj["length"] >= 0:
            todo.append((where, obj[text_field], obj["length"]))
            if len(todo) >= 256:
                flush()
    if tokenizer is not None:
        flush()
    rep.records += n
    if not want_hash:
        return n, ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return n, h.hexdigest()


def validate(path, *, text_field: str = "text", tokenizer=None, family: str | None = None) -> dict:
    """Validate a JSONL file, or a whole set given its manifest (``<set>.<split>.manifest.json``).

    Parameters
    ----------
    path : path
        A ``.jsonl`` / ``.jsonl.gz`` file, or a manifest.
    text_field : str
        The text key.
    tokenizer, family : optional
        When either is given, every ``length`` is compared with the count of
        ``tokenizer`` (or of model family ``family``'s tokenizer).

    Returns
    -------
    dict
        ``ok``, ``records``, ``lines``, ``errors`` (count per problem) and ``examples``
        (the first problems with file and line).
    """
    path = Path(path)
    if not path.exists():
        raise GuardError(f"no such file: {path}")
    if tokenizer is None and family:
        tokenizer = resolve_tokenizer(None, family)
    rep, stats = _Report(), ReadStats()
    parsed = parse_file(path.name)
    if path.name.endswith(".manifest.json") and parsed:
        manifest = read_manifest(path.parent, *parsed)
        if not manifest.get("complete"):
            rep.add(str(path), "incomplete", "the job writing this set has not finished")
        for entry in manifest["shards"]:
            shard = path.parent / entry["file"]
            if not shard.is_file():
                rep.add(str(shard), "missing_shard", "listed in the manifest but missing")
                continue
            n, digest = _check_file(shard, text_field, tokenizer, rep, stats, want_hash=True)
            if n != entry["records"]:
                rep.add(str(shard), "count_mismatch", f"{n} records, manifest says {entry['records']}")
            if digest != entry["sha256"]:
                rep.add(str(shard), "sha256_mismatch", "content differs from the manifest's SHA-256")
        if rep.records != manifest["records"]:
            rep.add(str(path), "count_mismatch", f"{rep.records} records, manifest says {manifest['records']}")
    else:
        _check_file(path, text_field, tokenizer, rep, stats)
    if parsed and parsed[1] in OPENAI_SPLITS and text_field == "text":
        overlap = split_overlap(path.parent, parsed[0])
        if overlap["records"].get(parsed[1]):
            rep.errors["shared_across_splits"] += overlap["records"][parsed[1]]
            rep.examples.append({"where": str(path), "problem": "shared_across_splits",
                                 "detail": describe(overlap)})
    rep.errors.update(stats.skipped)  # lines that are not UTF-8 JSON objects
    bad_lines = [{"where": f"{e['file']}:{e['line']}", "problem": e["reason"], "detail": e["detail"]}
                 for e in stats.examples]
    rep.examples = (bad_lines + rep.examples)[:MAX_EXAMPLES]
    return {"path": str(path), "ok": not rep.errors, "records": rep.records, "lines": stats.lines,
            "blank_lines": stats.blank, "errors": dict(sorted(rep.errors.items())), "examples": rep.examples}

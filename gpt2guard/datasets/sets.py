"""Open a set by directory, set name and split, whatever its layout (see :mod:`.names`).

The same call reads a directory of OpenAI's gpt-2-output-dataset files (``webtext.test.jsonl``,
``small-117M-k40.train.jsonl.gz``...) and the sets gpt2guard writes, single-file or sharded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from gpt2guard.datasets.jsonl import ReadStats, iter_jsonl
from gpt2guard.datasets.names import check_name, data_file, manifest_file, parse_file, split_order
from gpt2guard.datasets.records import Record
from gpt2guard.errors import GuardError

MANIFEST_FORMAT = "gpt2guard.set/1"


def read_manifest(directory: str | Path, set_name: str, split: str) -> dict | None:
    """The manifest of a set's split, or None when it has none (OpenAI's files have none).

    Raises GuardError when the manifest exists but is not a gpt2guard manifest.
    """
    path = Path(directory) / manifest_file(set_name, split)
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise GuardError(f"{path} is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise GuardError(f"{path} is not a gpt2guard set manifest (format {MANIFEST_FORMAT})")
    return manifest


def list_sets(directory: str | Path) -> dict[str, list[str]]:
    """Every ``set -> [splits]`` found in a directory: sets by name, splits train, valid,
    test first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise GuardError(f"no such directory: {directory}")
    found: dict[str, set[str]] = {}
    for p in directory.iterdir():
        parsed = parse_file(p.name)
        if parsed and p.is_file():
            found.setdefault(parsed[0], set()).add(parsed[1])
    return {k: sorted(v, key=split_order) for k, v in sorted(found.items())}


def set_files(directory: str | Path, set_name: str, split: str, allow_incomplete: bool = False) -> list[Path]:
    """The data files of one split of a set, in order.

    A set with a manifest is read from the shards it lists; otherwise
    ``<set>.<split>.jsonl`` or ``<set>.<split>.jsonl.gz`` is the whole set.

    Parameters
    ----------
    allow_incomplete : bool
        Accept a set whose writing job has not finished, reading its finished shards only;
        by default such a set is refused, so a half-written set is never mistaken for
        a whole one.
    """
    directory = Path(directory)
    check_name(set_name)
    check_name(split, "split")
    manifest = read_manifest(directory, set_name, split)
    if manifest is not None:
        if not manifest.get("complete") and not allow_incomplete:
            raise GuardError(f"set {set_name}.{split} in {directory} is incomplete: the job writing it was "
                             "interrupted; run it again to resume")
        files = [directory / s["file"] for s in manifest["shards"]]
        for f in files:
            if not f.is_file():
                raise GuardError(f"{f} is listed in {manifest_file(set_name, split)} but missing")
        return files
    for gz in (False, True):
        path = directory / data_file(set_name, split, gz)
        if path.is_file():
            return [path]
    available = list_sets(directory) if directory.is_dir() else {}
    listing = "; ".join(f"{s}: {', '.join(sp)}" for s, sp in available.items()) or "none"
    raise GuardError(f"no set {set_name!r} split {split!r} in {directory} (found {listing})")


def open_set(directory: str | Path, set_name: str, split: str, *, text_field: str = "text", on_error: str = "raise",
             stats: ReadStats | None = None, allow_incomplete: bool = False) -> Iterator[Record]:
    """Stream the records of one split of a set, in file order.

    Parameters
    ----------
    directory : path
        A directory of OpenAI's files or of gpt2guard sets.
    set_name, split : str
        e.g. ``"small-117M-k40"`` and ``"test"``.
    text_field, on_error, stats
        As for :func:`~gpt2guard.datasets.jsonl.iter_jsonl`.
    allow_incomplete : bool
        As for :func:`set_files`.

    Yields
    ------
    Record
    """
    stats = stats if stats is not None else ReadStats()
    for path in set_files(directory, set_name, split, allow_incomplete):
        yield from iter_jsonl(path, text_field=text_field, on_error=on_error, stats=stats)


def set_meta(directory: str | Path, set_name: str, split: str) -> dict:
    """The ``meta`` a set's manifest carries (source, tokenizer, preprocessing steps), or ``{}``."""
    manifest = read_manifest(directory, set_name, split)
    return dict(manifest.get("meta") or {}) if manifest else {}


def derived_meta(directory: str | Path, set_name: str, split: str, step: dict) -> dict:
    """Meta for a set made from another: the input's meta with ``step`` appended to its
    ``steps`` (each step names its operation, input and parameters)."""
    meta = set_meta(directory, set_name, split)
    meta["steps"] = list(meta.get("steps") or []) + [step]
    return meta

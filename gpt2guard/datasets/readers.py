"""Readers of human and machine text, each yielding :class:`Record` objects as a stream.

* gpt-2-output-dataset directories, by set and split: :func:`~gpt2guard.datasets.sets.open_set`
* any JSONL with a text field: :func:`~gpt2guard.datasets.jsonl.iter_jsonl`
* a directory of ``.txt`` files: :func:`read_txt_dir`
* the builtin human corpus: :func:`read_builtin`

:func:`read_source` picks one of them for a path, as ``gpt2guard datasets import`` does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from gpt2guard.datasets.jsonl import ReadStats, bad_line, iter_jsonl
from gpt2guard.datasets.names import OPENAI_SETS, OPENAI_SIZES
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import open_set
from gpt2guard.errors import GuardError

FORMATS = ("auto", "jsonl", "openai", "txt")


def read_txt_dir(directory: str | Path, on_error: str = "raise", stats: ReadStats | None = None,
                 pattern: str = "*.txt") -> Iterator[Record]:
    """One record per ``.txt`` file under ``directory`` (recursively, in sorted path order).

    The id and the source are the file's path relative to ``directory`` (so a split by
    source keeps a file whole); the text is the file's content, exactly. A file that is
    not UTF-8 is a bad line (line number of the first bad byte) under ``on_error``.
    """
    root = Path(directory)
    if not root.is_dir():
        raise GuardError(f"no such directory: {root}")
    stats = stats if stats is not None else ReadStats()
    paths = sorted(root.rglob(pattern), key=lambda p: p.relative_to(root).as_posix())
    for path in paths:
        if not path.is_file():
            continue
        data = path.read_bytes()
        stats.lines += 1
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            lineno = data[: exc.start].count(b"\n") + 1
            bad_line(path, lineno, "invalid_utf8", f"invalid UTF-8 at byte {exc.start}", on_error, stats)
            continue
        rel = path.relative_to(root).as_posix()
        stats.records += 1
        yield Record(id=rel, text=text, source=rel, ended=True)


def read_builtin(split: str | None = None, packages: tuple[str, ...] | None = None, seed: int = 0,
                 max_docs: int | None = None) -> Iterator[Record]:
    """The builtin human corpus as records (label ``human``, source = module, ended).

    Parameters
    ----------
    split : str, optional
        ``train``, ``valid`` or ``test``; all documents when None.
    packages, seed
        As for :func:`~gpt2guard.datasets.builtin.builtin_corpus`.
    max_docs : int, optional
        Take only the first documents of the corpus (before filtering by split).
    """
    from gpt2guard.datasets.builtin import DEFAULT_PACKAGES, SPLITS, builtin_corpus

    if split is not None and split not in SPLITS:
        raise GuardError(f"the builtin corpus has splits {', '.join(SPLITS)}, not {split!r}")
    docs = builtin_corpus(packages=DEFAULT_PACKAGES if packages is None else packages, seed=seed)
    for doc in docs[:max_docs] if max_docs else docs:
        if split is None or doc.split == split:
            yield doc_record(doc)


def doc_record(doc) -> Record:
    """The record of one builtin :class:`~gpt2guard.datasets.builtin.CorpusDoc`."""
    return Record(id=doc.id, text=doc.text, source=doc.source, label="human", ended=True)


def openai_provenance(set_name: str) -> tuple[str, dict | None]:
    """``(label, provenance)`` implied by the name of a gpt-2-output-dataset set."""
    if set_name == "webtext":
        return "human", None
    size = next(s for s in OPENAI_SIZES if set_name.startswith(s))
    method = set_name[len(size):].lstrip("-") or "pure"
    sampling = {"pure": {"method": "pure"}, "k40": {"method": "top_k", "top_k": 40},
                "nucleus": {"method": "nucleus"}}[method]
    return "machine", {"family": "gpt2", "size": size.split("-")[0], "params_name": size, "sampling": sampling,
                       "origin": "openai/gpt-2-output-dataset"}


def detect_format(src: str | Path, source_set: str | None = None) -> str:
    """``openai`` for a directory read by set name, ``txt`` for another directory, else ``jsonl``."""
    src = Path(src)
    if src.is_dir():
        return "openai" if source_set else "txt"
    return "jsonl"


def read_source(src: str | Path, fmt: str = "auto", *, source_set: str | None = None, source_split: str | None = None,
                text_field: str = "text", id_field: str = "id", source_field: str = "source",
                on_error: str = "raise", stats: ReadStats | None = None) -> Iterator[Record]:
    """Stream the records of any supported source.

    Parameters
    ----------
    src : path
        A JSONL file (plain or gzip), a directory of ``.txt`` files, or a directory of
        gpt-2-output-dataset files.
    fmt : {"auto", "jsonl", "openai", "txt"}
        ``auto`` follows :func:`detect_format`.
    source_set, source_split : str, optional
        The set and split to read from an OpenAI-layout directory. Records of OpenAI's
        sets get their label (``webtext`` is human, the rest machine) and, for machine
        sets, the size and sampling method as provenance.
    text_field, id_field, source_field, on_error, stats
        As for :func:`~gpt2guard.datasets.jsonl.iter_jsonl`.
    """
    if fmt not in FORMATS:
        raise GuardError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    fmt = detect_format(src, source_set) if fmt == "auto" else fmt
    stats = stats if stats is not None else ReadStats()
    if fmt == "txt":
        return read_txt_dir(src, on_error, stats)
    if fmt == "jsonl":
        if Path(src).is_dir():
            raise GuardError(f"{src} is a directory: name a JSONL file, or give a set name to read OpenAI files")
        return iter_jsonl(src, text_field=text_field, id_field=id_field, source_field=source_field,
                          on_error=on_error, stats=stats)
    if not source_set or not source_split:
        raise GuardError("reading an OpenAI-layout directory needs the set and split to read")
    records = open_set(src, source_set, source_split, text_field=text_field, on_error=on_error, stats=stats)
    return _with_openai_labels(records, source_set) if source_set in OPENAI_SETS else records


def _with_openai_labels(records: Iterator[Record], set_name: str) -> Iterator[Record]:
    label, provenance = openai_provenance(set_name)
    for rec in records:
        rec.label = rec.label or label
        if provenance and rec.provenance is None:
            rec.provenance = dict(provenance)
        yield rec


def source_fingerprint(src: str | Path) -> dict:
    """Path, size and modification time of a source file or directory: what tells a
    resumed import (same source) from an append (another source)."""
    src = Path(src).resolve()
    if src.is_file():
        st = src.stat()
        return {"path": str(src), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    total, latest, files = 0, 0, 0
    for dirpath, _, names in os.walk(src):
        for name in names:
            st = os.stat(os.path.join(dirpath, name))
            total, latest, files = total + st.st_size, max(latest, st.st_mtime_ns), files + 1
    return {"path": str(src), "bytes": total, "files": files, "mtime_ns": latest}

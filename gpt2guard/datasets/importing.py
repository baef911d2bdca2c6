"""Build sets from outside text: import a file or directory, or write the builtin corpus.

Both count token lengths with a family tokenizer, flag degenerate text, write through
:class:`~gpt2guard.datasets.writer.SetWriter` and finish with a dataset card. Both resume:
run again after a kill and the records already written are skipped, never duplicated.
A record whose id and text are already in the set is skipped (an earlier run wrote it), so
importing the same source again resumes it, and importing another source appends to the
set; an id already in the set with another text, or repeated in the source, is a duplicate:
an error, or with ``on_error="skip"`` a counted skip. The manifest keeps one entry per
source (by path, and set and split for OpenAI files) with its settings, and one entry per
run (:mod:`~gpt2guard.datasets.runs`). Importing a source again with other settings, or
another source with other ``flags``, is refused (:func:`check_import_settings`), so one
set never mixes records made two ways.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from gpt2guard.datasets.jsonl import ReadStats
from gpt2guard.datasets.quality import add_flags
from gpt2guard.datasets.readers import detect_format, doc_record, read_source, source_fingerprint
from gpt2guard.datasets.records import LABELS, Record
from gpt2guard.datasets.runs import finish_run, start_run
from gpt2guard.datasets.sets import read_manifest, set_files
from gpt2guard.datasets.tokens import resolve_tokenizer, tokenizer_info, with_lengths
from gpt2guard.datasets.writer import SetWriter, text_digest
from gpt2guard.errors import GuardError


def library_versions() -> dict:
    """Versions of what an import runs on: Python, gpt2guard and tokenizers (read from the
    installed packages' metadata, without importing torch)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("gpt2guard", "tokenizers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out

BUILTIN_MOTIVATION = (
    "Human-written English prose that every Python installation carries (Python's documentation topics and the "
    "docstrings of the standard library and selected packages): the human side of detection experiments, and "
    "the text the builtin model families are trained on.")


def _progress(records: Iterable, show: bool, desc: str) -> Iterable:
    if not show:
        return records
    from gpt2guard.progress import progress_bar

    return progress_bar(records, desc=desc, unit=" rec", progress=show, mininterval=1.0)


def _check_tokenizer(writer: SetWriter, tok_info: dict, kept_source_lengths: bool = False) -> None:
    """Name the tokenizer of the set's lengths in its meta; refuse to mix two tokenizers.

    With ``kept_source_lengths`` some lengths came with the source (counted by whatever
    tokenizer made it), and the meta says so, so that no one takes them for this
    tokenizer's counts.
    """
    old = writer.meta.get("tokenizer")
    if kept_source_lengths or (old or {}).get("kept_source_lengths"):
        tok_info = dict(tok_info, kept_source_lengths=True)
    _same_tokenizer(old, tok_info, f"{writer.set_name}.{writer.split}")
    writer.meta["tokenizer"] = tok_info


def _same_tokenizer(old: dict | None, tok_info: dict, where: str) -> None:
    if old and old.get("sha256") != tok_info["sha256"]:
        raise GuardError(f"{where} has lengths counted with tokenizer {old.get('family')} "
                         f"({old['sha256'][:12]}), not {tok_info['family']}: use the same --family")


def _fresh(records: Iterable[Record], writer: SetWriter, stats: ReadStats, on_error: str, where: str,
           counts: Counter) -> Iterator[Record]:
    """Drop records the set already holds (same id, same text: an earlier run wrote them);
    an id repeated in the source, or already in the set with another text, is a duplicate."""
    digests = writer.text_digests() if writer.records else {}
    seen: set = set()
    for n, rec in enumerate(records):
        rid = rec.id
        if rid in seen or (rid in digests and digests[rid] != text_digest(rec.text)):
            if on_error == "raise":
                raise GuardError(f"{where}: record {n}: duplicate id {rid!r} (already in "
                                 f"{writer.set_name}.{writer.split}); --skip-bad skips and counts duplicates")
            stats.skip(where, n, "duplicate_id", f"id {rid!r}")
            continue
        seen.add(rid)
        if rid in digests:
            counts["already_written"] += 1
            continue
        yield rec


#: The import settings that decide what records become, each with the option that sets it.
#: Resuming a source must agree on all; appending another source on ``flags`` (a set is
#: flagged throughout or not at all).
IMPORT_SETTINGS = {"format": "--format", "text_field": "--text-field", "id_field": "--id-field",
                   "source_field": "--source-field", "label": "--label", "keep_lengths": "--keep-lengths",
                   "flags": "--no-flags"}
SET_SETTINGS = ("flags",)


def _stored_settings(entry: dict) -> dict:
    """An import entry's settings (entries written before settings were recorded name a few)."""
    if "settings" in entry:
        return entry["settings"]
    return {k: entry[o] for k, o in (("format", "format"), ("text_field", "text_field"),
                                     ("keep_lengths", "kept_lengths")) if o in entry}


def check_import_settings(imports: list[dict], prior: list[dict], settings: dict, where: str) -> None:
    """Refuse an import whose settings differ from the earlier import of the same source
    (any setting) or of any source (``flags``), naming the first that differs."""
    checks = [(e, IMPORT_SETTINGS) for e in prior] + [(e, SET_SETTINGS) for e in imports if e not in prior]
    for entry, keys in checks:
        stored = _stored_settings(entry)
        for key in keys:
            if key in stored and stored[key] != settings[key]:
                shown = lambda v: json.dumps(v)  # noqa: E731
                raise GuardError(f"{IMPORT_SETTINGS[key]} ({key} {shown(settings[key])}) differs from the set's "
                                 f"{key} {shown(stored[key])} (imported from {entry['source'].get('path')} into "
                                 f"{where}): use a new --out or the same settings")


def _same_source(a: dict, b: dict) -> bool:
    """Whether two import fingerprints name the same source (path, and set and split for
    OpenAI files): importing it again resumes; another source appends."""
    return all(a.get(k) == b.get(k) for k in ("path", "set", "split"))


def write_records(records: Iterable[Record], writer: SetWriter, tokenizer, *, label: str | None = None,
                  keep_lengths: bool = False, flags: bool = True) -> Counter:
    """Label, flag, measure (batched) and write ``records``; returns flag counts."""
    counts: Counter = Counter()

    def prepared():
        for rec in records:
            if label and rec.label is None:
                rec.label = label
            if flags:
                add_flags(rec)
            yield rec

    for rec in with_lengths(prepared(), tokenizer, keep_existing=keep_lengths):
        writer.write(rec)
        counts.update(rec.flags)
    return counts


def import_set(src, out_dir, set_name: str, split: str, *, tokenizer=None, family: str = "nano", fmt: str = "auto",
               source_set: str | None = None, source_split: str | None = None, text_field: str = "text",
               id_field: str = "id", source_field: str = "source", label: str | None = None,
               on_error: str = "raise", keep_lengths: bool = False, flags: bool = True,
               shard_size: int | None = None, progress: bool = False, card: bool = True) -> dict:
    """Import a source into ``<out_dir>/<set_name>.<split>``, resumably.

    Parameters
    ----------
    src : path
        JSONL file (plain or gzip), directory of ``.txt`` files, or OpenAI-layout directory
        (with ``source_set``), see :func:`~gpt2guard.datasets.readers.read_source`.
    out_dir, set_name, split
        Where the set goes.
    tokenizer, family
        ``length`` is counted with ``tokenizer``, by default the tokenizer of model
        family ``family`` (``nano``, ``micro``, ``gpt2`` or a model directory); the
        manifest names it.
    fmt, source_set, source_split, text_field, id_field, source_field
        How to read ``src``; ``source_split`` defaults to ``split``.
    label : {"human", "machine"}, optional
        Label for records that carry none.
    on_error : {"raise", "skip"}
        Bad lines and duplicate ids stop the import, or are skipped and counted.
    keep_lengths : bool
        Keep lengths the source already has instead of counting them again (OpenAI's
        GPT-2 counts, say); the manifest then marks its tokenizer entry
        ``kept_source_lengths``.
    flags : bool
        Add degeneracy flags (``empty``, ``repetition``).
    shard_size : int, optional
        Shard the output (see :class:`SetWriter`).
    card : bool
        Write the set's dataset card afterwards.

    Returns
    -------
    dict
        Set location, records in the set, records written and already present, read
        statistics (lines, skipped lines by reason) and flag counts.
    """
    if label is not None and label not in LABELS:
        raise GuardError(f"label must be one of {', '.join(LABELS)}, not {label!r}")
    fmt = detect_format(src, source_set) if fmt == "auto" else fmt
    source_split = source_split or split
    stats = ReadStats()
    if fmt == "openai":
        fingerprint = source_fingerprint(set_files(src, source_set, source_split)[0])
        fingerprint["set"], fingerprint["split"] = source_set, source_split
    else:
        fingerprint = source_fingerprint(src) if Path(src).exists() else None
        if fingerprint is None:
            raise GuardError(f"no such file or directory: {src}")
    records = read_source(src, fmt, source_set=source_set, source_split=source_split, text_field=text_field,
                          id_field=id_field, source_field=source_field, on_error=on_error, stats=stats)
    tokenizer = resolve_tokenizer(tokenizer, family)  # after the input checks: a family may need building
    counts: Counter = Counter()
    settings = {"format": fmt, "text_field": text_field, "id_field": id_field, "source_field": source_field,
                "label": label, "keep_lengths": keep_lengths, "flags": flags}
    tok_info = tokenizer_info(tokenizer, family)
    # every refusal before the writer opens: a refused import leaves the set as it was
    manifest = read_manifest(out_dir, set_name, split) or {}
    old = manifest.get("meta") or {}
    if manifest.get("records") and old.get("config"):
        raise GuardError(f"{set_name}.{split} in {out_dir} was written by `gpt2guard generate`: import into "
                         "another set or --out")
    check_import_settings(old.get("imports") or [],
                          [i for i in old.get("imports") or [] if _same_source(i["source"], fingerprint)],
                          settings, f"{set_name}.{split} in {out_dir}")
    _same_tokenizer(old.get("tokenizer"), tok_info, f"{set_name}.{split}")
    with SetWriter(out_dir, set_name, split, shard_size=shard_size) as writer:
        imports = writer.meta.get("imports") or []
        prior = [i for i in imports if _same_source(i["source"], fingerprint)]
        _check_tokenizer(writer, tok_info, keep_lengths)
        # the entry is in the manifest from the start, so an interrupted import resumes as one
        entry = {"source": fingerprint, "format": fmt, "text_field": text_field, "kept_lengths": keep_lengths,
                 "settings": settings, "read": stats.to_dict(),
                 "written": sum(i.get("written", 0) for i in prior)}
        writer.meta["imports"] = [i for i in imports if i not in prior] + [entry]
        run = start_run(writer, op="import", source=fingerprint.get("path"), settings=settings,
                        versions=library_versions())
        writer.save_meta()
        fresh = _fresh(_progress(records, progress, f"import {set_name}.{split}"), writer, stats, on_error, str(src),
                       counts)
        before = writer.written
        try:
            flag_counts = write_records(fresh, writer, tokenizer, label=label, keep_lengths=keep_lengths,
                                        flags=flags)
        finally:
            entry["written"] += writer.written - before
            run["written"] = writer.written - before
            finish_run(writer, run)
            entry["read"] = stats.to_dict()
            total: Counter = Counter()
            for i in writer.meta["imports"]:
                total.update(i["read"]["skipped"])
            writer.skipped = dict(total)
    if card:
        from gpt2guard.datasets.card import write_card

        write_card(out_dir, set_name)
    return {"dir": str(out_dir), "set": set_name, "split": split, "records": writer.records,
            "written": writer.written, "already_written": counts["already_written"], "read": stats.to_dict(),
            "flags": dict(flag_counts)}


def build_builtin(out_dir, set_name: str = "builtin", *, tokenizer=None, family: str = "nano", seed: int = 0,
                  packages: tuple[str, ...] | None = None, max_docs: int | None = None,
                  shard_size: int | None = None, progress: bool = False, card: bool = True) -> dict:
    """Write the builtin human corpus as a set with ``train``, ``valid`` and ``test`` splits.

    Every source (module) goes whole to one split, as the corpus assigns them; ids are
    ``<source>#<n>``, labels ``human``. Parameters as for :func:`import_set`;
    ``packages``, ``seed`` and ``max_docs`` select the corpus
    (:func:`~gpt2guard.datasets.builtin.builtin_corpus`).

    Returns
    -------
    dict
        Per split: records in the set and records written by this call.
    """
    from gpt2guard.datasets.builtin import DEFAULT_PACKAGES, SPLITS, builtin_corpus, corpus_hash

    tokenizer = resolve_tokenizer(tokenizer, family)
    packages = DEFAULT_PACKAGES if packages is None else tuple(packages)
    docs = builtin_corpus(packages=packages, seed=seed)
    docs = docs[:max_docs] if max_docs else docs
    source = {"kind": "builtin", "packages": list(packages), "seed": seed, "max_docs": max_docs,
              "corpus_sha256": corpus_hash(docs)}
    out = {}
    tok_info = tokenizer_info(tokenizer, family)
    for split in SPLITS:  # refusals before any writer opens: a refused command changes nothing
        old = (read_manifest(out_dir, set_name, split) or {}).get("meta") or {}
        if old.get("source") not in (None, source):
            raise GuardError(f"{set_name}.{split} in {out_dir} holds another builtin corpus "
                             f"({old['source']}): choose another set name or directory")
        _same_tokenizer(old.get("tokenizer"), tok_info, f"{set_name}.{split}")
    for split in SPLITS:
        with SetWriter(out_dir, set_name, split, shard_size=shard_size) as writer:
            writer.meta["source"] = source
            writer.meta["motivation"] = BUILTIN_MOTIVATION
            _check_tokenizer(writer, tok_info)
            run = start_run(writer, op="builtin", versions=library_versions())
            writer.save_meta()
            records = (doc_record(d) for d in docs if d.split == split and d.id not in writer.existing_ids)
            before = writer.written
            try:
                flags = write_records(_progress(records, progress, f"builtin {split}"), writer, tokenizer)
            finally:
                run["written"] = writer.written - before
                finish_run(writer, run)
            out[split] = {"records": writer.records, "written": writer.written - before, "flags": dict(flags)}
    if card:
        from gpt2guard.datasets.card import write_card

        write_card(out_dir, set_name)
    return {"dir": str(out_dir), "set": set_name, "splits": out, "source": source}

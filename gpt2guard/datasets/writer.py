"""Write a set's split resumably: shards finished atomically, a manifest, unique ids.

Records go to a hidden ``.partial`` file, flushed every ``flush_every`` records; a full
shard (or, at the end, the last one) is fsynced and renamed to its final name, and the
manifest (shards, counts, SHA-256, skipped-line counts, meta) is rewritten atomically.
After a kill the next :class:`SetWriter` on the same set verifies the finished shards
against the manifest, keeps every complete line of the partial file (a torn last line is
cut off), and exposes the ids already written in :attr:`SetWriter.existing_ids`: a
resumed job skips those and never duplicates a record; a record not flushed before the
kill is simply written again.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from pathlib import Path

from gpt2guard.datasets.names import check_name, data_file, manifest_file, shard_file
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import MANIFEST_FORMAT, read_manifest
from gpt2guard.errors import GuardError
from gpt2guard.paths import write_json


_ENCODER = json.JSONEncoder(ensure_ascii=False)


def encode_record(record: Record) -> bytes:
    """One JSONL line for ``record``: UTF-8 JSON with non-ASCII characters written as is.

    Raises GuardError for a string holding a lone surrogate, which is not text (no UTF-8
    encodes it, and the readers refuse it).
    """
    try:
        return (_ENCODER.encode(record.to_dict()) + "\n").encode("utf-8")
    except UnicodeEncodeError:
        raise GuardError(f"record {record.id!r} holds a lone surrogate (\\ud800-\\udfff): not valid Unicode "
                         "text") from None
    except (TypeError, ValueError) as exc:
        raise GuardError(f"record {record.id!r} cannot be written as JSON: {exc}") from None


def text_digest(text: str) -> bytes:
    """16-byte BLAKE2b digest of a text, for comparing records without keeping their text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SetWriter:
    """Write records to one split of a set, as a context manager.

    Parameters
    ----------
    out_dir : path
        Directory of the set (created if missing).
    set_name, split : str
        Names of the set and split (``nano-small-k40``, ``train``).
    shard_size : int, optional
        Records per shard. None (default) writes the single file ``<set>.<split>.jsonl``
        that OpenAI-format tools read; an integer writes ``<set>.<split>.NNNNN.jsonl``.
    resume : bool
        Continue (or append to) an existing set of that name and split. With False an
        existing set is an error unless ``overwrite``.
    overwrite : bool
        With ``resume=False``, delete an existing set first.
    flush_every : int
        Flush to the operating system every this many records; a kill loses at most
        this many unflushed records of the unfinished shard (1: none).
    meta : dict, optional
        Stored in the manifest (source, tokenizer, generation config, preprocessing);
        merged over the meta of a resumed set.

    Examples
    --------
    >>> with SetWriter("out", "nano-small", "train", shard_size=1000) as w:  # doctest: +SKIP
    ...     for rec in records:
    ...         if rec.id not in w.existing_ids:
    ...             w.write(rec)
    """

    def __init__(self, out_dir, set_name: str, split: str, shard_size: int | None = None, resume: bool = True,
                 overwrite: bool = False, flush_every: int = 1, meta: dict | None = None):
        self.dir = Path(out_dir)
        self.set_name, self.split = check_name(set_name), check_name(split, "split")
        if shard_size is not None and (type(shard_size) is not int or shard_size < 1):
            raise GuardError(f"shard_size must be a positive integer, not {shard_size!r}")
        if flush_every < 1:
            raise GuardError("flush_every must be at least 1")
        self.shard_size, self.flush_every = shard_size, flush_every
        self.layout = "sharded" if shard_size else "single"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self.dir / f".{set_name}.{split}.lock", "a")
        try:
            fcntl.flock(self._lock_fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise GuardError(f"another job is writing {set_name}.{split} in {self.dir}") from None
        self.existing_ids: set = set()
        self.written = 0
        self.skipped: dict[str, int] = {}
        self.meta: dict = {}
        self._shards: list[dict] = []
        self._fh = None
        self._n = 0
        self._closed = False
        try:
            self._open_existing(resume, overwrite)
        except BaseException:
            self._release()
            raise
        self.meta.update(meta or {})

    # --- paths ------------------------------------------------------------------------

    def _final_name(self, index: int) -> str:
        return shard_file(self.set_name, self.split, index) if self.shard_size else data_file(self.set_name, self.split)

    def _partial_path(self, index: int) -> Path:
        return self.dir / f".{self._final_name(index)}.partial"

    def _own_files(self) -> list[Path]:
        prefix = f"{self.set_name}.{self.split}."
        return [p for p in self.dir.iterdir() if p.name.startswith((prefix, "." + prefix))
                and not p.name.endswith((".lock", ".md"))]

    # --- opening: verify, adopt, recover -----------------------------------------------

    def _open_existing(self, resume: bool, overwrite: bool) -> None:
        manifest = read_manifest(self.dir, self.set_name, self.split)
        existing = self._own_files()
        if existing and not resume:
            if not overwrite:
                raise GuardError(f"set {self.set_name}.{self.split} already exists in {self.dir}: resume it, "
                                 "or overwrite it explicitly")
            for p in existing:
                p.unlink()
            return
        if (self.dir / data_file(self.set_name, self.split, gz=True)).exists():
            raise GuardError(f"{data_file(self.set_name, self.split, gz=True)} is compressed: decompress it to "
                             "append to it")
        if manifest:
            if manifest.get("layout") != self.layout:
                raise GuardError(f"set {self.set_name}.{self.split} in {self.dir} is {manifest.get('layout')}; "
                                 f"asked to write it {self.layout}" + (" (give the same shard_size)"
                                                                        if self.layout == "single" else ""))
            self.skipped = dict(manifest.get("skipped") or {})
            self.meta = dict(manifest.get("meta") or {})
            for entry in manifest["shards"]:
                path = self.dir / entry["file"]
                if not path.is_file():
                    raise GuardError(f"{path} is listed in the manifest but missing")
                count, digest, size = self._scan_finished(path)
                if (count, digest) != (entry["records"], entry["sha256"]):
                    raise GuardError(f"{path} changed since it was written (records or SHA-256 differ from "
                                     "the manifest)")
                self._shards.append(entry)
        # a finished shard whose manifest update was lost to a kill, or a plain file with no manifest
        while (self.dir / self._final_name(len(self._shards))).is_file() and (self.shard_size or not self._shards):
            path = self.dir / self._final_name(len(self._shards))
            count, digest, size = self._scan_finished(path)
            self._shards.append({"file": path.name, "records": count, "bytes": size, "sha256": digest})
        self._recover_partial()

    def _scan_lines(self, data: bytes, path: Path, first_line: int = 1) -> int:
        """Add the ids of the complete JSON lines in ``data`` (the first being line
        ``first_line`` of ``path``) to existing_ids; return how many records there were."""
        count = 0
        for lineno, raw in enumerate(data.split(b"\n"), first_line):
            if not raw.strip():
                continue
            try:
                rid = json.loads(raw)["id"]
            except (ValueError, KeyError, TypeError):
                raise GuardError(f"{path}:{lineno}: not a record with an id; cannot resume this set") from None
            if rid in self.existing_ids:
                raise GuardError(f"{path}:{lineno}: id {rid!r} appears twice in set {self.set_name}.{self.split}")
            self.existing_ids.add(rid)
            count += 1
        return count

    def _scan_finished(self, path: Path) -> tuple[int, str, int]:
        """Records, SHA-256 and size of a finished file, collecting its ids."""
        h, count, size, tail, line = hashlib.sha256(), 0, 0, b"", 1
        with open(path, "rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
                size += len(block)
                block = tail + block
                cut = block.rfind(b"\n") + 1
                count += self._scan_lines(block[:cut], path, line)
                line += block.count(b"\n", 0, cut)
                tail = block[cut:]
        count += self._scan_lines(tail, path, line)
        return count, h.hexdigest(), size

    def _recover_partial(self) -> None:
        """Reopen the unfinished shard left by a killed job, cutting off a torn last line."""
        self._n = 0
        path = self._partial_path(len(self._shards))
        if not path.is_file():
            return
        if self.shard_size is None and self._shards:
            raise GuardError(f"{path} and {self._shards[0]['file']} both exist: remove the one that is stale")
        data = path.read_bytes()
        keep = data[: data.rfind(b"\n") + 1]
        self._n = self._scan_lines(keep, path)
        if len(keep) != len(data):
            with open(path, "r+b") as f:
                f.truncate(len(keep))
        self._open_partial(path, keep)
        if self.shard_size and self._n >= self.shard_size:
            self._finish_shard()

    def _open_partial(self, path: Path, existing: bytes = b"") -> None:
        self._fh = open(path, "ab")
        self._hash = hashlib.sha256(existing)
        self._bytes = len(existing)
        self._unflushed = 0

    def _reopen_single(self) -> None:
        """Appending to a finished single-file set: its file becomes the partial again."""
        entry = self._shards.pop()
        final, partial = self.dir / entry["file"], self._partial_path(0)
        self._write_manifest(complete=False)
        os.replace(final, partial)
        self._open_partial(partial, partial.read_bytes())
        self._n = entry["records"]

    def text_digests(self) -> dict:
        """``id -> 16-byte digest of the text`` of every record already in the set.

        Lets a job tell a record it wrote before (same id, same text: skip it) from another
        record reusing an id (a duplicate). Reads the set once.
        """
        if self._fh is not None:
            self._fh.flush()
        files = [self.dir / s["file"] for s in self._shards]
        partial = self._partial_path(len(self._shards))
        if partial.is_file() and not (self.shard_size is None and self._shards):
            files.append(partial)
        out = {}
        for path in files:
            with open(path, "rb") as f:
                for raw in f:
                    if raw.endswith(b"\n"):
                        obj = json.loads(raw)
                        out[obj["id"]] = text_digest(obj.get("text", ""))
        return out

    # --- writing ------------------------------------------------------------------------

    @property
    def records(self) -> int:
        """Records in the set so far, finished shards and the unfinished one."""
        return sum(s["records"] for s in self._shards) + self._n

    def write(self, record: Record | dict) -> None:
        """Append one record. Raises GuardError when its id is missing or already in the set."""
        if self._closed:
            raise GuardError("SetWriter is closed")
        if isinstance(record, dict):
            record = Record.from_dict(record)
        rid = record.id
        if rid is None:
            raise GuardError(f"a record without an id cannot be written to {self.set_name}.{self.split}")
        if rid in self.existing_ids:
            raise GuardError(f"duplicate id {rid!r}: already in set {self.set_name}.{self.split}")
        line = encode_record(record)
        if self._fh is None:
            if self.shard_size is None and self._shards:
                self._reopen_single()
            else:
                self._open_partial(self._partial_path(len(self._shards)))
                self._n = 0
        try:
            self._fh.write(line)
            if self._unflushed + 1 >= self.flush_every:
                self._fh.flush()
        except OSError as exc:
            raise self._disk_error(exc, self._fh.name) from None
        self._hash.update(line)
        self._bytes += len(line)
        self._n += 1
        self.written += 1
        self.existing_ids.add(rid)
        self._unflushed = 0 if self._unflushed + 1 >= self.flush_every else self._unflushed + 1
        if self.shard_size and self._n >= self.shard_size:
            self._finish_shard()

    def _disk_error(self, exc: OSError, path) -> GuardError:
        """One line for a write the disk refused (full, quota, read-only): what is kept and how to go on."""
        return GuardError(f"cannot write {path}: {exc.strerror or exc}; the {self.records} records already "
                          f"written to {self.set_name}.{self.split} are kept: make room and run the same command "
                          "again to resume")

    def _finish_shard(self) -> None:
        index = len(self._shards)
        final = self.dir / self._final_name(index)
        try:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None
            os.replace(self._partial_path(index), final)
            _fsync_dir(self.dir)
        except OSError as exc:
            raise self._disk_error(exc, final) from None
        self._shards.append({"file": final.name, "records": self._n, "bytes": self._bytes,
                             "sha256": self._hash.hexdigest()})
        self._n = 0
        self._write_manifest(complete=False)

    def _write_manifest(self, complete: bool) -> None:
        manifest = {"format": MANIFEST_FORMAT, "set": self.set_name, "split": self.split, "layout": self.layout,
                    "shard_size": self.shard_size, "complete": complete,
                    "records": sum(s["records"] for s in self._shards), "shards": self._shards,
                    "skipped": dict(sorted(self.skipped.items())), "meta": self.meta}
        path = self.dir / manifest_file(self.set_name, self.split)
        try:
            write_json(path, manifest)
        except OSError as exc:
            raise self._disk_error(exc, path) from None

    def save_meta(self) -> None:
        """Write the manifest now (marked incomplete), so that ``meta`` describes the set
        before its first record: a job killed at any moment leaves its settings behind."""
        if self._closed:
            raise GuardError("SetWriter is closed")
        self._write_manifest(complete=False)

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Finish the last shard and mark the set complete in its manifest."""
        if self._closed:
            return
        try:
            if self._fh is not None:
                self._finish_shard()
            if self.shard_size is None and not self._shards:  # an empty set still exists
                self._open_partial(self._partial_path(0))
                self._finish_shard()
            self._write_manifest(complete=True)
        finally:
            self._release()

    def abort(self) -> None:
        """Stop without finishing: flush what was written so a later writer resumes it."""
        if self._closed:
            return
        try:
            if self._fh is not None:
                try:
                    self._fh.flush()
                    os.fsync(self._fh.fileno())
                except OSError:
                    pass  # a full disk: the torn last line is cut off when the set is resumed
                self._close_file()
            try:
                self._write_manifest(complete=False)
            except GuardError:
                pass  # the manifest on disk still lists every finished shard
        finally:
            self._release()

    def _close_file(self) -> None:
        fh, self._fh = self._fh, None
        try:
            fh.close()
        except OSError:
            pass  # closing flushes; what it could not write is cut off on resume

    def _release(self) -> None:
        self._closed = True
        if self._fh is not None:
            self._close_file()
        fcntl.flock(self._lock_fh, fcntl.LOCK_UN)
        self._lock_fh.close()

    def __enter__(self) -> "SetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

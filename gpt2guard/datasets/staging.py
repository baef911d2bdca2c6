"""Write derived sets all or nothing: staged in a hidden directory, moved in at the end.

``datasets split``, ``dedup``, ``match`` and ``prompts`` write sets made from other sets.
:class:`StagedSets` first checks every output that already exists (it must have been made
by the same steps and parameters: a rerun, or the resume of a killed run), then writes the
new sets under ``<out>/.<set>.staging/`` through resumable
:class:`~gpt2guard.datasets.writer.SetWriter` s, and only when every one is finished moves
their files into ``<out>`` (data files first, each manifest last) and removes the files of
the old version that the new one no longer has. A refusal or an error before that leaves
every existing set and manifest in ``<out>`` byte for byte as it was; a run killed while
staging resumes from the staged records when run again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from pathlib import Path

from gpt2guard.datasets.names import manifest_file, parse_file
from gpt2guard.datasets.sets import read_manifest
from gpt2guard.datasets.writer import SetWriter, _fsync_dir
from gpt2guard.errors import GuardError


def _params(steps) -> list:
    """The steps without their results: what decides a derived set's records."""
    return [{k: v for k, v in st.items() if k != "result"} for st in steps or []]


def _own_files(directory: Path, set_name: str, split: str) -> list[Path]:
    """The data files, shards and manifest of one split, and its hidden partial shard."""
    if not directory.is_dir():
        return []
    out = []
    for p in directory.iterdir():
        name = p.name[1:-len(".partial")] if p.name.startswith(".") and p.name.endswith(".partial") else p.name
        if p.is_file() and parse_file(name) == (set_name, split):
            out.append(p)
    return out


def check_outputs(out_dir, targets: dict) -> list:
    """Refuse outputs that other steps made; return the targets already finished by these steps.

    Parameters
    ----------
    out_dir : path
        Where the derived sets go.
    targets : dict
        ``(set name, split) -> meta`` as for :class:`StagedSets`.

    Returns
    -------
    list of (set name, split)
        The targets whose complete set in ``out_dir`` was made by the same steps and
        parameters (a rerun may skip them).

    Raises
    ------
    GuardError
        When an output exists that other steps made, or that no gpt2guard step made.
    """
    out, done = Path(out_dir), []
    for (name, split), meta in targets.items():
        if not _own_files(out, name, split):
            continue
        manifest = read_manifest(out, name, split)
        old = ((manifest or {}).get("meta") or {}).get("steps")
        if manifest is None or _params(old) != _params(meta.get("steps")):
            made = (f"was made by other steps or parameters ({json.dumps((old or [{}])[-1], sort_keys=True)})"
                    if manifest is not None and old else "was not made by this command")
            raise GuardError(f"{name}.{split} in {out} {made}: use another output directory")
        if manifest.get("complete"):
            done.append((name, split))
    return done


class StagedSets:
    """Writers for derived sets, committed together (a context manager).

    Parameters
    ----------
    out_dir : path
        Where the sets go.
    targets : dict
        ``(set name, split) -> meta`` of every set to write; ``meta["steps"]`` says how it
        is derived (see :func:`~gpt2guard.datasets.sets.derived_meta`).
    shard_size : int, optional
        Shard the outputs.

    Raises
    ------
    GuardError
        Before anything is written, when an output exists that other steps made (or that
        no gpt2guard step made), or another job is writing one of them.

    Examples
    --------
    >>> with StagedSets("out", {("mine", "train"): meta}) as staged:   # doctest: +SKIP
    ...     w = staged.writers[("mine", "train")]
    ...     for rec in records:
    ...         if rec.id not in w.existing_ids:
    ...             w.write(rec)
    """

    def __init__(self, out_dir, targets: dict, shard_size: int | None = None):
        self.out = Path(out_dir)
        self.targets = dict(targets)
        names = sorted({name for name, _ in self.targets})
        self.stage = self.out / f".{'+'.join(names)}.staging"
        check_outputs(self.out, self.targets)
        self.out.mkdir(parents=True, exist_ok=True)
        self._locks = []
        self.writers: dict = {}
        try:
            for name, split in sorted(self.targets):  # the outputs' own locks: no other job writes them meanwhile
                fh = open(self.out / f".{name}.{split}.lock", "a")
                self._locks.append(fh)
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise GuardError(f"another job is writing {name}.{split} in {self.out}") from None
            self._clear_stale_stage()
            for (name, split), meta in self.targets.items():
                writer = SetWriter(self.stage, name, split, shard_size=shard_size)
                writer.meta.update(meta)
                self.writers[(name, split)] = writer
        except BaseException:
            self._abort()
            raise

    def _clear_stale_stage(self) -> None:
        """Staged sets of other steps (a killed run of another command) are dropped; those of
        the same steps are resumed."""
        for (name, split), meta in self.targets.items():
            manifest = read_manifest(self.stage, name, split) if self.stage.is_dir() else None
            stale = manifest is not None and _params((manifest.get("meta") or {}).get("steps")) != \
                _params(meta.get("steps"))
            if stale or (manifest is None and _own_files(self.stage, name, split)):
                for p in _own_files(self.stage, name, split):
                    p.unlink()

    def commit(self) -> None:
        """Finish every staged set and move it into the output directory."""
        for writer in self.writers.values():
            writer.close()
        for name, split in self.targets:
            manifest = read_manifest(self.stage, name, split)
            new = [s["file"] for s in manifest["shards"]]
            old = [p for p in _own_files(self.out, name, split) if p.name not in new]
            for f in new:
                os.replace(self.stage / f, self.out / f)
            os.replace(self.stage / manifest_file(name, split), self.out / manifest_file(name, split))
            for p in old:
                if p.name != manifest_file(name, split):
                    p.unlink()
        _fsync_dir(self.out)
        shutil.rmtree(self.stage, ignore_errors=True)
        self._release()

    def _abort(self) -> None:
        for writer in self.writers.values():
            writer.abort()
        if self.stage.is_dir() and not any(w.records for w in self.writers.values()):
            shutil.rmtree(self.stage, ignore_errors=True)  # nothing staged worth resuming
        self._release()

    def _release(self) -> None:
        for fh in self._locks:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
        self._locks = []

    def __enter__(self) -> "StagedSets":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._abort()

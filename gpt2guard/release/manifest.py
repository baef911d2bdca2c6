"""Manifests, and verification of a published directory or a whole simulation run.

``MANIFEST.json`` sits at the root of a published directory and lists every other file under
it (relative POSIX paths, with size and SHA-256): dotfiles, ``*.tmp`` files and nested
manifests included. Only the directory's own ``MANIFEST.json`` and its signature
(``model.sig``, written after the manifest by ``release sign``) are not listed.
:func:`verify_dir` compares a directory with its manifest and reports files that are
missing, altered (size or digest differs) or unlisted.

:func:`verify_tree` never passes on absence. It requires what a finished directory must
contain and reports its lack as a finding: the root manifest always; for a simulation run
also ``run.json``, the summary, and per scenario a decision log whose chain is intact, that
starts with the scenario's stage list and holds exactly one decision per stage, and whose
recorded digests (each decision's ``evaluation.json`` and published manifest) match the
files. Stage directories without a decision (an unfinished stage) and a simulation still
holding the run's lock are findings too.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_file, write_json

MANIFEST = "MANIFEST.json"
SIGNATURE = "model.sig"
FORMAT = "gpt2guard.release.manifest/1"
LOG_NAME = "decisions.jsonl"


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """Every file under ``root`` (hidden ones too) and every entry that is neither a plain file
    nor a directory (symlinks, sockets, ...), without following symlinks."""
    files, odd = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in dirnames:
            if (base / name).is_symlink():
                odd.append(base / name)
        for name in filenames:
            p = base / name
            (files if p.is_file() and not p.is_symlink() else odd).append(p)
    return sorted(files), sorted(odd)


def _own(root: Path, p: Path) -> bool:
    """Whether ``p`` is one of the two files a manifest cannot list: itself and the signature."""
    return p.parent == root and p.name in (MANIFEST, SIGNATURE)


def _files(root: Path) -> list[Path]:
    return [p for p in _walk(root)[0] if not _own(root, p)]


def write_manifest(root: str | Path, meta: dict | None = None) -> Path:
    """List every file under ``root`` in ``root/MANIFEST.json``; returns its path.

    Raises
    ------
    GuardError
        When ``root`` holds a symlink or another entry that is not a plain file.
    """
    root = Path(root)
    files, odd = _walk(root)
    if odd:
        raise GuardError(f"{odd[0]}: not a plain file (a symlink?); a published directory holds only files")
    files = [{"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in files if not _own(root, p)]
    path = root / MANIFEST
    write_json(path, {"format": FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      **(meta or {}), "files": files,
                      "total_bytes": sum(f["bytes"] for f in files)})
    return path


@dataclass
class Verification:
    """What differs between a directory and its manifest (paths relative to the directory).

    ``problems`` are other findings about ``root`` (a file or a directory), one line each.
    """

    root: str
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    special: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.unlisted or self.problems or self.special)

    def lines(self) -> list[str]:
        """One line per finding."""
        out = [f"{self.root}: {p}" for p in self.problems]
        out += [f"missing   {self.root}/{p}" for p in self.missing]
        out += [f"altered   {self.root}/{p}" for p in self.altered]
        out += [f"unlisted  {self.root}/{p}" for p in self.unlisted]
        out += [f"special   {self.root}/{p} (not a plain file: a symlink?)" for p in self.special]
        return out


def read_manifest(root: str | Path) -> dict:
    """The manifest of a published directory (GuardError when absent or unreadable)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise GuardError(f"{path}: missing (every published directory and run has one)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GuardError(f"{path}: not valid JSON") from None
    if (not isinstance(data, dict) or not isinstance(data.get("files"), list)
            or not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in data["files"])):
        raise GuardError(f"{path}: not a gpt2guard manifest (no list of files with paths)")
    return data


def verify_dir(root: str | Path) -> Verification:
    """Compare ``root`` with its manifest: missing, altered and unlisted files."""
    root = Path(root)
    result = Verification(str(root))
    try:
        listed = {f["path"]: f for f in read_manifest(root)["files"]}
    except GuardError as exc:
        return _finding(root / MANIFEST, str(exc).removeprefix(f"{root / MANIFEST}: "))
    files, odd = _walk(root)
    present = {p.relative_to(root).as_posix(): p for p in files if not _own(root, p)}
    for rel, entry in listed.items():
        p = present.get(rel)
        if p is None:
            result.missing.append(rel)
        elif p.stat().st_size != entry.get("bytes") or sha256_file(p) != entry.get("sha256"):
            result.altered.append(rel)
        result.checked += 1
    result.unlisted = sorted(set(present) - set(listed))
    result.special = [p.relative_to(root).as_posix() for p in odd]
    return result


def _finding(path: Path, message: str) -> Verification:
    return Verification(str(path), problems=[message])


def _is_run(root: Path) -> bool:
    """Whether ``root`` looks like a simulation run (any trace of one counts)."""
    if any((root / name).exists() for name in ("run.json", "plan.json", "summary.json", "scenarios")):
        return True
    try:
        meta = read_manifest(root)
    except GuardError:
        return False
    return "stage" not in meta and any(f["path"] == "run.json" for f in meta["files"])


def _load_json(path: Path, what: str, out: list[Verification], kind: type = dict):
    if not path.is_file():
        out.append(_finding(path, f"missing ({what})"))
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        out.append(_finding(path, "not valid JSON"))
        return None
    if not isinstance(data, kind):
        out.append(_finding(path, f"not a JSON {'object' if kind is dict else 'list'}"))
        return None
    return data


def _check_evidence(sroot: Path, log: Path, n: int, entry: dict, out: list[Verification]) -> None:
    """The files a decision cites must exist and have the digests the log recorded."""
    evidence = entry.get("evidence")
    if not isinstance(evidence, dict):
        out.append(_finding(log, f"entry {n}: no evidence record"))
        return
    needed = {"release": ("evaluation", "manifest"), "hold": ("evaluation",)}.get(entry.get("decision"), ())
    for key in sorted(set(needed) | {k for k in ("evaluation", "manifest") if k in evidence}):
        rel, digest = evidence.get(key), evidence.get(key + "_sha256")
        if not isinstance(rel, str) or not isinstance(digest, str):
            out.append(_finding(log, f"entry {n}: a {entry.get('decision')} decision without its {key} and digest"))
            continue
        path = (sroot / rel).resolve()
        if not path.is_relative_to(sroot.resolve()):
            out.append(_finding(log, f"entry {n}: {key} path {rel!r} points outside the scenario"))
        elif not path.is_file():
            out.append(_finding(sroot / rel, f"missing (cited by {log.name} entry {n})"))
        elif sha256_file(path) != digest:
            out.append(_finding(sroot / rel, f"altered: its SHA-256 differs from the one {log.name} entry {n} records"))


def _check_scenario(sroot: Path, run: dict | None, out: list[Verification]) -> tuple[str, int] | None:
    """Check one scenario's decision log and stage directories; returns (chain head, entries)."""
    from gpt2guard.release.log import chain_head, verify_log, read_log

    log = sroot / LOG_NAME
    if not log.is_file():
        out.append(_finding(log, "missing (every scenario of a run has a decision log)"))
        return None
    try:
        problems = verify_log(log)
        entries = read_log(log)
    except GuardError as exc:  # "LOG:LINE: what is wrong with the line"
        line, _, what = str(exc).removeprefix(f"{log}:").partition(": ")
        out.append(_finding(Path(f"{log}:{line}"), what))
        return None
    out += [_finding(log, p) for p in problems]
    if not entries or entries[0].get("type") != "start" or not isinstance(entries[0].get("stages"), list):
        out.append(_finding(log, "entry 1: not the start entry with the scenario's stage list"))
        return chain_head(entries), len(entries)
    start = entries[0]
    if run is not None and start.get("plan_sha256") != run.get("plan_sha256"):
        out.append(_finding(log, "entry 1: plan digest differs from run.json's"))
    stages = [s for s in start["stages"] if isinstance(s, str)]
    decided: dict[str, int] = {}
    on_disk = set()
    for n, e in enumerate(entries[1:], 2):
        if e.get("type") != "decision":
            out.append(_finding(log, f"entry {n}: unexpected type {e.get('type')!r}"))
            continue
        stage = e.get("stage")
        if stage not in stages:
            out.append(_finding(log, f"entry {n}: decision for {stage!r}, not a stage of this scenario"))
            continue
        if stage in decided:
            out.append(_finding(log, f"entry {n}: stage {stage!r} decided again (first in entry {decided[stage]})"))
            continue
        decided[stage] = n
        if e.get("decision") not in ("release", "hold", "skip"):
            out.append(_finding(log, f"entry {n}: unknown decision {e.get('decision')!r}"))
        index = e.get("index")
        if e.get("decision") != "skip" and isinstance(index, int):
            on_disk.add(f"{index:02d}-{stage}")
        _check_evidence(sroot, log, n, e, out)
    for stage in stages:
        if stage not in decided:
            out.append(_finding(log, f"unfinished: stage {stage!r} has no decision"))
    stage_root = sroot / "stages"
    if stage_root.is_dir():
        for d in sorted(p for p in stage_root.iterdir() if p.name not in on_disk):
            out.append(_finding(d, "a stage directory without a decision in the log (unfinished or added)"))
    return chain_head(entries), len(entries)


def verify_tree(root: str | Path) -> list[Verification]:
    """Verify a published directory or a simulation run; see the module docstring.

    Returns
    -------
    list of Verification
        Every manifest checked, and one more per other finding; all ``ok`` means verified.

    Raises
    ------
    GuardError
        When ``root`` is not a directory or holds no files at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise GuardError(f"no such directory: {root}")
    if not any(_walk(root)):
        raise GuardError(f"nothing to verify in {root}: it holds no files")
    results = [verify_dir(root)]
    results += [verify_dir(m.parent) for m in _walk(root)[0] if m.name == MANIFEST and m.parent != root]
    if _is_run(root):
        _verify_run(root, results)
    return results


def _verify_run(root: Path, out: list[Verification]) -> dict[str, tuple[str, int]]:
    from gpt2guard.release.lock import LOCK_NAME, lock_holder

    holder = lock_holder(root)
    if holder:
        out.append(_finding(root / LOCK_NAME, f"a simulation is running in this directory ({holder})"))
    run = _load_json(root / "run.json", "every run has one", out)
    _load_json(root / "summary.json", "unfinished: a finished run has a summary", out, list)
    names = []
    if run is not None:
        names = run.get("scenarios")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            out.append(_finding(root / "run.json", "no list of scenarios"))
            names = []
    scen_root = root / "scenarios"
    present = sorted(p.name for p in scen_root.iterdir()) if scen_root.is_dir() else []
    for extra in sorted(set(present) - set(names)):
        if run is not None:
            out.append(_finding(scen_root / extra, "not a scenario of run.json"))
    heads = {}
    for name in list(dict.fromkeys(names + present)):
        head = _check_scenario(scen_root / name, run, out)
        if head is not None:
            heads[name] = head
    return heads


def chain_heads(root: str | Path) -> dict[str, tuple[str, int]]:
    """Scenario -> (hash of the last decision-log entry, number of entries) for a run.

    Publishing these values lets a third party check that a copy of the run holds the same,
    complete decision logs (a log cut short has another head).
    """
    root = Path(root)
    return _verify_run(root, []) if _is_run(root) else {}

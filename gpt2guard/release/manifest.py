"""Manifests: every published file with its size and SHA-256, and a check that finds changes.

``MANIFEST.json`` sits at the root of a published directory and lists every other file in it
(relative POSIX paths). :func:`verify_dir` compares a directory with its manifest and reports
files that are missing, altered (size or digest differs) or unlisted. :func:`verify_tree`
checks every manifest under a run directory, and every decision log's hash chain.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.paths import sha256_file, write_json

MANIFEST = "MANIFEST.json"
FORMAT = "gpt2guard.release.manifest/1"


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST and not p.name.endswith(".tmp"))


def write_manifest(root: str | Path, meta: dict | None = None) -> Path:
    """List every file under ``root`` in ``root/MANIFEST.json``; returns its path."""
    root = Path(root)
    files = [{"path": p.relative_to(root).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in _files(root)]
    path = root / MANIFEST
    write_json(path, {"format": FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                      **(meta or {}), "files": files,
                      "total_bytes": sum(f["bytes"] for f in files)})
    return path


@dataclass
class Verification:
    """What differs between a directory and its manifest (paths relative to the directory)."""

    root: str
    missing: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.unlisted or self.problems)

    def lines(self) -> list[str]:
        """One line per finding."""
        out = [f"{self.root}: {p}" for p in self.problems]
        out += [f"missing   {self.root}/{p}" for p in self.missing]
        out += [f"altered   {self.root}/{p}" for p in self.altered]
        out += [f"unlisted  {self.root}/{p}" for p in self.unlisted]
        return out


def read_manifest(root: str | Path) -> dict:
    """The manifest of a published directory (GuardError when absent or unreadable)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise GuardError(f"no {MANIFEST} in {root}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise GuardError(f"{path}: not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise GuardError(f"{path}: not a gpt2guard manifest (no file list)")
    return data


def verify_dir(root: str | Path) -> Verification:
    """Compare ``root`` with its manifest: missing, altered and unlisted files."""
    root = Path(root)
    result = Verification(str(root))
    try:
        listed = {f["path"]: f for f in read_manifest(root)["files"]}
    except (GuardError, KeyError, TypeError) as exc:
        result.problems.append(str(exc) if isinstance(exc, GuardError) else "manifest entries lack a path")
        return result
    present = {p.relative_to(root).as_posix(): p for p in _files(root)}
    for rel, entry in listed.items():
        p = present.get(rel)
        if p is None:
            result.missing.append(rel)
        elif p.stat().st_size != entry.get("bytes") or sha256_file(p) != entry.get("sha256"):
            result.altered.append(rel)
        result.checked += 1
    result.unlisted = sorted(set(present) - set(listed))
    return result


def verify_tree(root: str | Path) -> list[Verification]:
    """Verify every manifest under ``root`` (``root`` itself included) and every decision
    log's chain (``decisions.jsonl``)."""
    from gpt2guard.release.log import verify_log

    root = Path(root)
    if not root.is_dir():
        raise GuardError(f"no such directory: {root}")
    results = [verify_dir(m.parent) for m in sorted(root.rglob(MANIFEST))]
    for log in sorted(root.rglob("decisions.jsonl")):
        problems = verify_log(log)
        if problems:
            results.append(Verification(str(log), problems=problems))
    if not results:
        raise GuardError(f"nothing to verify in {root}: no {MANIFEST} found")
    return results

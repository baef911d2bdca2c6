"""The runs that wrote a set's split, counted in its manifest (``meta["runs"]``).

Every command that writes records (``generate``, ``datasets import``, ``datasets
builtin``) appends an entry when it starts: when it started and finished, what it was asked
and how many records it wrote, resumes included. Records that no entry counts (a run killed
before its manifest was written) get an entry of their own, so the entries always add up
to the records in the split. A run that wrote nothing to a split that already had a run
did not contribute and leaves no entry.
"""

from __future__ import annotations

import time


def utc_now() -> str:
    """The time now, ISO 8601 in UTC to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def start_run(writer, **entry) -> dict:
    """Append a run to ``writer.meta["runs"]`` and return its entry (``written`` 0, to be
    kept up to date by the caller; :func:`finish_run` closes it)."""
    runs = writer.meta.setdefault("runs", [])
    counted = sum(r.get("written", 0) for r in runs)
    if writer.records > counted:
        runs.append({"started": None, "written": writer.records - counted,
                     "note": "earlier or interrupted runs that left no entry"})
    entry = {"started": utc_now(), **entry, "written": 0}
    runs.append(entry)
    return entry


def finish_run(writer, entry: dict) -> None:
    """Mark a run finished; drop it when it wrote nothing and another run made the split."""
    entry["finished"] = utc_now()
    runs = writer.meta.get("runs") or []
    if not entry["written"] and len(runs) > 1 and entry in runs:
        runs.remove(entry)


def describe_runs(runs: list[dict]) -> str:
    """``2 runs wrote 8 records (2026-11-27T15:20:01Z: 4, 2026-11-27T15:22:13Z: 4)``."""
    total = sum(r.get("written", 0) for r in runs)
    parts = ", ".join(f"{r.get('started') or 'unrecorded'}: {r.get('written', 0)}" for r in runs)
    return f"{len(runs)} run{'s' if len(runs) != 1 else ''} wrote {total} records ({parts})"

"""Exact and near-duplicate removal, streaming, first occurrence kept.

Exact duplicates have the same text once whitespace runs are collapsed. Near duplicates
have an estimated Jaccard similarity of word 5-gram shingles of at least ``threshold``,
found with MinHash signatures (``num_perm`` seeded universal hashes) and locality-sensitive
hashing (``bands`` bands): candidates sharing a band are verified on their signatures.
Memory grows with the set: 16 bytes per record for exact keys, plus ``4 * num_perm`` bytes
per kept record for near-duplicate search. Every removal is counted and reported with the
id it duplicates.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import derived_meta, open_set, set_files
from gpt2guard.datasets.staging import StagedSets
from gpt2guard.errors import GuardError

_PRIME = (1 << 31) - 1
MAX_REPORTED = 1000


def exact_key(text: str) -> bytes:
    """16-byte digest of a text with whitespace runs collapsed (leading/trailing removed)."""
    return hashlib.blake2b(" ".join(text.split()).encode("utf-8", "surrogatepass"), digest_size=16).digest()


class MinHasher:
    """MinHash signatures of word shingles, deterministic for a given seed."""

    def __init__(self, num_perm: int = 64, shingle: int = 5, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.a = rng.integers(1, _PRIME, size=num_perm, dtype=np.uint64)
        self.b = rng.integers(0, _PRIME, size=num_perm, dtype=np.uint64)
        self.shingle = shingle

    def signature(self, text: str) -> np.ndarray:
        """``num_perm`` minimum hash values (uint32) over the text's lower-cased word shingles."""
        words = text.lower().split()
        k = self.shingle
        grams = {" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))}
        x = np.fromiter((zlib.crc32(g.encode("utf-8", "surrogatepass")) % _PRIME for g in grams), dtype=np.uint64,
                        count=len(grams))
        return ((np.outer(x, self.a) + self.b) % _PRIME).min(axis=0).astype(np.uint32)


class Deduplicator:
    """Streaming filter: ``check(record)`` returns None for a new text, else ``(kind, kept id,
    similarity)`` for a duplicate of an earlier record."""

    def __init__(self, near: bool = True, threshold: float = 0.8, num_perm: int = 64, bands: int = 16,
                 shingle: int = 5, seed: int = 0):
        if not 0 < threshold <= 1:
            raise GuardError(f"threshold must be in (0, 1], not {threshold}")
        if num_perm % bands:
            raise GuardError(f"num_perm ({num_perm}) must be a multiple of bands ({bands})")
        self.near, self.threshold, self.bands = near, threshold, bands
        self.rows = num_perm // bands
        self.hasher = MinHasher(num_perm, shingle, seed)
        self.exact: dict[bytes, object] = {}
        self.buckets: dict[tuple[int, bytes], list[int]] = {}
        self.signatures: list[np.ndarray] = []
        self.ids: list = []

    def check(self, record: Record):
        key = exact_key(record.text)
        if key in self.exact:
            return "exact", self.exact[key], 1.0
        self.exact[key] = record.id
        if not self.near:
            return None
        sig = self.hasher.signature(record.text)
        bands = [(b, sig[b * self.rows:(b + 1) * self.rows].tobytes()) for b in range(self.bands)]
        seen: set[int] = set()
        for band in bands:
            for j in self.buckets.get(band, ()):
                if j in seen:
                    continue
                seen.add(j)
                sim = float(np.mean(self.signatures[j] == sig))
                if sim >= self.threshold:
                    return "near", self.ids[j], round(sim, 3)
        index = len(self.ids)
        self.signatures.append(sig)
        self.ids.append(record.id)
        for band in bands:
            self.buckets.setdefault(band, []).append(index)
        return None


def dedup_records(records: Iterable[Record], report: dict | None = None, **kwargs) -> Iterator[Record]:
    """Yield records whose text is neither an exact nor a near duplicate of an earlier one.

    Parameters
    ----------
    records : iterable of Record
    report : dict, optional
        Filled with ``kept``, ``exact``, ``near`` counts and ``removed``: up to
        :data:`MAX_REPORTED` ``[removed id, kept id, kind, similarity]``.
    **kwargs
        Options of :class:`Deduplicator` (``near``, ``threshold``, ``num_perm``, ``bands``,
        ``shingle``, ``seed``).
    """
    report = report if report is not None else {}
    report.update({"kept": 0, "exact": 0, "near": 0, "removed": []})
    dedup = Deduplicator(**kwargs)
    for rec in records:
        dup = dedup.check(rec)
        if dup is None:
            report["kept"] += 1
            yield rec
            continue
        kind, kept_id, sim = dup
        report[kind] += 1
        if len(report["removed"]) < MAX_REPORTED:
            report["removed"].append([rec.id, kept_id, kind, sim])


def dedup_set(directory, set_name: str, split: str, out_dir, *, near: bool = True, threshold: float = 0.8,
              seed: int = 0, shard_size: int | None = None, card: bool = True) -> dict:
    """Write a copy of a set without exact and near duplicates to ``out_dir`` (same name).

    Returns
    -------
    dict
        Counts kept and removed by kind, and the first removed ids with the ids they
        duplicate. The counts go to the output manifest's ``steps`` and its card. The
        output is staged and moved in when finished
        (:class:`~gpt2guard.datasets.staging.StagedSets`): a refused or failed run leaves
        an existing output as it was.
    """
    if Path(out_dir).resolve() == Path(directory).resolve():
        raise GuardError("a deduplicated set keeps its name: write it to another directory")
    params = {"near": near, "threshold": threshold, "seed": seed, "shingle": 5, "num_perm": 64, "bands": 16}
    set_files(directory, set_name, split)  # the input exists and is finished, before anything is staged
    meta = derived_meta(directory, set_name, split, {"op": "dedup", "input": f"{set_name}.{split}", **params})
    report: dict = {}
    counts = Counter()
    with StagedSets(out_dir, {(set_name, split): meta}, shard_size) as staged:
        writer = staged.writers[(set_name, split)]
        for rec in dedup_records(open_set(directory, set_name, split), report, near=near, threshold=threshold,
                                 seed=seed):
            if rec.id in writer.existing_ids:
                counts["already_written"] += 1
                continue
            writer.write(rec)
        writer.meta["steps"][-1]["result"] = {k: report[k] for k in ("kept", "exact", "near")}
    if card:
        from gpt2guard.datasets.card import write_card

        write_card(out_dir, set_name)
    return {"dir": str(out_dir), "set": set_name, "split": split, **report,
            "already_written": counts["already_written"]}

"""A disk cache of :class:`TokenStats` and :class:`TokenSums`, so scoring a document twice
under one model is free.

Layout: ``<cache>/detector/stats/<model hash[:16]>/<key[:2]>/<key>.npz`` where ``key`` is the
SHA-256 of the scoring settings (engine version, model, reference and tokenizer hashes,
window size, dtype...) and the text hash. Files are ``.npz`` archives of plain arrays,
written atomically and read with ``allow_pickle=False``; an unreadable file counts as a
miss and is overwritten.

What was computed is what is cached: a full record (per-token arrays, about 24 bytes a
token) under the scorer's settings, or only the per-document sums (a few hundred bytes
whatever the length) under the same settings with ``"view": "sums"``, so the two never
share a key. :meth:`StatsCache.get_sums` also reduces a cached full record to its sums,
when that file is small enough to read whole (:data:`MAX_FULL_BYTES`).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from gpt2guard.detector.stats import TokenStats, TokenSums
from gpt2guard.paths import cache_dir, sha256_json

# A cached full record is read for its sums only up to this size (a 16 MiB file is about
# 700,000 tokens); a bigger one costs re-scoring instead of memory that grows with length.
MAX_FULL_BYTES = 16 << 20
_BAD = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class StatsCache:
    """Per-document statistics on disk, keyed by scoring settings and text hash.

    Parameters
    ----------
    root : path, optional
        Directory of the cache; default ``<gpt2guard cache>/detector/stats``.
    """

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "detector" / "stats"

    def path(self, text_hash: str, settings: dict) -> Path:
        """Where the record of this text under these settings lives."""
        key = sha256_json({"settings": settings, "text": text_hash})
        return self.root / str(settings.get("model", "any"))[:16] / key[:2] / f"{key}.npz"

    def get(self, text_hash: str, settings: dict) -> TokenStats | None:
        """The cached record, or None."""
        path = self.path(text_hash, settings)
        if not path.is_file():
            return None
        try:
            stats = TokenStats.load(path)
        except _BAD:
            return None
        return stats if stats.text_hash == text_hash else None

    def get_sums(self, text_hash: str, settings: dict, full_settings: dict | None = None) -> TokenSums | None:
        """The cached sums of this text under ``settings`` (which carry ``"view": "sums"``),
        else the sums of a cached full record under ``full_settings`` whose file is at most
        :data:`MAX_FULL_BYTES`, else None."""
        path = self.path(text_hash, settings)
        if path.is_file():
            try:
                sums = TokenSums.load(path)
                if sums.text_hash == text_hash:
                    return sums
            except _BAD:
                pass
        if full_settings is not None:
            full = self.path(text_hash, full_settings)
            try:
                small = full.is_file() and full.stat().st_size <= MAX_FULL_BYTES
            except OSError:
                small = False
            if small:
                stats = self.get(text_hash, full_settings)
                if stats is not None:
                    return stats.sums()
        return None

    def put(self, text_hash: str, settings: dict, stats: TokenStats | TokenSums) -> None:
        """Store a record (full or sums); a cache that cannot be written only costs re-scoring later."""
        try:
            stats.save(self.path(text_hash, settings), durable=False)
        except OSError:
            pass

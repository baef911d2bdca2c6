"""A disk cache of :class:`TokenStats`, so scoring a document twice under one model is free.

Layout: ``<cache>/detector/stats/<model hash[:16]>/<key[:2]>/<key>.npz`` where ``key`` is the
SHA-256 of the scoring settings (engine version, model, reference and tokenizer hashes,
window size, dtype...) and the text hash. Files are ``.npz`` archives of plain arrays,
written atomically and read with ``allow_pickle=False``; an unreadable file counts as a
miss and is overwritten.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from gpt2guard.detector.stats import TokenStats
from gpt2guard.paths import cache_dir, sha256_json


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
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        return stats if stats.text_hash == text_hash else None

    def put(self, text_hash: str, settings: dict, stats: TokenStats) -> None:
        """Store a record; a cache that cannot be written only costs re-scoring later."""
        try:
            stats.save(self.path(text_hash, settings), durable=False)
        except OSError:
            pass

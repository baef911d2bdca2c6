"""Statistics of a set: counts, labels, token lengths, flags, sources, split leakage."""

from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from gpt2guard.datasets.names import OPENAI_SPLITS
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import list_sets, open_set, read_manifest
from gpt2guard.datasets.splits import group_key
from gpt2guard.errors import GuardError


def summarize(values) -> dict | None:
    """``n``, min, mean, 10th/50th/90th percentile and max of numbers; None when empty."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return None
    p10, p50, p90 = np.percentile(arr, [10, 50, 90])
    return {"n": int(arr.size), "min": float(arr.min()), "mean": round(float(arr.mean()), 2), "p10": float(p10),
            "median": float(p50), "p90": float(p90), "max": float(arr.max())}


def record_stats(records: Iterable[Record], top_sources: int = 10) -> dict:
    """Statistics of a stream of records.

    Returns
    -------
    dict
        ``records``; counts by ``labels``, ``ended``, ``flags``; ``length`` (token
        lengths, see :func:`summarize`) and ``missing_length``; ``chars``; ``sources``
        (distinct count and the ``top_sources`` most frequent); ``groups`` (distinct
        source groups, see :func:`~gpt2guard.datasets.splits.group_key`).
    """
    n, missing = 0, 0
    labels, ended, flags, sources = Counter(), Counter(), Counter(), Counter()
    lengths, chars, groups = [], [], set()
    for rec in records:
        n += 1
        labels[rec.label or "unlabelled"] += 1
        ended[str(rec.ended).lower() if rec.ended is not None else "unknown"] += 1
        flags.update(rec.flags)
        if rec.source is not None:
            sources[rec.source] += 1
        groups.add(group_key(rec))
        chars.append(len(rec.text))
        if rec.length is None:
            missing += 1
        else:
            lengths.append(rec.length)
    return {"records": n, "labels": dict(sorted(labels.items())), "ended": dict(sorted(ended.items())),
            "flags": dict(sorted(flags.items())), "length": summarize(lengths), "missing_length": missing,
            "chars": summarize(chars), "sources": {"distinct": len(sources), "top": sources.most_common(top_sources)},
            "groups": len(groups)}


def set_stats(directory, set_name: str, splits: list[str] | None = None, top_sources: int = 10) -> dict:
    """Statistics of each split of a set, the skipped-line counts from its manifests, and
    whether any source group, or any text (:func:`~gpt2guard.datasets.overlap.split_overlap`),
    appears in more than one of ``train``, ``valid`` and ``test`` (other splits, such as an
    ``all`` split they were made from, are not compared).

    Parameters
    ----------
    directory, set_name
        The set (single-file, sharded or OpenAI's).
    splits : list of str, optional
        Which splits; all found in the directory by default.

    Returns
    -------
    dict
        ``{"set", "dir", "splits": {split: stats}, "leakage": {...}, "overlap": {...}}``:
        ``leakage`` counts source groups in two or more splits, ``overlap`` texts.
    """
    found = list_sets(directory).get(set_name)
    if not found:
        raise GuardError(f"no set {set_name!r} in {directory}")
    splits = splits or found
    out, where = {}, {}
    for split in splits:
        manifest = read_manifest(directory, set_name, split)
        keys: set[str] = set()

        def tracked(records, keys=keys):
            for rec in records:
                keys.add(group_key(rec))
                yield rec

        st = record_stats(tracked(open_set(directory, set_name, split, allow_incomplete=True)), top_sources)
        st["skipped"] = dict((manifest or {}).get("skipped") or {})
        st["complete"] = bool(manifest["complete"]) if manifest else True
        out[split] = st
        if split in OPENAI_SPLITS:  # another split ("all") may well be their union
            for k in keys:
                where.setdefault(k, []).append(split)
    shared = {k: v for k, v in where.items() if len(v) > 1}
    from gpt2guard.datasets.overlap import split_overlap

    return {"set": set_name, "dir": str(directory), "splits": out,
            "leakage": {"shared_groups": len(shared),
                        "examples": [{"group": k, "splits": v} for k, v in sorted(shared.items())[:10]]},
            "overlap": split_overlap(directory, set_name)}

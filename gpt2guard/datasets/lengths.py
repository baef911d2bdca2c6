"""Length matching: make human and machine token-length distributions the same.

A detector that sees longer machine texts than human ones learns length; on OpenAI's data
length alone moves accuracy by about 15 points. Two methods:

``select``   keep, in every length bin, as many records of each kind as the scarcer kind
             has there (a seeded random choice); texts stay whole.
``truncate`` pair the records rank by rank after sorting each kind by length (the more
             numerous kind first subsampled at random) and cut the longer of each pair to
             the shorter's length, at a token boundary; both distributions then coincide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import derived_meta, open_set, set_files, set_meta
from gpt2guard.datasets.stats import summarize
from gpt2guard.datasets.tokens import (batched, count_tokens, cut_at_tokens, resolve_tokenizer, tokenizer_info,
                                       with_lengths)
from gpt2guard.datasets.staging import StagedSets
from gpt2guard.errors import GuardError

METHODS = ("select", "truncate")


def ks_distance(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between two empirical CDFs
    (0: same distribution, 1: disjoint)."""
    a, b = np.sort(np.asarray(a, dtype=float)), np.sort(np.asarray(b, dtype=float))
    if a.size == 0 or b.size == 0:
        return float("nan")
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, grid, side="right") / a.size
    cdf_b = np.searchsorted(b, grid, side="right") / b.size
    return float(np.max(np.abs(cdf_a - cdf_b)))


def plan_select(human: dict, machine: dict, bin_width: int = 16, seed: int = 0) -> tuple[dict, dict]:
    """Ids to keep from each side so that every length bin holds as many of each.

    Parameters
    ----------
    human, machine : dict
        ``id -> token length``, in file order.
    bin_width : int
        Width of the length bins in tokens.
    seed : int
        Seeds which records of the more numerous side a bin keeps.

    Returns
    -------
    (dict, dict)
        ``id -> target length`` (the record's own length: nothing is cut), in file order.
    """
    if bin_width < 1:
        raise GuardError("bin_width must be at least 1 token")
    rng = np.random.default_rng(seed)
    bins: dict[int, tuple[list, list]] = {}
    for side, lengths in enumerate((human, machine)):
        for rid, n in lengths.items():
            bins.setdefault(n // bin_width, ([], []))[side].append(rid)
    keep_h, keep_m = set(), set()
    for b in sorted(bins):
        hs, ms = bins[b]
        k = min(len(hs), len(ms))
        for ids, keep in ((hs, keep_h), (ms, keep_m)):
            chosen = rng.choice(len(ids), size=k, replace=False) if k < len(ids) else range(len(ids))
            keep.update(ids[i] for i in chosen)
    return ({r: n for r, n in human.items() if r in keep_h}, {r: n for r, n in machine.items() if r in keep_m})


def plan_truncate(human: dict, machine: dict, seed: int = 0) -> tuple[dict, dict]:
    """Rank-paired truncation targets (see the module docstring).

    Returns
    -------
    (dict, dict)
        ``id -> target length`` for the kept records of each side: for each pair, the
        shorter of the two lengths; a record whose target is below its length is cut.
    """
    rng = np.random.default_rng(seed)
    n = min(len(human), len(machine))
    sides = []
    for lengths in (human, machine):
        ids = list(lengths)
        if len(ids) > n:
            picked = np.sort(rng.choice(len(ids), size=n, replace=False))
            ids = [ids[i] for i in picked]
        sides.append(sorted(ids, key=lambda r, lengths=lengths: lengths[r]))  # stable: file order breaks ties
    targets_h, targets_m = {}, {}
    for h, m in zip(*sides):
        t = min(human[h], machine[m])
        targets_h[h], targets_m[m] = t, t
    order = lambda targets, lengths: {r: targets[r] for r in lengths if r in targets}  # noqa: E731
    return order(targets_h, human), order(targets_m, machine)


def apply_plan(records: Iterable[Record], targets: dict, tokenizer, batch_size: int = 256) -> Iterator[Record]:
    """Stream the planned records, cutting each whose target is below its length.

    A cut record keeps its text up to the target token, gets ``ended = False``, its new
    length (counted again) and ``extra["truncated_from"]`` (the length it had).
    """
    for chunk in batched((r for r in records if r.id in targets), batch_size):
        cut = [r for r in chunk if targets[r.id] < r.length]
        heads = cut_at_tokens([r.text for r in cut], [targets[r.id] for r in cut], tokenizer)
        for rec, (head, _), n in zip(cut, heads, count_tokens([h for h, _ in heads], tokenizer)):
            rec.extra["truncated_from"] = rec.length
            rec.text, rec.length, rec.ended = head, n, False
        yield from chunk


def _lengths(directory, set_name: str, split: str, tokenizer, tok_sha: str) -> dict:
    """``id -> length`` of a set, counting again unless its lengths came from this tokenizer."""
    tok = set_meta(directory, set_name, split).get("tokenizer") or {}
    keep = tok.get("sha256") == tok_sha and not tok.get("kept_source_lengths")
    out = {}
    for rec in with_lengths(open_set(directory, set_name, split), tokenizer, keep_existing=keep):
        if rec.id in out:
            raise GuardError(f"id {rec.id!r} appears twice in {set_name}.{split}: deduplicate it first")
        out[rec.id] = rec.length
    return out


def _measured(records: Iterable[Record], lengths: dict) -> Iterator[Record]:
    """Records with the lengths counted in the first pass."""
    for rec in records:
        rec.length = lengths[rec.id]
        yield rec


def match_lengths(directory, human_set: str, machine_set: str, split: str, out_dir, *, tokenizer=None,
                  family: str = "nano", method: str = "select", bin_width: int = 16, seed: int = 0,
                  shard_size: int | None = None, card: bool = True) -> dict:
    """Write length-matched copies of a human and a machine set to ``out_dir``.

    Parameters
    ----------
    directory : path
        Holds both sets (same split).
    human_set, machine_set, split : str
        The two sets; the outputs keep their names, in ``out_dir``.
    tokenizer, family
        Lengths are counted with ``tokenizer``, by default the tokenizer of model family
        ``family`` (reused from a set whose manifest names the same tokenizer).
    method : {"select", "truncate"}
    bin_width : int
        Bin width in tokens for ``select``.
    seed : int
        Seeds the random choices; the same seed gives the same output.

    Returns
    -------
    dict
        Records and length summaries per side before and after, and the
        Kolmogorov-Smirnov distance between the two sides before and after.
    """
    if method not in METHODS:
        raise GuardError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    if human_set == machine_set:
        raise GuardError("the human and the machine set must be two different sets")
    if Path(out_dir).resolve() == Path(directory).resolve():
        raise GuardError("length-matched sets keep their names: write them to another directory")
    for name in (human_set, machine_set):
        set_files(directory, name, split)  # both exist, before a family is loaded (or built)
    tokenizer = resolve_tokenizer(tokenizer, family)
    info = tokenizer_info(tokenizer, family)
    human = _lengths(directory, human_set, split, tokenizer, info["sha256"])
    machine = _lengths(directory, machine_set, split, tokenizer, info["sha256"])
    plan = plan_select(human, machine, bin_width, seed) if method == "select" else plan_truncate(human, machine, seed)
    ks_before = round(ks_distance(list(human.values()), list(machine.values())), 4)
    step = {"op": "match_lengths", "method": method, "seed": seed, "human": human_set, "machine": machine_set,
            "split": split, **({"bin_width": bin_width} if method == "select" else {}),
            "result": {"ks_before": ks_before,
                       "ks_planned": round(ks_distance(list(plan[0].values()), list(plan[1].values())), 4)}}
    result = {"method": method, "seed": seed, "before": {}, "after": {}}
    after = {}
    metas = {}
    for name in (human_set, machine_set):
        metas[(name, split)] = derived_meta(directory, name, split, step)
        metas[(name, split)]["tokenizer"] = info
    with StagedSets(out_dir, metas, shard_size) as staged:
        for name, lengths, targets in ((human_set, human, plan[0]), (machine_set, machine, plan[1])):
            kept = []
            writer = staged.writers[(name, split)]
            for rec in apply_plan(_measured(open_set(directory, name, split), lengths), targets, tokenizer):
                kept.append(rec.length)
                if rec.id not in writer.existing_ids:
                    writer.write(rec)
            result["before"][name] = summarize(list(lengths.values()))
            result["after"][name] = summarize(kept)
            after[name] = kept
    result["ks_before"] = ks_before
    result["ks_after"] = round(ks_distance(after[human_set], after[machine_set]), 4)
    if card:
        from gpt2guard.datasets.card import write_card

        for name in (human_set, machine_set):
            write_card(out_dir, name)
    return result

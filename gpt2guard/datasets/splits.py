"""Leak-free splits: a document, its prompt and every continuation land in one split.

Records are grouped by :func:`group_key`, the source a record derives from, and each group
goes whole to the split a seeded hash of its key picks (the same hash that assigns the
builtin corpus's sources, so splitting that corpus with seed 0 reproduces its own split).
The assignment of a group never depends on the other groups: adding documents never moves
one already assigned.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from gpt2guard.datasets.builtin import DEFAULT_FRACTIONS, SPLITS, split_of
from gpt2guard.datasets.records import Record
from gpt2guard.datasets.sets import derived_meta, open_set, set_files
from gpt2guard.datasets.staging import StagedSets
from gpt2guard.errors import GuardError


def group_key(record: Record) -> str:
    """The source a record derives from.

    A machine continuation names its prompt's source in ``provenance["prompt_source"]``;
    a human document, prompt or human continuation names it in ``source``; a record with
    neither is its own group, keyed by its document id (``provenance["doc_id"]``), or for
    an unconditional generated record by its job and id (``<job>#<id>``: record 0 of the
    train job and record 0 of the test job are two documents), else by its id.
    """
    prov = record.provenance or {}
    job = f"{prov['job']}#{record.id}" if prov.get("job") else None
    for key in (prov.get("prompt_source"), record.source, prov.get("doc_id"), job, record.id):
        if key is not None:
            return str(key)
    return ""


def check_fractions(fractions) -> tuple[float, float, float]:
    """Three non-negative fractions summing to 1 (train, valid, test), else GuardError."""
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise GuardError(f"fractions must be three numbers, not {fractions!r}") from None
    if len(fr) != 3 or not all(0 <= f <= 1 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:  # NaN fails 0 <= f
        raise GuardError(f"fractions must be three non-negative numbers summing to 1 (train, valid, test), not {fr}")
    return fr


def assign_split(record: Record, seed: int = 0, fractions=DEFAULT_FRACTIONS) -> str:
    """The split of a record's group: ``train``, ``valid`` or ``test``."""
    return split_of(group_key(record), seed, tuple(fractions))


def find_leaks(splits: dict[str, Iterable[Record]], max_examples: int = 10) -> dict:
    """Groups whose records appear in more than one split.

    Parameters
    ----------
    splits : dict
        ``split name -> records`` (records of several sets may be chained per split).

    Returns
    -------
    dict
        ``shared`` (number of groups in two or more splits) and ``examples``
        (``{"group", "splits"}``).
    """
    where: dict[str, set[str]] = {}
    for split, records in splits.items():
        for rec in records:
            where.setdefault(group_key(rec), set()).add(split)
    shared = {k: sorted(v) for k, v in where.items() if len(v) > 1}
    examples = [{"group": k, "splits": v} for k, v in sorted(shared.items())[:max_examples]]
    return {"groups": len(where), "shared": len(shared), "examples": examples}


def split_set(directory, set_name: str, split: str = "all", out_dir=None, *, seed: int = 0,
              fractions=DEFAULT_FRACTIONS, shard_size: int | None = None, card: bool = True) -> dict:
    """Split one split of a set into ``train``, ``valid`` and ``test`` by source group.

    Parameters
    ----------
    directory, set_name, split
        The input (e.g. an import written as split ``all``).
    out_dir : path, optional
        Where ``<set>.train/valid/test`` go; defaults to ``directory``.
    seed : int
        Seeds the group-to-split hash; the same seed gives the same split.
    fractions : three floats
        Expected share of groups in train, valid and test. Shares of records vary with
        group sizes; the result reports both.
    shard_size : int, optional
        Shard the outputs.

    Returns
    -------
    dict
        Records and groups per split, and how many records had no source (each its own
        group). All three splits are written together or not at all
        (:class:`~gpt2guard.datasets.staging.StagedSets`); a rerun after a kill resumes.
    """
    fractions = check_fractions(fractions)
    out_dir = Path(out_dir or directory)
    if Path(out_dir).resolve() == Path(directory).resolve() and split in SPLITS:
        raise GuardError(f"splitting {set_name}.{split} into the same directory would overwrite it: "
                         "give another output directory")
    step = {"op": "split", "input": f"{set_name}.{split}", "by": "source group", "seed": seed,
            "fractions": list(fractions)}
    set_files(directory, set_name, split)  # the input exists and is finished, before anything is staged
    meta = derived_meta(directory, set_name, split, step)
    records, groups, no_source = Counter(), {s: set() for s in SPLITS}, 0
    with StagedSets(out_dir, {(set_name, s): meta for s in SPLITS}, shard_size) as staged:
        for rec in open_set(directory, set_name, split):
            target = assign_split(rec, seed, fractions)
            groups[target].add(group_key(rec))
            records[target] += 1
            no_source += rec.source is None and not (rec.provenance or {}).get("prompt_source")
            w = staged.writers[(set_name, target)]
            if rec.id not in w.existing_ids:
                w.write(rec)
    if card:
        from gpt2guard.datasets.card import write_card

        write_card(out_dir, set_name)
    return {"dir": str(out_dir), "set": set_name, "records": {s: records[s] for s in SPLITS},
            "groups": {s: len(groups[s]) for s in SPLITS}, "without_source": no_source, "seed": seed,
            "fractions": list(fractions)}

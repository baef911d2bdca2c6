"""Texts shared across the train, valid and test splits of a set.

A detector evaluated on a text it was trained on measures memory, not detection. Two
records share a text when their texts are equal once whitespace runs are collapsed and the
ends stripped (:func:`~gpt2guard.datasets.dedup.exact_key`, a 16-byte BLAKE2b digest, so
only digests are held: 16 bytes per distinct text). Empty texts are not compared: they
carry the ``empty`` flag instead. Other splits (an ``all`` split the three were made from)
are not compared.
"""

from __future__ import annotations

from pathlib import Path

from gpt2guard.datasets.dedup import exact_key
from gpt2guard.datasets.names import OPENAI_SPLITS
from gpt2guard.datasets.sets import list_sets, open_set

_EMPTY = exact_key("")


def split_overlap(directory, set_name: str, max_examples: int = 10) -> dict:
    """Texts found in more than one of the ``train``, ``valid`` and ``test`` splits of a set.

    Parameters
    ----------
    directory : path
        The directory holding the set (any layout; unfinished splits are read as far as
        they are finished, bad lines skipped).
    set_name : str
        The set.
    max_examples : int
        How many shared texts to describe.

    Returns
    -------
    dict
        ``splits`` (those compared), ``shared`` (distinct texts found in two or more of
        them), ``records`` (per split, its records whose text is in another split) and
        ``examples`` (per shared text, ``{split: first id}``).
    """
    found = list_sets(directory).get(set_name, []) if Path(directory).is_dir() else []
    splits = [s for s in OPENAI_SPLITS if s in found]
    where: dict[bytes, dict[str, list]] = {}  # text key -> {split: [first id, count]}
    for split in splits if len(splits) > 1 else []:
        for rec in open_set(directory, set_name, split, on_error="skip", allow_incomplete=True):
            key = exact_key(rec.text)
            if key == _EMPTY:
                continue
            entry = where.setdefault(key, {}).setdefault(split, [rec.id, 0])
            entry[1] += 1
    records = {s: 0 for s in splits}
    shared, examples = 0, []
    for found_in in where.values():
        if len(found_in) < 2:
            continue
        shared += 1
        for split, (_, count) in found_in.items():
            records[split] += count
        if len(examples) < max_examples:
            examples.append({s: rid for s, (rid, _) in found_in.items()})
    return {"splits": splits, "shared": shared, "records": records, "examples": examples}


def describe(overlap: dict) -> str:
    """One line: how many texts are shared, with an example's ids."""
    ex = overlap["examples"][0] if overlap["examples"] else {}
    example = " = ".join(f"id {rid!r} in {split}" for split, rid in ex.items())
    return (f"{overlap['shared']} text(s) appear in more than one of {', '.join(overlap['splits'])} "
            f"(e.g. {example})")

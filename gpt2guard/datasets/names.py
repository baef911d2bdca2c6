"""Set and file names, following OpenAI's gpt-2-output-dataset.

A *set* is a named collection of records (``webtext``, ``small-117M-k40``, ``nano-small``)
with one file family per *split* (``train``, ``valid``, ``test``, or any other name) in a
directory. Two layouts exist, and a reader finds either:

single file (the default, and OpenAI's own layout)::

    <set>.<split>.jsonl             the records, one JSON object per line (may be .jsonl.gz)
    <set>.<split>.manifest.json     our manifest: counts, SHA-256, skipped lines, provenance

sharded (``shard_size`` given to the writer)::

    <set>.<split>.00000.jsonl       shard 0, 1, ... each at most shard_size records
    <set>.<split>.manifest.json     the list of shards with counts and SHA-256

A single-file set is exactly what tools written for OpenAI's dataset open; they ignore the
manifest. An unfinished shard is a hidden ``.<set>.<split>.NNNNN.jsonl.partial`` file that
no reader mistakes for data. Set and split names use letters, digits, ``_`` and ``-`` (no
dots, so a file name parses one way only).
"""

from __future__ import annotations

import re

from gpt2guard.errors import GuardError

#: OpenAI's GPT-2 sizes as named in gpt-2-output-dataset.
OPENAI_SIZES = ("small-117M", "medium-345M", "large-762M", "xl-1542M")
#: Every set of gpt-2-output-dataset: the human WebText set, then each size sampled
#: purely, with top-k 40, and with nucleus sampling.
OPENAI_SETS = ("webtext",) + tuple(f"{s}{m}" for s in OPENAI_SIZES for m in ("", "-k40", "-nucleus"))
OPENAI_SPLITS = ("train", "valid", "test")

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def check_name(name: str, what: str = "set") -> str:
    """Return ``name`` if it is a valid set or split name, else raise GuardError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise GuardError(f"invalid {what} name {name!r}: use letters, digits, '_' and '-' (no dots or slashes)")
    return name


def set_name(family: str, size: str, sampling: str | None = None) -> str:
    """The name of a generated set, in OpenAI's pattern.

    Parameters
    ----------
    family, size : str
        Model family and size, e.g. ``"nano"`` and ``"small"``.
    sampling : str, optional
        ``None`` or ``"pure"`` for plain sampling, ``"k40"`` style for top-k, ``"nucleus"``
        for top-p; any other suffix is used as given.

    Returns
    -------
    str
        ``nano-small``, ``nano-small-k40``, ``nano-small-nucleus``...
    """
    name = f"{family}-{size}" if sampling in (None, "", "pure") else f"{family}-{size}-{sampling}"
    return check_name(name)


def data_file(set_name: str, split: str, gz: bool = False) -> str:
    """File name of a single-file set: ``<set>.<split>.jsonl`` (``.gz`` when compressed)."""
    return f"{set_name}.{split}.jsonl" + (".gz" if gz else "")


def shard_file(set_name: str, split: str, index: int) -> str:
    """File name of shard ``index`` of a sharded set: ``<set>.<split>.NNNNN.jsonl``."""
    return f"{set_name}.{split}.{index:05d}.jsonl"


def manifest_file(set_name: str, split: str) -> str:
    """File name of a set's manifest: ``<set>.<split>.manifest.json``."""
    return f"{set_name}.{split}.manifest.json"


def card_file(set_name: str) -> str:
    """File name of a set's dataset card: ``<set>.card.md`` (one card covers every split)."""
    return f"{set_name}.card.md"


_FILE = re.compile(r"(?P<set>[A-Za-z0-9_][A-Za-z0-9_-]*)\.(?P<split>[A-Za-z0-9_][A-Za-z0-9_-]*)"
                   r"(?:\.(?P<shard>\d{5}))?\.(?:jsonl(?:\.gz)?|manifest\.json)")


def parse_file(name: str) -> tuple[str, str] | None:
    """``(set, split)`` of a data, shard or manifest file name, or None for any other name."""
    m = _FILE.fullmatch(name)
    return (m["set"], m["split"]) if m else None


def split_order(split: str) -> tuple:
    """Sort key putting ``train``, ``valid``, ``test`` first, then other splits by name."""
    return (OPENAI_SPLITS.index(split), "") if split in OPENAI_SPLITS else (len(OPENAI_SPLITS), split)

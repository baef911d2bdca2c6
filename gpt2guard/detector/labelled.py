"""Labelled documents for training and evaluation, read from dataset set directories.

One human set and any number of machine sets (by default every other set found) are read
from one or more directories, for one split. Machine records keep their generator size and
sampling method (from provenance) for breakdowns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpt2guard.errors import GuardError


@dataclass
class Labelled:
    """Documents with labels ("human"/"machine") and per-document groups."""

    texts: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    samplings: list = field(default_factory=list)
    sets: list = field(default_factory=list)

    @property
    def y(self):
        import numpy as np

        return np.array([1 if lab == "machine" else 0 for lab in self.labels], dtype=np.int64)

    def select(self, keep) -> "Labelled":
        """The documents where ``keep`` is true."""
        out = Labelled()
        for name in ("texts", "labels", "sizes", "samplings", "sets"):
            setattr(out, name, [v for v, k in zip(getattr(self, name), keep) if k])
        return out


def _find(dirs, set_name: str, split: str):
    from gpt2guard.datasets.sets import list_sets

    for d in dirs:
        if split in list_sets(d).get(set_name, []):
            return d
    return None


def load_labelled(dirs, human: str, machine=None, split: str = "train", *, limit: int | None = None,
                  require: bool = True, human_only: bool = False) -> Labelled:
    """Read ``human`` and ``machine`` sets' ``split`` from ``dirs``.

    Parameters
    ----------
    dirs : list of path
        Set directories, searched in order.
    human : str
        Name of the human set (e.g. ``builtin`` from ``gpt2guard datasets builtin``).
    machine : list of str, optional
        Machine set names; default every other set that has this split.
    split : str
    limit : int, optional
        At most this many documents per set.
    human_only : bool
        Read the human set only (for calibration).
    require : bool
        Raise GuardError when the human set or every machine set lacks the split; otherwise
        return what exists.
    """
    from gpt2guard.datasets.sets import list_sets, open_set
    from gpt2guard.detector.evaluate import record_groups

    dirs = list(dirs)
    if not dirs:
        raise GuardError("give at least one --data directory")
    if human_only:
        machine = []
    elif not machine:
        machine = sorted({name for d in dirs for name, splits in list_sets(d).items()
                          if name != human and split in splits})
    out = Labelled()
    hdir = _find(dirs, human, split)
    if hdir is None and require:
        raise GuardError(f"no {split!r} split of the human set {human!r} in {', '.join(map(str, dirs))}")
    plan = ([(hdir, human, "human")] if hdir is not None else [])
    for name in machine:
        mdir = _find(dirs, name, split)
        if mdir is None:
            if require:
                raise GuardError(f"no {split} split of the machine set {name!r} in {', '.join(map(str, dirs))}")
            continue
        plan.append((mdir, name, "machine"))
    for d, name, label in plan:
        for i, rec in enumerate(open_set(d, name, split)):
            if limit is not None and i >= limit:
                break
            groups = record_groups(rec) if label == "machine" else {"size": None, "sampling": None}
            out.texts.append(rec.text)
            out.labels.append(label)
            out.sizes.append(groups["size"])
            out.samplings.append(groups["sampling"])
            out.sets.append(name)
    if require and not human_only and ("machine" not in out.labels or "human" not in out.labels):
        raise GuardError(f"the {split} split needs human and machine documents")
    return out

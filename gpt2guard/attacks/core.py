"""The attack registry, the result of an attack and attack specs.

Every attack is a pure function of ``(text, rate, seed)``. It first lists the places in the
text it could act on (its *candidates*: letters for ``homoglyph``, gaps between characters
for ``whitespace``, articles for ``article_deletion``...), then acts on exactly
``round(rate * n_candidates)`` of them (halves rounded up), chosen without replacement by
:func:`numpy.random.default_rng` seeded with ``seed``; the same generator then draws each
replacement. Every change is recorded in the *original* text's coordinates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from gpt2guard.errors import GuardError

#: name -> attack function ``(text, rate, seed) -> Attacked``, filled by the attack modules.
ATTACKS: dict[str, Callable[[str, float, int], "Attacked"]] = {}


@dataclass(frozen=True)
class Attacked:
    """A text after an attack, and what the attack did to it.

    Attributes
    ----------
    text : str
        The attacked text.
    name : str
        The attack's name (a key of :data:`ATTACKS`).
    rate : float
        Fraction of candidate places acted on.
    seed : int
        The random seed.
    n_candidates : int
        Places in the original text the attack could act on.
    n_changed : int
        Places it changed (``round(rate * n_candidates)``).
    changes : list of dict
        ``{"pos": int, "before": str, "after": str}`` per change, in order of ``pos``, where
        ``pos`` indexes the original text, ``before`` is the original text at ``pos`` that
        was replaced (``""`` for an insertion) and ``after`` what replaced it (``""`` for a
        deletion).
    """

    text: str
    name: str
    rate: float
    seed: int
    n_candidates: int
    n_changed: int
    changes: list = field(default_factory=list, compare=False)

    def provenance(self) -> dict:
        """What to record with an attacked record: attack, rate, seed and the counts."""
        return {"attack": self.name, "rate": self.rate, "seed": self.seed,
                "n_changed": self.n_changed, "n_candidates": self.n_candidates}


def _number(rate: float) -> str:
    """``1.0`` -> ``"1"``, ``0.2`` -> ``"0.2"``: the shortest text that reads back as ``rate``."""
    return repr(float(rate)).removesuffix(".0")


@dataclass(frozen=True)
class AttackSpec:
    """One attack at one rate, as given on the command line (``whitespace=0.2``).

    ``str(spec)`` gives the spec back; :attr:`label` names it inside a set name.
    """

    name: str
    rate: float

    def __post_init__(self):
        check_attack(self.name, self.rate)
        object.__setattr__(self, "rate", float(self.rate))

    @property
    def label(self) -> str:
        """``homoglyph-1``, ``whitespace-0.2``: letters, digits, ``_``, ``-`` only (dots become ``p``)."""
        return f"{self.name}-{_number(self.rate).replace('.', 'p').replace('+', '')}"

    def __str__(self) -> str:
        return f"{self.name}={_number(self.rate)}"


def check_attack(name, rate) -> None:
    """Raise GuardError unless ``name`` is a known attack and ``rate`` a number in [0, 1]."""
    _load()
    if name not in ATTACKS:
        raise GuardError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}")
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating, np.integer)) \
            or not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
        raise GuardError(f"attack rate must be a number in [0, 1], got {rate!r} for {name}")


def check_seed(seed) -> int:
    """``seed`` as an int, or GuardError unless it is a non-negative integer."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise GuardError(f"attack seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def parse_attacks(text: str) -> list[AttackSpec]:
    """Parse ``"homoglyph=1.0,whitespace=0.2"`` into attack specs.

    Parameters
    ----------
    text : str
        Comma-separated ``name=rate`` items; each name at most once per rate.

    Returns
    -------
    list of AttackSpec
        In the order given.

    Raises
    ------
    GuardError
        An empty list, an item without ``=``, an unknown name, a rate that is not a number
        in [0, 1], or the same spec twice.
    """
    if not isinstance(text, str) or not text.strip():
        raise GuardError("no attacks given: use name=rate items such as homoglyph=1.0,whitespace=0.2")
    specs = []
    for item in text.split(","):
        item = item.strip()
        name, eq, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not eq or not name or not value:
            raise GuardError(f"attack {item!r} must be name=rate, e.g. whitespace=0.2")
        try:
            rate = float(value)
        except ValueError:
            raise GuardError(f"attack rate must be a number in [0, 1], got {value!r} for {name}") from None
        spec = AttackSpec(name, rate)
        if spec in specs:
            raise GuardError(f"attack {spec} is given twice")
        specs.append(spec)
    return specs


def as_specs(specs) -> list[AttackSpec]:
    """``specs`` as a list of AttackSpec: parsed from a string, or checked when already specs."""
    if isinstance(specs, str):
        return parse_attacks(specs)
    specs = list(specs)
    if not specs or not all(isinstance(s, AttackSpec) for s in specs):
        raise GuardError("give attacks as AttackSpec objects or a string such as homoglyph=1.0,whitespace=0.2")
    if len(set(specs)) != len(specs):
        raise GuardError("the same attack spec is given twice")
    return specs


def attack(text: str, name: str, rate: float, seed: int) -> Attacked:
    """Apply one attack to one text.

    Parameters
    ----------
    text : str
        The text to attack.
    name : str
        An attack name, a key of :data:`ATTACKS`.
    rate : float
        In [0, 1]: the fraction of the attack's candidate places it acts on (exactly
        ``round(rate * n_candidates)`` of them).
    seed : int
        Non-negative seed of the random choices; the result depends on nothing else.

    Returns
    -------
    Attacked
        The attacked text and a record of every change.

    Raises
    ------
    GuardError
        An unknown attack, a rate outside [0, 1], a bad seed or a text that is not a str.
    """
    check_attack(name, rate)
    seed = check_seed(seed)
    if not isinstance(text, str):
        raise GuardError(f"an attack needs text (str), not {type(text).__name__}")
    return ATTACKS[name](text, float(rate), seed)


def register(name: str):
    """Decorator: register an attack built from a candidate finder (see :func:`run_edits`)."""

    def wrap(fn):
        ATTACKS[name] = fn
        fn.attack_name = name
        return fn

    return wrap


def n_to_change(rate: float, n: int) -> int:
    """``round(rate * n)`` with halves rounded up (so rate 0.5 of 1 candidate changes it)."""
    return min(n, math.floor(rate * n + 0.5))


def run_edits(text: str, name: str, rate: float, seed: int, candidates: list, replace) -> Attacked:
    """Choose candidates, draw their replacements and apply them.

    Parameters
    ----------
    candidates : list of (start, end)
        Non-overlapping spans of ``text`` (``start == end`` for an insertion point), in
        increasing order.
    replace : callable
        ``replace(before: str, start: int, rng) -> str``: the text that replaces
        ``text[start:end]``; must differ from it.
    """
    rng = np.random.default_rng(seed)
    n = len(candidates)
    k = n_to_change(rate, n)
    chosen = np.sort(rng.choice(n, size=k, replace=False)) if k else np.empty(0, dtype=int)
    pieces, changes, done = [], [], 0
    for i in chosen.tolist():
        start, end = candidates[i]
        before = text[start:end]
        after = replace(before, start, rng)
        pieces += [text[done:start], after]
        changes.append({"pos": start, "before": before, "after": after})
        done = end
    pieces.append(text[done:])
    return Attacked("".join(pieces), name, rate, seed, n, len(changes), changes)


def apply_changes(text: str, changes: list) -> str:
    """Replay recorded changes on the original text (the inverse check of :class:`Attacked`)."""
    pieces, done = [], 0
    for change in sorted(changes, key=lambda c: c["pos"]):
        pos = change["pos"]
        if pos < done or text[pos:pos + len(change["before"])] != change["before"]:
            raise GuardError(f"change at {pos} does not match the text")
        pieces += [text[done:pos], change["after"]]
        done = pos + len(change["before"])
    pieces.append(text[done:])
    return "".join(pieces)


def match_case(model: str, word: str) -> str:
    """``word`` in the case pattern of ``model``: UPPER, Title or lower."""
    if len(model) > 1 and model.isupper():
        return word.upper()
    if model[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


# A word of ASCII letters that is not part of a longer word of any script.
WORD = re.compile(r"(?<![^\W\d_])[A-Za-z]+(?![^\W\d_])")


def plain_case(word: str) -> bool:
    """Whether ``word`` is lower case, Title case or UPPER case (one that :func:`match_case` restores)."""
    return word.islower() or word.isupper() or (word[:1].isupper() and word[1:].islower())


def _load() -> None:
    """Import the attack modules (they register themselves)."""
    if not ATTACKS:
        from gpt2guard.attacks import characters, structure, words  # noqa: F401

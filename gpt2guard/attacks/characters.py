"""Character-level attacks: look-alike letters, invisible characters, extra spaces, case flips."""

from __future__ import annotations

import re

from gpt2guard.attacks import data
from gpt2guard.attacks.core import Attacked, register, run_edits

#: Zero-width format characters (general category Cf, rendered as nothing) the
#: ``zero_width`` attack inserts: ZERO WIDTH SPACE, ZERO WIDTH NON-JOINER, ZERO WIDTH
#: JOINER, WORD JOINER and ZERO WIDTH NO-BREAK SPACE.
ZERO_WIDTH = ("\u200b", "\u200c", "\u200d", "\u2060", "\ufeff")

# A gap between two characters neither of which is white space.
_GAP = re.compile(r"(?<=\S)(?=\S)")


def _gaps(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.start()) for m in _GAP.finditer(text)]


@register("homoglyph")
def homoglyph(text: str, rate: float, seed: int) -> Attacked:
    """Replace ASCII letters by characters Unicode lists as confusable with them.

    Candidates: every ASCII letter with a non-ASCII confusable (all but ``m``). Each chosen
    letter becomes one of its confusables, drawn uniformly (Cyrillic and Greek letters,
    mathematical alphanumerics, full-width forms, other scripts' look-alikes).
    """
    table = data.homoglyphs()
    candidates = [(i, i + 1) for i, ch in enumerate(text) if ch in table]
    return run_edits(text, "homoglyph", rate, seed, candidates,
                     lambda before, pos, rng: table[before][int(rng.integers(len(table[before])))])


@register("zero_width")
def zero_width(text: str, rate: float, seed: int) -> Attacked:
    """Insert invisible zero-width characters between characters.

    Candidates: every gap between two characters that are not white space. Each chosen gap
    gets one of :data:`ZERO_WIDTH`, drawn uniformly.
    """
    return run_edits(text, "zero_width", rate, seed, _gaps(text),
                     lambda before, pos, rng: ZERO_WIDTH[int(rng.integers(len(ZERO_WIDTH)))])


@register("whitespace")
def whitespace(text: str, rate: float, seed: int) -> Attacked:
    """Insert a space between characters (``detector`` -> ``dete ctor``).

    Candidates: every gap between two characters that are not white space; each chosen gap
    gets one plain space.
    """
    return run_edits(text, "whitespace", rate, seed, _gaps(text), lambda before, pos, rng: " ")


@register("case")
def case(text: str, rate: float, seed: int) -> Attacked:
    """Flip letters between upper and lower case.

    Candidates: every letter whose case flip is one different character (``ß`` is not one).
    """
    candidates = [(i, i + 1) for i, ch in enumerate(text)
                  if len(ch.swapcase()) == 1 and ch.swapcase() != ch and ch.swapcase().swapcase() == ch]
    return run_edits(text, "case", rate, seed, candidates, lambda before, pos, rng: before.swapcase())

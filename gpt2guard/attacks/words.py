"""Word-level attacks: article deletion, number swaps, British/American spellings, misspellings."""

from __future__ import annotations

import re

from gpt2guard.attacks import data
from gpt2guard.attacks.core import WORD, Attacked, match_case, plain_case, register, run_edits

# An English article and the white space after it (both removed).
_ARTICLE = re.compile(r"(?<![^\W\d_])(?:a|an|the)(?![^\W\d_])[^\S\n]*", re.IGNORECASE)
_NUMBER = re.compile(r"[0-9]+")


@register("article_deletion")
def article_deletion(text: str, rate: float, seed: int) -> Attacked:
    """Delete the articles ``a``, ``an`` and ``the`` (any case) with the spaces after them.

    Candidates: every such word.
    """
    candidates = [m.span() for m in _ARTICLE.finditer(text)]
    return run_edits(text, "article_deletion", rate, seed, candidates, lambda before, pos, rng: "")


def _other_number(before: str, pos: int, rng) -> str:
    """A different number with as many digits (no new leading zero)."""
    digits = rng.integers(0, 10, size=len(before))
    if len(before) > 1 and before[0] != "0" and digits[0] == 0:
        digits[0] = int(rng.integers(1, 10))
    after = "".join(map(str, digits.tolist()))
    if after == before:  # one in 10**len: move the last digit on
        after = after[:-1] + str((int(after[-1]) + 1) % 10)
    return after


@register("number_swap")
def number_swap(text: str, rate: float, seed: int) -> Attacked:
    """Replace numbers by other numbers of as many digits (``1984`` -> ``3071``).

    Candidates: every run of ASCII digits.
    """
    candidates = [m.span() for m in _NUMBER.finditer(text)]
    return run_edits(text, "number_swap", rate, seed, candidates, _other_number)


def _words_in(text: str, table) -> list[tuple[int, int]]:
    return [m.span() for m in WORD.finditer(text) if m.group().lower() in table and plain_case(m.group())]


@register("spelling")
def spelling(text: str, rate: float, seed: int) -> Attacked:
    """Switch words between British and American spelling (``colour`` <-> ``color``).

    Candidates: every word (lower, Title or UPPER case) with another spelling in codespell's
    British/American list; the case is kept.
    """
    table = data.spellings()
    return run_edits(text, "spelling", rate, seed, _words_in(text, table),
                     lambda before, pos, rng: match_case(before, table[before.lower()]))


@register("misspelling")
def misspelling(text: str, rate: float, seed: int) -> Attacked:
    """Replace words by common misspellings of them (``receive`` -> ``recieve``).

    Candidates: every word (lower, Title or UPPER case) with a known misspelling in
    codespell's dictionary; one misspelling is drawn uniformly and the case kept.
    """
    table = data.misspellings()

    def misspell(before, pos, rng):
        options = table[before.lower()]
        return match_case(before, options[int(rng.integers(len(options)))])

    return run_edits(text, "misspelling", rate, seed, _words_in(text, table), misspell)

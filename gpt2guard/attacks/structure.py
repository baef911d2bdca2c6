"""Structural attacks: paragraph breaks."""

from __future__ import annotations

import re

from gpt2guard.attacks.core import Attacked, register, run_edits

# The white space after a sentence's end (. ! or ?, optionally closed by a quote or
# bracket) that is followed by more text and is not already a paragraph break.
_SENTENCE_GAP = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"'\u201d\u2019)\]]))[^\S\n]*\n?[^\S\n]*(?=\S)")


@register("paragraph")
def paragraph(text: str, rate: float, seed: int) -> Attacked:
    """Break paragraphs after sentences: the white space after a sentence becomes a blank line.

    Candidates: every run of white space after ``.``, ``!`` or ``?`` (optionally followed
    by a closing quote or bracket) that holds at most one line break and precedes more text.
    """
    candidates = [m.span() for m in _SENTENCE_GAP.finditer(text) if m.end() > m.start()]
    return run_edits(text, "paragraph", rate, seed, candidates, lambda before, pos, rng: "\n\n")

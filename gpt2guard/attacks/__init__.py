"""Model-free text attacks, to measure how well a detector resists cheap evasion.

Each attack is a pure function of ``(text, rate, seed)`` that records what it changed
(see :mod:`gpt2guard.attacks.core`)::

    >>> from gpt2guard.attacks import attack
    >>> attack("The cat sat.", "article_deletion", 1.0, seed=0).text
    'cat sat.'

Attacks: ``homoglyph``, ``zero_width``, ``whitespace``, ``case`` (characters);
``article_deletion``, ``number_swap``, ``spelling``, ``misspelling`` (words);
``paragraph`` (structure).
"""

from gpt2guard.attacks import characters, structure, words  # noqa: F401  (register the attacks)
from gpt2guard.attacks.core import ATTACKS, Attacked, AttackSpec, apply_changes, attack, parse_attacks

__all__ = ["ATTACKS", "Attacked", "AttackSpec", "apply_changes", "attack", "parse_attacks"]

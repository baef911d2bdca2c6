"""Each attack changes what it says, at the rate asked, the same way for the same seed."""

from __future__ import annotations

import dataclasses
import re
import unicodedata

import pytest

from gpt2guard.attacks import ATTACKS, Attacked, AttackSpec, apply_changes, attack, data, parse_attacks
from gpt2guard.attacks.characters import ZERO_WIDTH
from gpt2guard.errors import GuardError

TEXT = (
    "The colour of the 1984 car was grey, and the neighbours said it had an odour. "
    "I believe they will receive the letter tomorrow! Then a friend wrote 12 lines in 2003.\n"
    "Next year, the centre will organise a meeting? The answer is in the archive. "
    "Beautiful weather across the whole country; the government announced 45 new programmes."
) * 3

NAMES = ["homoglyph", "zero_width", "whitespace", "case", "article_deletion",
         "number_swap", "paragraph", "spelling", "misspelling"]


def test_registry_has_every_attack():
    assert sorted(ATTACKS) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_rate_zero_changes_nothing(name):
    out = attack(TEXT, name, 0.0, seed=1)
    assert out.text == TEXT and out.changes == [] and out.n_changed == 0
    assert out.n_candidates > 0


@pytest.mark.parametrize("name", NAMES)
def test_rate_one_changes_every_candidate(name):
    out = attack(TEXT, name, 1.0, seed=1)
    assert out.n_changed == out.n_candidates == len(out.changes) > 0
    assert out.text != TEXT


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rate", [0.1, 0.37, 0.5])
def test_intermediate_rate_changes_round_rate_times_candidates(name, rate):
    out = attack(TEXT, name, rate, seed=3)
    expected = int(rate * out.n_candidates + 0.5)
    assert out.n_changed == len(out.changes) == expected


@pytest.mark.parametrize("name", NAMES)
def test_changes_replay_to_the_attacked_text(name):
    out = attack(TEXT, name, 0.5, seed=7)
    assert apply_changes(TEXT, out.changes) == out.text
    positions = [c["pos"] for c in out.changes]
    assert positions == sorted(positions)
    for c in out.changes:
        assert TEXT[c["pos"]:c["pos"] + len(c["before"])] == c["before"]
        assert c["before"] != c["after"]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_by_seed_and_seeds_differ(name):
    a, b = attack(TEXT, name, 0.5, seed=11), attack(TEXT, name, 0.5, seed=11)
    assert a == b and a.changes == b.changes
    c = attack(TEXT, name, 0.5, seed=12)
    assert c.changes != a.changes


@pytest.mark.parametrize("name", NAMES)
def test_provenance(name):
    out = attack(TEXT, name, 0.25, seed=5)
    assert out.provenance() == {"attack": name, "rate": 0.25, "seed": 5,
                                "n_changed": out.n_changed, "n_candidates": out.n_candidates}
    assert isinstance(out, Attacked)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.text = "x"


def test_homoglyph_replaces_letters_by_unicode_confusables():
    out = attack(TEXT, "homoglyph", 1.0, seed=0)
    table = data.homoglyphs()
    assert out.n_candidates == sum(ch in table for ch in TEXT)
    assert sum(ch.isascii() and ch.isalpha() for ch in TEXT) - TEXT.count("m") == out.n_candidates
    for c in out.changes:
        assert c["before"].isascii() and c["before"].isalpha()
        assert len(c["after"]) == 1 and not c["after"].isascii()
        assert c["after"] in table[c["before"]]
    # Cyrillic small a is one of Unicode's look-alikes of a
    assert "\u0430" in table["a"] and "a" not in table["a"]


def test_zero_width_inserts_invisible_characters_only():
    out = attack(TEXT, "zero_width", 0.3, seed=0)
    assert all(c["before"] == "" and c["after"] in ZERO_WIDTH for c in out.changes)
    assert all(unicodedata.category(ch) == "Cf" for ch in ZERO_WIDTH)
    assert "".join(ch for ch in out.text if ch not in ZERO_WIDTH) == TEXT


def test_whitespace_inserts_spaces_inside_runs_of_text():
    out = attack("abc de", "whitespace", 1.0, seed=0)
    assert out.n_candidates == 3 and out.text == "a b c d e"


def test_case_flips_letters():
    out = attack("Ab c1", "case", 1.0, seed=0)
    assert out.text == "aB C1" and out.n_candidates == 3


def test_article_deletion_removes_articles_and_their_space():
    out = attack("The cat ate a fish and an apple; theory stays.", "article_deletion", 1.0, seed=0)
    assert out.text == "cat ate fish and apple; theory stays."
    assert [c["before"] for c in out.changes] == ["The ", "a ", "an "]


def test_number_swap_keeps_digit_count_and_changes_the_number():
    out = attack(TEXT, "number_swap", 1.0, seed=0)
    assert out.n_candidates == len(re.findall(r"[0-9]+", TEXT))
    for c in out.changes:
        assert len(c["after"]) == len(c["before"]) and c["after"].isdigit() and c["after"] != c["before"]
        assert c["after"][0] != "0"


def test_paragraph_breaks_after_sentences():
    out = attack("One. Two! Three?\nFour 3.14 five.", "paragraph", 1.0, seed=0)
    assert out.text == "One.\n\nTwo!\n\nThree?\n\nFour 3.14 five."
    assert out.n_candidates == 3


def test_spelling_switches_both_ways_keeping_case():
    out = attack("Colour and color; CENTRE.", "spelling", 1.0, seed=0)
    assert out.text == "Color and colour; CENTER."


def test_misspelling_uses_codespell_misspellings():
    table = data.misspellings()
    assert "recieve" in table["receive"]
    out = attack("receive; Receive!", "misspelling", 1.0, seed=0)
    words = [c["after"] for c in out.changes]
    assert [w.lower() in table["receive"] for w in words] == [True, True]
    assert words[1][0].isupper()


def test_candidates_inside_non_ascii_words_are_left_alone():
    assert attack("naïvethe café", "article_deletion", 1.0, seed=0).n_candidates == 0


@pytest.mark.parametrize("name,rate,match", [
    ("nonesuch", 0.5, "unknown attack 'nonesuch'"),
    ("case", 1.5, r"rate must be a number in \[0, 1\]"),
    ("case", -0.1, r"rate must be a number in \[0, 1\]"),
    ("case", float("nan"), r"rate must be a number in \[0, 1\]"),
])
def test_bad_attack_or_rate(name, rate, match):
    with pytest.raises(GuardError, match=match):
        attack(TEXT, name, rate, seed=0)


def test_bad_seed_and_text():
    with pytest.raises(GuardError, match="seed"):
        attack(TEXT, "case", 0.5, seed=-1)
    with pytest.raises(GuardError, match="needs text"):
        attack(b"bytes", "case", 0.5, seed=0)


def test_parse_attacks_and_labels():
    specs = parse_attacks("homoglyph=1.0, whitespace=0.2,case=0")
    assert specs == [AttackSpec("homoglyph", 1.0), AttackSpec("whitespace", 0.2), AttackSpec("case", 0.0)]
    assert [str(s) for s in specs] == ["homoglyph=1", "whitespace=0.2", "case=0"]
    assert [s.label for s in specs] == ["homoglyph-1", "whitespace-0p2", "case-0"]
    assert parse_attacks(",".join(map(str, specs))) == specs
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", s.label) for s in specs)


@pytest.mark.parametrize("text,match", [
    ("", "no attacks given"),
    ("homoglyph", "must be name=rate"),
    ("homoglyph=", "must be name=rate"),
    ("homoglyph=lots", "rate must be a number"),
    ("homoglyph=2", r"\[0, 1\]"),
    ("bogus=0.5", "unknown attack 'bogus'"),
    ("case=0.5,case=0.5", "given twice"),
])
def test_parse_attacks_errors(text, match):
    with pytest.raises(GuardError, match=match):
        parse_attacks(text)

"""Input hygiene: every repair is flagged; empty and binary input is unscorable, never a crash."""

import pytest

from gpt2guard.detector.hygiene import is_scorable, prepare_text
from gpt2guard.errors import GuardError


@pytest.mark.parametrize("raw", ["", "   \n\t  ", b"", b"  \r\n", "\u200b\u200b", "\ufeff"])
def test_empty_and_whitespace_are_unscorable(raw):
    text, flags = prepare_text(raw)
    assert text == "" and "empty" in flags and not is_scorable(flags)


def test_plain_text_passes_unchanged():
    raw = "The quick brown fox, it said, jumps over 12 lazy dogs.\n\nA second paragraph."
    assert prepare_text(raw) == (raw, ())
    assert prepare_text(raw.encode("utf-8")) == (raw, ())


def test_binary_bytes_are_unscorable():
    text, flags = prepare_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    assert text == "" and "binary" in flags and not is_scorable(flags)
    text, flags = prepare_text(bytes(range(256)) * 4)
    assert "binary" in flags


def test_invalid_utf8_is_decoded_with_replacement_and_flagged():
    text, flags = prepare_text("un caf\u00e9 tr\u00e8s bon, merci beaucoup".encode("latin-1"))
    assert "invalid_utf8" in flags and is_scorable(flags)
    assert text.startswith("un caf\ufffd")


def test_lone_surrogate_in_str_is_flagged():
    text, flags = prepare_text("abc \udc80 def")
    assert "invalid_utf8" in flags
    text.encode("utf-8")  # encodable now


def test_zero_width_and_bidi_characters_are_removed():
    text, flags = prepare_text("ma\u200bchi\u200dne wr\u00adit\u202eten\ufeff")
    assert text == "machine written"
    assert flags == ("zero_width",)


def test_control_characters_are_removed_but_layout_kept():
    text, flags = prepare_text("a\x07b\tc\nd\r\ne\x1b and then some ordinary words")
    assert text == "ab\tc\nd\ne and then some ordinary words" and flags == ("control_chars",)


def test_nfkc_folds_compatibility_forms():
    text, flags = prepare_text("\uff21\uff22\uff23 \ufb01le \u2460")
    assert text == "ABC file 1" and flags == ("nfkc",)


def test_homoglyphs_in_latin_words_are_mapped():
    # Cyrillic а, е, о, р, с inside English words; "сорe" is all look-alikes but one Latin letter;
    # "сор" is entirely Cyrillic look-alikes, in a Latin document.
    text, flags = prepare_text("Thе pаpеr сорe says сор is a wоrd")
    assert text == "The paper cope says cop is a word"
    assert flags == ("homoglyphs",)
    text, flags = prepare_text("Ηello Κing")  # Greek capital eta and kappa
    assert text == "Hello King" and flags == ("homoglyphs",)


def test_every_unicode_look_alike_inside_a_latin_word_is_mapped_back():
    """Whatever look-alike Unicode's confusables list offers for a letter (Cherokee, Coptic,
    Lisu, mathematical and Roman-numeral forms, APL symbols), hygiene reads it back inside an
    English word; ``I`` and ``l``, which share their look-alikes, are read from the word."""
    from gpt2guard.attacks.data import homoglyphs
    from gpt2guard.detector.hygiene import CONFUSABLES

    passes_for: dict[str, set] = {}
    for letter, looks in homoglyphs().items():
        for ch in looks:
            passes_for.setdefault(ch, set()).add(letter)
    words = {"l": ("similar", 4), "I": ("If", 0), "i": ("points", 2)}
    missed = []
    for letter, looks in homoglyphs().items():
        word, at = words.get(letter, ("x" + letter + "x", 1))
        for ch in looks:
            if CONFUSABLES.get(ch, letter) != letter and passes_for[ch] != {"I", "l"}:
                continue  # Cyrillic palochka: Unicode says i, our hand-picked table l
            disguised = f"See the {word[:at]}{ch}{word[at + 1:]} case."
            text, flags = prepare_text(disguised)
            if text != f"See the {word} case.":
                missed.append((letter, ch, text))
    assert not missed, missed[:10]


def test_a_document_all_look_alikes_is_read_back():
    """At rate 1 not one genuine Latin letter is left; the document is still Latin in
    disguise (nearly every letter a look-alike), unlike real Cyrillic or Greek prose."""
    from gpt2guard.attacks import attack

    plain = "The committee published its findings on Tuesday, and all of them were final."
    attacked = attack(plain, "homoglyph", 1.0, seed=3)
    assert attacked.n_changed == attacked.n_candidates > 50
    text, flags = prepare_text(attacked.text)
    assert text == plain and "homoglyphs" in flags


def test_genuine_cyrillic_and_greek_prose_is_kept():
    for raw in ("Привет, как дела? Это сор и мусор.", "Καλημέρα κόσμε, ο ήλιος λάμπει."):
        assert prepare_text(raw) == (raw, ())


def test_special_token_text_is_flagged():
    text, flags = prepare_text("before <|endoftext|> after")
    assert text == "before <|endoftext|> after" and flags == ("special_token",)


def test_large_document_is_processed():
    raw = ("word " * 1_000_000).encode()  # 5 MB
    text, flags = prepare_text(raw)
    assert len(text) == 5_000_000 and flags == ()


def test_non_text_input_is_a_guard_error():
    with pytest.raises(GuardError):
        prepare_text(12345)


MACHINE = "The results of the study indicate that the proposed method improves accuracy on every benchmark."


def _property_points(prop):
    import sys

    import regex

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    return [m.start() for m in regex.finditer(prop, every, regex.V1)]


def test_every_invisible_or_format_code_point_is_removed_and_counted():
    """Every code point Unicode calls default-ignorable or format (Cf, from ``regex``'s current
    database and from Python's own unicodedata), interleaved between the letters of a text,
    is removed; the document is flagged and the count is exact."""
    import sys
    import unicodedata

    from gpt2guard.detector.hygiene import clean_text

    points = set(_property_points(r"[\p{Default_Ignorable_Code_Point}\p{Cf}]"))
    points |= {cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Cf"}
    points -= set(range(0xD800, 0xE000))  # surrogates are not characters (handled as invalid UTF-8)
    assert len(points) > 4000 and {0x200B, 0x00AD, 0x202E, 0xFE0F, 0xE0041, 0x3164, 0x034F} <= points
    clean = prepare_text(MACHINE)[0]
    for cp in sorted(points):
        ch = chr(cp)
        dirty = ch.join(MACHINE[i:i + 3] for i in range(0, len(MACHINE), 3))
        out = clean_text(dirty)
        assert out.text == clean, f"U+{cp:04X} survives hygiene"
        assert "zero_width" in out.flags and out.counts["zero_width"] == dirty.count(ch), f"U+{cp:04X}"


def test_every_control_and_unusual_space_is_handled():
    import sys
    import unicodedata

    from gpt2guard.detector.hygiene import clean_text

    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if ch in "\t\n\r \x00" or (cat != "Cc" and not (cat in ("Zs", "Zl", "Zp"))):
            continue  # NUL marks binary input (tested above)
        dirty = MACHINE.replace(" ", ch) if cat != "Cc" or ch in "\x0b\x0c\x85" else MACHINE.replace("The", "Th" + ch + "e")
        out = clean_text(dirty)
        assert out.flags in (("spaces",), ("control_chars",)), f"U+{cp:04X}: {out.flags}"
        expected = MACHINE if out.flags == ("control_chars",) or cat == "Zs" else MACHINE.replace(" ", "\n")
        assert out.text == expected, f"U+{cp:04X}"


def test_interleaved_invisible_characters_do_not_change_the_score(tiny_pair):
    """The evasion the issue reports: zero-width characters between letters change nothing
    the scorer sees, and the verdict's reason says what was removed."""
    from gpt2guard.detector import score_texts
    from gpt2guard.detector.verdict import decide

    scorer, _ = tiny_pair
    evasive = "\u200b".join(MACHINE) + "\u2063\U000E0041"
    a, b = score_texts([MACHINE, evasive], scorer, cache=False)
    assert a.token_ids.tolist() == b.token_ids.tolist() and a.logp.tolist() == b.logp.tolist()
    assert b.flags == ("zero_width",) and b.repairs == {"zero_width": len(MACHINE) + 1}
    v = decide(0, "x", 1.0, None, 0.0, b.n_tokens, 1, b.flags, 1, method="m", scorer="s", repairs=b.repairs)
    assert v.decision == "machine" and f"removed {len(MACHINE) + 1} invisible" in v.reason


@pytest.mark.parametrize("raw", [
    "Un café très élégant, naïve façade; Ærøskøbing, Straße, señor.",   # accented Latin (NFC)
    "機械学習の結果を示す。这是一个测试。한국어 문장입니다.",                 # CJK and Hangul syllables
    "مرحبا بالعالم. שלום עולם. Привет, мир. Γειά σου κόσμε.",               # RTL scripts, Cyrillic, Greek
    "family 👨\u200d👩\u200d👧 love ❤\ufe0f thumbs 👍🏽 flag 🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f",
])
def test_ordinary_text_is_untouched(raw):
    """Accented letters, CJK, right-to-left scripts, and emoji sequences (whose joiners,
    presentation selectors, skin tones and flag tags belong to the emoji) pass unchanged."""
    assert prepare_text(raw) == (raw, ())


def test_a_joiner_outside_an_emoji_sequence_is_removed():
    text, flags = prepare_text("ma\u200dchine 👍\u200d text\ufe0f")
    assert text == "machine 👍 text" and flags == ("zero_width",)

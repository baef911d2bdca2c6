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

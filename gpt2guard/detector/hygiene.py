"""Input hygiene: turn whatever a user hands us into text a scorer may see, and say what was done.

Detectors are evaded by text that *looks* the same to a reader but tokenises differently:
invisible characters, compatibility forms (full-width letters, ligatures) and look-alike
letters from other scripts (Cyrillic ``а`` for Latin ``a``). :func:`prepare_text` undoes
those and reports each repair as a flag, so a verdict on repaired text is never silent.

Flags
-----
``invalid_utf8``  bytes that are not UTF-8; decoded with U+FFFD replacement characters
``binary``        NUL bytes, over 10% control characters or over 30% undecodable bytes: unscorable
``zero_width``    invisible characters (zero-width spaces and joiners, soft hyphens, BOMs,
                  bidirectional controls) were removed
``control_chars`` other control characters were removed
``nfkc``          Unicode NFKC normalisation changed the text
``homoglyphs``    Cyrillic or Greek look-alike letters inside Latin text were mapped to Latin
``special_token`` the text spells a tokenizer special token such as ``<|endoftext|>``
``empty``         nothing but whitespace is left: unscorable
"""

from __future__ import annotations

import re
import unicodedata

UNSCORABLE = frozenset({"empty", "binary"})

# Invisible characters: zero-width space/non-joiner/joiner, word joiner, invisible
# operators, BOM/zero-width no-break space, soft hyphen, Mongolian vowel separator, and the
# bidirectional marks, embeddings, overrides and isolates ("Trojan Source").
_INVISIBLE = re.compile("[\u200b-\u200f\u2060-\u2064\ufeff\u00ad\u180e\u202a-\u202e\u2066-\u2069]")
# C0/C1 control characters except tab, newline, carriage return and form feed.
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000e-\u001f\u007f-\u009f]")
_LETTERS = re.compile(r"[^\W\d_]+")
_SPECIAL = ("<|endoftext|>",)

# Cyrillic and Greek letters that render like Latin ones in common fonts.
CONFUSABLES = {
    # Cyrillic lower case
    "а": "a", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k", "о": "o", "р": "p", "с": "c", "ѕ": "s",
    "у": "y", "х": "x", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l",
    # Cyrillic upper case
    "А": "A", "В": "B", "Е": "E", "І": "I", "Ј": "J", "К": "K", "М": "M", "Н": "H", "О": "O",
    "Р": "P", "С": "C", "Ѕ": "S", "Т": "T", "У": "Y", "Х": "X", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y",
    # Greek
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "ο": "o", "ν": "v", "ι": "i", "κ": "k", "ρ": "p", "υ": "u",
    "ϲ": "c", "ϳ": "j",
}


def _is_latin(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def _map_homoglyphs(text: str) -> tuple[str, bool]:
    """Map look-alike letters to Latin in words that are Latin text in disguise.

    A word (run of letters) is rewritten when every letter is Latin or a known look-alike,
    and it either contains a genuine Latin letter (a mixed-script word) or the document's
    letters are mostly Latin. Words of genuine Cyrillic or Greek prose keep their letters.
    """
    if not any(ch in CONFUSABLES for ch in text):
        return text, False
    letters = [ch for ch in text if ch.isalpha()]
    mostly_latin = sum(map(_is_latin, letters)) > len(letters) / 2

    def fix(match: re.Match) -> str:
        word = match.group(0)
        if not any(ch in CONFUSABLES for ch in word):
            return word
        if not all(_is_latin(ch) or ch in CONFUSABLES for ch in word):
            return word
        if mostly_latin or any(_is_latin(ch) for ch in word):
            return "".join(CONFUSABLES.get(ch, ch) for ch in word)
        return word

    fixed = _LETTERS.sub(fix, text)
    return fixed, fixed != text


def decode_bytes(raw: bytes) -> tuple[str, list[str]]:
    """Decode bytes as UTF-8 (a BOM is dropped later), flagging invalid or binary input."""
    flags = []
    if b"\x00" in raw:
        flags.append("binary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        flags.append("invalid_utf8")
        if text.count("\ufffd") > 0.3 * max(1, len(text)):
            flags.append("binary")
    return text, flags


def prepare_text(raw: str | bytes) -> tuple[str, tuple[str, ...]]:
    """Clean a document for scoring and report every repair.

    Steps: decode bytes as UTF-8; detect binary content; remove invisible characters;
    remove control characters other than tab, newline, carriage return and form feed;
    turn ``\\r\\n`` into ``\\n``; apply NFKC; map Cyrillic/Greek look-alikes inside Latin
    words to Latin; detect empty text.

    Parameters
    ----------
    raw : str or bytes
        The document as given.

    Returns
    -------
    text : str
        The cleaned text ("" when unscorable).
    flags : tuple of str
        Sorted flags (see the module docstring). A document flagged ``binary`` or ``empty``
        (see :data:`UNSCORABLE`) must not be scored: it gets no verdict.
    """
    if isinstance(raw, (bytes, bytearray, memoryview)):
        text, flags = decode_bytes(bytes(raw))
    elif isinstance(raw, str):
        text, flags = raw, []
        if "\x00" in text:
            flags.append("binary")
        if _has_surrogates(text):
            text = text.encode("utf-8", errors="replace").decode("utf-8")
            flags.append("invalid_utf8")
    else:
        from gpt2guard.errors import GuardError

        raise GuardError(f"a document must be text or bytes, not {type(raw).__name__}")
    if "binary" not in flags:
        n_control = len(_CONTROL.findall(text))
        if n_control > 0.1 * max(1, len(text)):
            flags.append("binary")
    if "binary" in flags:
        return "", tuple(sorted(set(flags)))

    cleaned = _INVISIBLE.sub("", text)
    if cleaned != text:
        flags.append("zero_width")
    text = cleaned
    cleaned = _CONTROL.sub("", text)
    if cleaned != text:
        flags.append("control_chars")
    text = cleaned.replace("\r\n", "\n")
    cleaned = unicodedata.normalize("NFKC", text)
    if cleaned != text:
        flags.append("nfkc")
    text, changed = _map_homoglyphs(cleaned)
    if changed:
        flags.append("homoglyphs")
    if any(tok in text for tok in _SPECIAL):
        flags.append("special_token")
    if not text.strip():
        flags.append("empty")
        text = ""
    return text, tuple(sorted(set(flags)))


def _has_surrogates(text: str) -> bool:
    """Lone surrogates cannot be encoded as UTF-8: such a str came from broken decoding
    (they are replaced and flagged ``invalid_utf8``)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def is_scorable(flags) -> bool:
    """Whether a document with these flags may be scored."""
    return not (UNSCORABLE & set(flags))

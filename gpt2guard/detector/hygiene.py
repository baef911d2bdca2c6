"""Input hygiene: turn whatever a user hands us into text a scorer may see, and say what was done.

Detectors are evaded by text that *looks* the same to a reader but tokenises differently:
invisible characters, compatibility forms (full-width letters, ligatures) and look-alike
letters from other scripts (Cyrillic ``а`` for Latin ``a``). :func:`prepare_text` undoes
those and reports each repair as a flag (and :func:`clean_text` also counts them), so a
verdict on repaired text is never silent.

Which characters are invisible is Unicode's call, not a hand-picked list: every code point
with the ``Default_Ignorable_Code_Point`` property or of general category ``Cf`` (format),
as the ``regex`` package's Unicode database knows them (it tracks the current Unicode
version; Python's :mod:`unicodedata` has the categories but not that property). That covers
zero-width spaces and joiners, soft hyphens, byte-order marks, bidirectional controls
("Trojan Source"), variation selectors, tag characters, Hangul fillers, the combining
grapheme joiner, invisible operators and the unassigned code points reserved as ignorable.
One exception keeps emoji intact: a zero-width joiner between two pictographs, a variation
selector or skin-tone modifier after one, and the tag letters of a subdivision flag
(``🏴`` + tags + cancel tag) are part of an emoji sequence, which renders as one symbol and
is kept unflagged. Persian and Indic text lose their joiners (and are flagged).

Flags
-----
``invalid_utf8``  bytes that are not UTF-8; decoded with U+FFFD replacement characters
``binary``        NUL bytes, over 10% control characters or over 30% undecodable bytes: unscorable
``zero_width``    invisible and format characters (see above) were removed
``control_chars`` control characters (category ``Cc``) other than tab, line feed and carriage
                  return were removed
``spaces``        white space other than space, tab and line breaks (no-break, em, ideographic,
                  Ogham... spaces) became a plain space, and vertical tab, form feed, next
                  line and the line and paragraph separators a line feed
``nfkc``          Unicode NFKC normalisation changed the text
``homoglyphs``    Cyrillic or Greek look-alike letters inside Latin text were mapped to Latin
``special_token`` the text spells a tokenizer special token such as ``<|endoftext|>``
``empty``         nothing but whitespace is left: unscorable

:func:`hygiene_off` switches every repair off inside a ``with`` block, so an evaluation
can measure what hygiene buys against evasion (``gpt2guard detector eval --attacks``).

Every step is one pass of a compiled regular expression (or of NFKC) over the text, so a
document of tens of megabytes is cleaned in time linear in its length, with a few copies
of it in memory at most.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import sys
import unicodedata
from dataclasses import dataclass, field

UNSCORABLE = frozenset({"empty", "binary"})
# Whether clean_text repairs text (see hygiene_off); on unless a measurement switches it off.
_REPAIR = contextvars.ContextVar("gpt2guard_hygiene_repairs", default=True)

# Invisible and format characters, by Unicode property (see the module docstring).
INVISIBLE_PROPERTY = r"[\p{Default_Ignorable_Code_Point}\p{Cf}]"
_SPECIAL = ("<|endoftext|>",)
# Letters are counted in slices of this many characters, so no list of a text's characters is built.
_SLICE = 1 << 20


# The Unicode properties hygiene needs, as ``regex`` one-character classes.
PROPERTIES = {
    "invisible": INVISIBLE_PROPERTY,
    "pictographic": r"\p{Extended_Pictographic}",
    "emoji_modifier": r"[\uFE0E\uFE0F\p{Emoji_Modifier}]",
    # white space other than space, tab and the line breaks (which become LF)
    "space": r"[^\P{White_Space}\x09-\x0d\x20\x85\u2028\u2029]",
    "latin": r"[\p{L}&&[\p{Latin}\p{ASCII}]]",
}


@functools.lru_cache(maxsize=None)
def code_point_classes() -> dict[str, str]:
    """Standard-library ``re`` character classes (``"[...]"`` of ranges) of every code point
    each of :data:`PROPERTIES` matches.

    ``regex`` knows the properties; ``re`` scans tens of megabytes several times faster, so
    the properties are expanded once per process, in one pass over every code point (a
    fraction of a second), and compiled for ``re``.
    """
    import regex

    every = "".join(map(chr, range(sys.maxunicode + 1)))
    points: dict[str, list[int]] = {}
    for name, prop in PROPERTIES.items():
        points[name] = [m.start() for m in regex.finditer(prop, every, regex.V1)]
    out = {}
    for name, cps in points.items():
        ranges, i = [], 0
        while i < len(cps):
            j = i
            while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
                j += 1
            ranges.append(f"\\U{cps[i]:08x}" + (f"-\\U{cps[j]:08x}" if j > i else ""))
            i = j + 1
        out[name] = "[" + "".join(ranges) + "]"
    return out


@functools.lru_cache(maxsize=None)
def _patterns() -> dict:
    """The compiled ``re`` patterns of the hygiene steps (built on first use)."""
    cls = code_point_classes()
    picto = cls["pictographic"] + cls["emoji_modifier"] + "*"
    # emoji sequences whose joiners, selectors and tags are kept: a subdivision flag
    # (black flag, tag letters, cancel tag); pictographs with optional presentation
    # selector or skin tone, joined by ZWJ
    emoji = rf"\U0001F3F4[\U000E0020-\U000E007E]{{2,7}}\U000E007F|{picto}(?:\u200d{picto})*"
    return {
        "invisible": re.compile(cls["invisible"]),
        "invisible_or_emoji": re.compile(rf"({emoji})|{cls['invisible']}"),
        # control characters (Cc) other than layout (tab, LF, CR) and the line breaks below
        "control": re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]"),
        # line breaks become LF; other white space a plain space
        "breaks": re.compile(r"[\x0b\x0c\x85\u2028\u2029]"),
        "spaces": re.compile(cls["space"]),
        "letter": re.compile(r"[^\W\d_]"),
        "latin": re.compile(cls["latin"]),
        "word_end": re.compile(r"[^\W\d_]*"),
        "confusable": re.compile("[" + "".join(CONFUSABLES) + "]"),
    }


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


def _count(pattern, text: str) -> int:
    """Matches of a one-character ``pattern`` in ``text``, a slice at a time (no big lists)."""
    return sum(pattern.subn("", text[i:i + _SLICE])[1] for i in range(0, len(text), _SLICE))


def _map_homoglyphs(text: str) -> tuple[str, int]:
    """Map look-alike letters to Latin in words that are Latin text in disguise; returns the
    text and the number of letters mapped.

    A word (run of letters) is rewritten when every letter is Latin or a known look-alike,
    and it either contains a genuine Latin letter (a mixed-script word) or the document's
    letters are mostly Latin. Words of genuine Cyrillic or Greek prose keep their letters.
    Only the words around look-alike letters are visited, so the cost is one scan of the text.
    """
    P = _patterns()
    if not P["confusable"].search(text):
        return text, 0
    mostly_latin = _count(P["latin"], text) > _count(P["letter"], text) / 2
    pieces, done, mapped = [], 0, 0
    for match in P["confusable"].finditer(text):
        if match.start() < done:
            continue  # inside a word already handled
        start = match.start()
        while start > done and P["letter"].match(text, start - 1):
            start -= 1
        end = P["word_end"].match(text, match.start()).end()
        word = text[start:end]
        if all(_is_latin(ch) or ch in CONFUSABLES for ch in word) and (
                mostly_latin or any(_is_latin(ch) for ch in word)):
            mapped += sum(ch in CONFUSABLES for ch in word)
            word = "".join(CONFUSABLES.get(ch, ch) for ch in word)
        pieces += [text[done:start], word]
        done = end
    pieces.append(text[done:])
    return "".join(pieces), mapped


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


@dataclass
class Cleaned:
    """A document after hygiene: the text to score, its flags, and how many characters each
    repair touched (``{"zero_width": 12, "homoglyphs": 3}``; NFKC is flagged, not counted)."""

    text: str
    flags: tuple[str, ...]
    counts: dict = field(default_factory=dict)

    def describe(self) -> str:
        """One line for a verdict's reason: ``removed 12 invisible characters, ...`` ("" if none)."""
        words = {"zero_width": "removed {} invisible or format character(s)",
                 "control_chars": "removed {} control character(s)",
                 "spaces": "made {} unusual space(s) plain", "homoglyphs": "mapped {} look-alike letter(s) to Latin"}
        return ", ".join(words[k].format(n) for k, n in sorted(self.counts.items()) if n and k in words)


def _remove_invisible(text: str) -> tuple[str, int]:
    """Drop invisible and format characters outside emoji sequences; returns the count removed."""
    P = _patterns()
    if not P["invisible"].search(text):
        return text, 0
    removed = 0

    def keep_emoji(match) -> str:
        nonlocal removed
        if match.group(1) is not None:
            return match.group(1)
        removed += 1
        return ""

    return P["invisible_or_emoji"].sub(keep_emoji, text), removed


def clean_text(raw: str | bytes) -> Cleaned:
    """Clean a document for scoring, flag and count every repair (see :func:`prepare_text`)."""
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
    counts = {}
    P = _patterns()
    if "binary" not in flags:
        n_control = _count(P["control"], text)
        if n_control > 0.1 * max(1, len(text)):
            flags.append("binary")
    if "binary" in flags:
        return Cleaned("", tuple(sorted(set(flags))))

    if not _REPAIR.get():  # hygiene_off: the text as given, only unscorable input still flagged
        return _unrepaired(text, flags)
    plain = text.isascii()  # then nothing is invisible, exotic white space, NFKC-foldable or a look-alike
    if not plain:
        text, counts["zero_width"] = _remove_invisible(text)
    text, counts["control_chars"] = P["control"].subn("", text)
    text = text.replace("\r\n", "\n")
    text, counts["spaces"] = P["breaks"].subn("\n", text)
    if not plain:
        text, n_spaces = P["spaces"].subn(" ", text)
        counts["spaces"] += n_spaces
        cleaned = unicodedata.normalize("NFKC", text)
        if cleaned != text:
            flags.append("nfkc")
        text, counts["homoglyphs"] = _map_homoglyphs(cleaned)
        del cleaned
    counts = {k: n for k, n in counts.items() if n}
    flags.extend(counts)
    if any(tok in text for tok in _SPECIAL):
        flags.append("special_token")
    if not text.strip():
        flags.append("empty")
        text = ""
    return Cleaned(text, tuple(sorted(set(flags))), counts)


def _unrepaired(text: str, flags: list) -> Cleaned:
    """:func:`clean_text`'s result without repairs: special tokens and emptiness flagged only."""
    if any(tok in text for tok in _SPECIAL):
        flags.append("special_token")
    if not text.strip():
        flags.append("empty")
        text = ""
    return Cleaned(text, tuple(sorted(set(flags))), {})


@contextlib.contextmanager
def hygiene_off():
    """Within this block (this thread or task only), :func:`clean_text` and
    :func:`prepare_text` repair nothing: detectors see the text as given.

    For measuring what hygiene buys against evasion (``gpt2guard detector eval --attacks``),
    never for verdicts. Bytes are still decoded, and binary, empty and invalid input still
    flagged unscorable.

    Examples
    --------
    >>> with hygiene_off():
    ...     clean_text("d\u200betector").text
    'd\u200betector'
    """
    token = _REPAIR.set(False)
    try:
        yield
    finally:
        _REPAIR.reset(token)


def prepare_text(raw: str | bytes) -> tuple[str, tuple[str, ...]]:
    """Clean a document for scoring and report every repair.

    Steps: decode bytes as UTF-8; detect binary content; remove invisible and format
    characters (outside emoji sequences); remove control characters other than tab, line
    feed and carriage return; turn ``\\r\\n``, vertical tab, form feed, next line and the
    Unicode line and paragraph separators into ``\\n`` and every other kind of white space
    into a plain space; apply NFKC; map Cyrillic/Greek look-alikes inside Latin words to
    Latin; detect empty text. :func:`clean_text` does the same and also counts each repair.

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
    cleaned = clean_text(raw)
    return cleaned.text, cleaned.flags


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

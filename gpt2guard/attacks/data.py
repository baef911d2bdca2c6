"""The attacks' data, each loaded once from a maintained package.

* Look-alike characters: Unicode's confusables (UTS #39 ``confusables.txt``) as shipped by
  the ``confusable-homoglyphs`` package (its ``confusables.json``, generated from Unicode's
  file).
* British/American spellings: codespell's ``dictionary_en-GB_to_en-US.txt``.
* Common misspellings: codespell's main ``dictionary.txt`` (``misspelling->correction``
  lines, begun from Wikipedia's list of common misspellings and kept by codespell's
  maintainers); only lines with one correction are used, read backwards.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

from gpt2guard.errors import GuardError


def _package_file(package: str, name: str, pip_name: str) -> str:
    try:
        return resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise GuardError(f"this attack needs {pip_name}'s data ({exc}); pip install {pip_name}") from None


@functools.lru_cache(maxsize=None)
def homoglyphs() -> dict[str, tuple[str, ...]]:
    """ASCII letter -> the single non-ASCII characters Unicode lists as confusable with it.

    Every letter but ``m`` has some (Unicode's only look-alike of ``m`` is ``rn``).
    """
    table = json.loads(_package_file("confusable_homoglyphs", "confusables.json", "confusable-homoglyphs"))
    out = {}
    for letter, entries in table.items():
        if len(letter) == 1 and letter.isascii() and letter.isalpha():
            looks = {e["c"] for e in entries if len(e["c"]) == 1 and not e["c"].isascii()}
            # a letter whose only confusable is another ASCII letter (``I`` -> ``l``) shares
            # that letter's look-alikes (Unicode maps both to one skeleton)
            for proto in (e["c"] for e in entries if len(e["c"]) == 1 and e["c"].isascii() and not looks):
                looks |= {e["c"] for e in table.get(proto, []) if len(e["c"]) == 1 and not e["c"].isascii()}
            if looks:
                out[letter] = tuple(sorted(looks))
    return out


def _pairs(name: str) -> list[tuple[str, str]]:
    """``(wrong, right)`` of codespell's data file ``name`` whose right side is one plain word."""
    out = []
    for line in _package_file("codespell_lib", f"data/{name}", "codespell").splitlines():
        wrong, arrow, right = line.partition("->")
        right = right.strip()
        if arrow and wrong.isalpha() and wrong.isascii() and wrong.islower() \
                and right.isalpha() and right.isascii() and right.islower() and wrong != right:
            out.append((wrong, right))
    return out


@functools.lru_cache(maxsize=None)
def spellings() -> dict[str, str]:
    """Lower-case word -> its other spelling, both ways (British -> American and back).

    An American spelling two British ones map to (rare) goes back to neither.
    """
    pairs = _pairs("dictionary_en-GB_to_en-US.txt")
    out = dict(pairs)
    back: dict[str, list[str]] = {}
    for gb, us in pairs:
        back.setdefault(us, []).append(gb)
    for us, gbs in back.items():
        if len(gbs) == 1 and us not in out:
            out[us] = gbs[0]
    return out


@functools.lru_cache(maxsize=None)
def misspellings() -> dict[str, tuple[str, ...]]:
    """Lower-case word -> its common misspellings (sorted), from codespell's dictionary."""
    out: dict[str, set[str]] = {}
    for wrong, right in _pairs("dictionary.txt"):
        out.setdefault(right, set()).add(wrong)
    return {word: tuple(sorted(ws)) for word, ws in out.items()}

"""The builtin human corpus: English prose that every Python install carries.

Sources, in a fixed order:

* ``pydoc``: the topics of Python's bundled documentation (``pydoc_data.topics``), one
  source per topic;
* ``stdlib``: docstrings of the standard library, one source per module;
* the dependencies named in :data:`DEFAULT_PACKAGES` (numpy, scikit-learn, click, tqdm),
  docstrings read with :mod:`ast` (nothing is imported), one source per module.

Each source's text is cleaned to prose paragraphs (code, doctests, parameter tables, reST
markup and headings removed), exact duplicate paragraphs are dropped corpus-wide, and
paragraphs are grouped into documents of at most ``max_words`` words. Every source goes
whole to one split, chosen by a seeded hash of its name, so the held-out split (``test``)
shares no module with the text models are trained on.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path

SPLITS = ("train", "valid", "test")
DEFAULT_PACKAGES = ("numpy", "sklearn", "click", "tqdm")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
_SKIP_DIRS = {"test", "tests", "idlelib", "lib2to3", "turtledemo", "ensurepip", "site-packages",
              "__pycache__", "_vendor", "vendored", "externals"}


@dataclass(frozen=True)
class CorpusDoc:
    """One human document of the builtin corpus."""

    id: str
    source: str
    split: str
    text: str


# --- cleaning -------------------------------------------------------------------------

_ROLE = re.compile(r":[a-zA-Z_:]+:`~?!?([^`<]*?)\s*(?:<[^>]*>)?`")
_LITERAL = re.compile(r"`{1,2}([^`]+)`{1,2}_?")
_EMPH = re.compile(r"(?<![\w*])\*{1,2}([^*\s][^*]*?)\*{1,2}(?![\w*])")
_WORD = re.compile(r"[A-Za-z][a-z]+")
_BAD_START = re.compile(r"^\s*(>>>|\.\.\.|\.\. |[-*+=|#~^]|:\w|\d+\.\s|\[\d|%|\$|@)")
_PARAM_LINE = re.compile(r"^\s*\**[\w.,\[\] ]+\s:\s\S")


def _unmark(text: str) -> str:
    """Strip reST roles, literals and emphasis, keeping the words they wrap."""
    text = _ROLE.sub(r"\1", text)
    text = _LITERAL.sub(r"\1", text)
    return _EMPH.sub(r"\1", text)


def _parameter_descriptions(lines: list[str]) -> list[list[str]]:
    """The indented description under each ``name : type`` line of a numpydoc block."""
    found: list[list[str]] = []
    current: list[str] | None = None
    for ln in lines:
        if ln.startswith(" ") and current is not None:
            current.append(ln.strip())
        else:
            current = [] if _PARAM_LINE.match(ln) else None
            if current is not None:
                found.append(current)
    return [desc for desc in found if desc]


def prose_paragraphs(text: str, min_words: int = 8) -> list[str]:
    """Split ``text`` on blank lines and keep only paragraphs that read as English prose.

    A paragraph is kept when none of its lines is indented (code, quoted blocks), none
    starts like a doctest, list item, heading underline, directive or field list, it does
    not look like a numpydoc parameter line, at least ``min_words`` words are alphabetic,
    letters make up most of its characters, and it ends like a sentence.
    """
    blocks: list[list[str]] = []
    code_follows = False
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").replace("\t", "    ")):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        if not lines:
            continue
        after_code_marker, code_follows = code_follows, lines[-1].rstrip().endswith("::")
        if after_code_marker and lines[0].startswith(" "):
            continue
        if any(_PARAM_LINE.match(ln) for ln in lines):
            blocks.extend(_parameter_descriptions(lines))
            continue
        blocks.append(lines)
    out = []
    for lines in blocks:
        if any(ln.startswith(" ") or _BAD_START.match(ln) or _PARAM_LINE.match(ln) for ln in lines):
            continue
        para = " ".join(ln.strip() for ln in lines)
        if para.endswith("::"):
            para = para[:-1]
        para = re.sub(r"\s+", " ", _unmark(para)).strip()
        words = para.split()
        if len(words) < min_words or para[-1] not in ".!?:":
            continue
        if len(_WORD.findall(para)) < 0.6 * len(words):
            continue
        letters = sum(c.isalpha() for c in para)
        if letters < 0.7 * sum(not c.isspace() for c in para):
            continue
        if "http" in para or "{" in para or "==" in para:
            continue
        out.append(para)
    return out


# --- sources --------------------------------------------------------------------------

def _module_docstrings(path: Path) -> str:
    """All docstrings of one Python file (module, classes, functions), in source order."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return ""
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                docs.append(doc)
    return "\n\n".join(docs)


def _package_sources(label: str, root: Path, prefix: str) -> list[tuple[str, str]]:
    """``(source, text)`` for every Python file under ``root``, sorted by module name."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = Path(dirpath, name).relative_to(root).with_suffix("")
            module = ".".join((prefix, *rel.parts) if prefix else rel.parts)
            module = module.removesuffix(".__init__")
            found.append((f"{label}:{module}", Path(dirpath, name)))
    found.sort()
    return [(src, _module_docstrings(path)) for src, path in found]


def iter_sources(packages: tuple[str, ...] = DEFAULT_PACKAGES) -> list[tuple[str, str]]:
    """Raw ``(source, text)`` pairs of every builtin source, in a deterministic order."""
    from pydoc_data import topics

    sources = [(f"pydoc:{key}", topics.topics[key]) for key in sorted(topics.topics)]
    sources += _package_sources("stdlib", Path(sysconfig.get_paths()["stdlib"]), "")
    for pkg in packages:
        spec = importlib.util.find_spec(pkg)
        if spec is None or not spec.origin:
            continue  # an optional package that is not installed contributes nothing
        sources += _package_sources(pkg, Path(spec.origin).parent, pkg)
    return sources


def split_of(source: str, seed: int = 0, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """The split a source belongs to: a seeded hash of its name mapped onto ``fractions``."""
    digest = hashlib.sha256(f"{seed}:{source}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < fractions[0]:
        return "train"
    return "valid" if u < fractions[0] + fractions[1] else "test"


def builtin_corpus(
    packages: tuple[str, ...] = DEFAULT_PACKAGES,
    seed: int = 0,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    max_words: int = 300,
    min_words: int = 8,
) -> list[CorpusDoc]:
    """Build the builtin human corpus.

    Parameters
    ----------
    packages : tuple of str
        Installed packages whose docstrings join the standard library's.
    seed : int
        Seed of the source-to-split assignment.
    fractions : tuple of float
        Share of sources in train, valid and test.
    max_words : int
        Paragraphs of one source are grouped into documents of at most this many words
        (a longer paragraph stands alone).
    min_words : int
        Shortest paragraph kept.

    Returns
    -------
    list of CorpusDoc
        Documents in source order; ids are ``<source>#<n>``.
    """
    seen: set[str] = set()
    docs: list[CorpusDoc] = []
    for source, raw in iter_sources(packages):
        paras = []
        for para in prose_paragraphs(raw, min_words=min_words):
            if para not in seen:
                seen.add(para)
                paras.append(para)
        split = split_of(source, seed, fractions)
        for n, chunk in enumerate(_group(paras, max_words)):
            docs.append(CorpusDoc(f"{source}#{n}", source, split, "\n\n".join(chunk)))
    return docs


def _group(paras: list[str], max_words: int) -> list[list[str]]:
    """Consecutive paragraphs packed into groups of at most ``max_words`` words."""
    groups: list[list[str]] = []
    n_words = max_words + 1
    for para in paras:
        w = len(para.split())
        if n_words + w > max_words:
            groups.append([])
            n_words = 0
        groups[-1].append(para)
        n_words += w
    return groups


def corpus_hash(docs: list[CorpusDoc]) -> str:
    """SHA-256 over ids, splits and texts: two corpora with the same hash are identical."""
    h = hashlib.sha256()
    for d in docs:
        h.update(f"{d.id}\x00{d.split}\x00{d.text}\x01".encode())
    return h.hexdigest()

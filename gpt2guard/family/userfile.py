"""User-defined families: a small TOML, YAML or JSON file naming a family's sizes in order.

::

    name = "pythia"                                  # letters, digits, '_' and '-'
    description = "EleutherAI Pythia, deduplicated"  # optional
    [[sizes]]                                        # smallest first
    name = "70m"
    hub = "EleutherAI/pythia-70m-deduped"            # a Hugging Face id ...
    [[sizes]]
    name = "160m"
    path = "models/pythia-160m"                      # ... or a local directory (relative to this file)

Every part of gpt2guard that takes a family name takes such a file's path, or, once the file
is registered with ``gpt2guard family add FILE``, its name. Registered families live in
``<cache>/user-families/<name>.toml``; ``$GPT2GUARD_FAMILIES`` may name more family files or
directories of them (separated like ``PATH``).

A family's sizes must share one tokenizer: the vocabulary and merges of every size found on
this machine are compared when the file is read (a hub size not downloaded yet is compared
when it is). A local size that is not on disk, sizes with different tokenizers, an unknown key
or a name a builtin family has are each refused with one line naming the problem.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.family.spec import FamilySpec, SizeSpec
from gpt2guard.paths import cache_dir, sha256_json

FAMILIES_ENV = "GPT2GUARD_FAMILIES"
SUFFIXES = (".toml", ".yaml", ".yml", ".json")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_TOP_KEYS = {"name", "description", "sizes"}
_SIZE_KEYS = {"name", "hub", "path"}
_PARSED: dict[tuple, FamilySpec] = {}
_TOKENIZER_IDS: dict[tuple, str] = {}


def registry_dir() -> Path:
    """Where ``gpt2guard family add`` keeps registered families: ``<cache>/user-families``."""
    return cache_dir() / "user-families"


def is_family_file(name: str) -> bool:
    """Whether ``name`` is the path of an existing family file (by its suffix)."""
    p = Path(name).expanduser()
    return p.suffix.lower() in SUFFIXES and p.is_file()


def _read(path: Path) -> dict:
    from gpt2guard.paths import read_text_utf8

    text = read_text_utf8(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            import tomllib

            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - parse errors of three libraries, reported as one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GuardError(f"{path}: not valid {suffix[1:].upper()}: {first}") from None
    if not isinstance(data, dict):
        raise GuardError(f"{path}: a family file is a table with name, description and sizes")
    return data


def _string(path: Path, where: str, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GuardError(f"{path}: {where} must be a non-empty string, not {value!r}")
    return value.strip()


def parse_family_file(path: str | os.PathLike, *, check_tokenizers: bool = True) -> FamilySpec:
    """The :class:`FamilySpec` a family file describes (see the module docstring).

    Parameters
    ----------
    path : path
        A ``.toml``, ``.yaml``, ``.yml`` or ``.json`` file.
    check_tokenizers : bool
        Compare the tokenizers of the sizes found on this machine.

    Raises
    ------
    GuardError
        One line naming the file and the problem.
    """
    from gpt2guard.family.registry import BUILTIN

    path = Path(path).expanduser()
    if not path.is_file():
        raise GuardError(f"no such family file: {path}")
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size, check_tokenizers)
    if key in _PARSED:
        return _PARSED[key]
    data = _read(path)
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise GuardError(f"{path}: unknown key {unknown[0]!r} (a family file has name, description and sizes)")
    name = _string(path, "name", data.get("name", path.stem))
    if not _NAME.fullmatch(name):
        raise GuardError(f"{path}: invalid family name {name!r}: use letters, digits, '_' and '-' (no dots or slashes)")
    if name in BUILTIN:
        raise GuardError(f"{path}: {name!r} is a builtin family: give yours another name")
    sizes = data.get("sizes")
    if not isinstance(sizes, list) or not sizes:
        raise GuardError(f"{path}: sizes must be a list of one or more sizes, smallest first ([[sizes]] tables)")
    specs, paths, seen = [], [], set()
    for i, s in enumerate(sizes):
        where = f"sizes[{i}]"
        if not isinstance(s, dict):
            raise GuardError(f"{path}: {where} must be a table with name and hub or path")
        unknown = sorted(set(map(str, s)) - _SIZE_KEYS)
        if unknown:
            raise GuardError(f"{path}: {where}: unknown key {unknown[0]!r} (a size has name and hub or path)")
        size = _string(path, f"{where}.name", s.get("name"))
        if not _NAME.fullmatch(size):
            raise GuardError(f"{path}: {where}: invalid size name {size!r}: use letters, digits, '_' and '-'")
        if size in seen:
            raise GuardError(f"{path}: {where}: size {size!r} is named twice")
        seen.add(size)
        if ("hub" in s) == ("path" in s):
            raise GuardError(f"{path}: size {size!r} needs exactly one of hub (a Hugging Face id) or path "
                             "(a local directory)")
        if "hub" in s:
            hub = _string(path, f"{where}.hub", s["hub"])
            if not _HUB_ID.fullmatch(hub):
                raise GuardError(f"{path}: size {size!r}: {hub!r} is not a Hugging Face id (owner/name)")
            specs.append(SizeSpec(size, hub_id=hub))
        else:
            local = Path(_string(path, f"{where}.path", s["path"])).expanduser()
            local = (local if local.is_absolute() else path.parent / local).resolve()
            if not (local / "config.json").is_file():
                what = "no such directory" if not local.exists() else "no Hugging Face model (config.json) in"
                raise GuardError(f"{path}: size {size!r}: {what} {local}")
            specs.append(SizeSpec(size))
            paths.append((size, str(local)))
    description = data.get("description", f"user family from {path}")
    spec = FamilySpec(name=name, kind="user", sizes=tuple(specs), source=str(path.resolve()), paths=tuple(paths),
                      description=_string(path, "description", description))
    if check_tokenizers:
        check_shared_tokenizer(spec, where=str(path))
    _PARSED[key] = spec
    return spec


def tokenizer_identity(model_dir: str | os.PathLike) -> str:
    """SHA-256 naming what a tokenizer does: its vocabulary and merges, however saved.

    Read from ``tokenizer.json`` (the model's ``vocab`` and ``merges``) or from
    ``vocab.json`` and ``merges.txt``, so the same tokenizer saved either way, or by another
    library version, gets the same identity; a SentencePiece ``tokenizer.model`` is hashed as
    bytes. Raises GuardError for a directory with no tokenizer files.
    """
    d = Path(model_dir)
    files = [d / n for n in ("tokenizer.json", "vocab.json", "merges.txt", "tokenizer.model") if (d / n).is_file()]
    if not files:
        raise GuardError(f"{d} holds no tokenizer (tokenizer.json, vocab.json + merges.txt or tokenizer.model)")
    key = tuple((str(f.resolve()), f.stat().st_mtime_ns, f.stat().st_size) for f in files)
    if key in _TOKENIZER_IDS:
        return _TOKENIZER_IDS[key]
    try:
        if (d / "tokenizer.json").is_file():
            model = json.loads((d / "tokenizer.json").read_text(encoding="utf-8")).get("model") or {}
            vocab, merges = model.get("vocab"), model.get("merges") or []
        elif (d / "vocab.json").is_file():
            vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
            lines = (d / "merges.txt").read_text(encoding="utf-8").splitlines() if (d / "merges.txt").is_file() else []
            merges = [ln for ln in lines if ln.strip() and not ln.startswith("#version")]
        else:
            from gpt2guard.paths import sha256_file

            vocab, merges = sha256_file(d / "tokenizer.model"), []
    except (ValueError, AttributeError, UnicodeDecodeError) as exc:
        raise GuardError(f"{d}: unreadable tokenizer files ({str(exc).splitlines()[0] if str(exc) else exc})") from None
    merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
    ident = sha256_json({"vocab": vocab, "merges": merges})
    _TOKENIZER_IDS[key] = ident
    return ident


def check_shared_tokenizer(spec: FamilySpec, weights_dir=None, where: str | None = None) -> dict[str, str]:
    """Tokenizer identities of the sizes found on this machine; GuardError when two differ.

    Returns ``{size: identity}`` of the sizes compared (a hub size not downloaded yet is not).
    """
    from gpt2guard.family.resolve import find_size

    seen: dict[str, str] = {}
    for s in spec.sizes:
        found = find_size(spec, s.name, weights_dir)
        if found is None:
            continue
        seen[s.name] = tokenizer_identity(found)
        first = next(iter(seen))
        if seen[s.name] != seen[first]:
            raise GuardError(f"{where or spec.name}: sizes {first!r} and {s.name!r} do not share a tokenizer "
                             "(their vocabularies or merges differ): a family's sizes must tokenize text alike")
    return seen


def _search_paths() -> list[Path]:
    """Family files: the registry's, then those ``$GPT2GUARD_FAMILIES`` names."""
    out = []
    roots = [registry_dir()] + [Path(p).expanduser() for p in os.environ.get(FAMILIES_ENV, "").split(os.pathsep) if p]
    for root in roots:
        if root.is_dir():
            out += sorted(p for p in root.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
        elif root.is_file():
            out.append(root)
    return out


def user_family_files() -> dict[str, Path]:
    """Registered family names and their files (the first file wins for a name), without
    reading more than each file's name."""
    out: dict[str, Path] = {}
    for p in _search_paths():
        name = p.stem
        if p.parent != registry_dir():  # a file elsewhere may name itself otherwise
            try:
                name = str(_read(p).get("name", p.stem))
            except GuardError:
                pass
        out.setdefault(name, p)
    return out


def find_user_family(name: str) -> FamilySpec | None:
    """The registered family called ``name``, or None."""
    path = user_family_files().get(name)
    return parse_family_file(path) if path is not None else None


def _toml_string(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a TOML basic string


def family_toml(spec: FamilySpec) -> str:
    """A family as a normalised family file (local paths absolute)."""
    lines = [f"name = {_toml_string(spec.name)}", f"description = {_toml_string(spec.description)}"]
    for s in spec.sizes:
        lines += ["", "[[sizes]]", f"name = {_toml_string(s.name)}",
                  f"hub = {_toml_string(s.hub_id)}" if s.hub_id else f"path = {_toml_string(spec.local_path(s.name))}"]
    return "\n".join(lines) + "\n"


def add_family(path: str | os.PathLike, *, force: bool = False) -> tuple[FamilySpec, Path, dict[str, str]]:
    """Check a family file and register it under its name.

    Returns the family, the registered file and the tokenizer identities compared. Refuses
    (GuardError) a name already registered unless ``force``.
    """
    from gpt2guard.paths import atomic_write_text

    spec = parse_family_file(path)
    target = registry_dir() / f"{spec.name}.toml"
    if target.exists() and not force:
        raise GuardError(f"family {spec.name!r} is already registered ({target}): pass --force to replace it")
    checked = check_shared_tokenizer(spec)
    atomic_write_text(target, family_toml(spec))
    return spec, target, checked


def remove_family(name: str) -> Path:
    """Unregister family ``name``; returns the file removed."""
    target = registry_dir() / f"{name}.toml"
    if not _NAME.fullmatch(name) or not target.is_file():
        known = sorted(p.stem for p in registry_dir().glob("*.toml")) if registry_dir().is_dir() else []
        raise GuardError(f"no registered family {name!r}" + (f"; registered: {', '.join(known)}" if known else ""))
    target.unlink()
    return target


def describe_identity(identities: dict[str, str]) -> str:
    """``one tokenizer (sha256 0123abcd...)`` for a report line."""
    if not identities:
        return "no size on this machine yet: the tokenizers are compared when the sizes are"
    first = next(iter(identities.values()))
    return f"{len(identities)} size(s) on this machine share one tokenizer ({first[:12]})"

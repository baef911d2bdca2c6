"""Watermark keys: a secret, the tokenizer it is for, in a JSON file only its owner reads.

A key file (``gpt2guard watermark keygen``) holds 32 random bytes (hex), the family it was
made for, that family tokenizer's identity (:func:`tokenizer_fingerprint`: a digest of its
vocabulary and merges) and its vocabulary size. It is written atomically with mode 0600 and
never overwritten without ``force``. What records and reports name is the key's
:attr:`WatermarkKey.digest` (SHA-256 of the secret), never the secret.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from gpt2guard.errors import GuardError

KEY_FORMAT = "gpt2guard.watermark-key"
KEY_VERSION = 1
#: Fewest secret bytes a key file may hold (the issue asks for 64 bits or more).
MIN_KEY_BYTES = 8


@dataclass(frozen=True)
class WatermarkKey:
    """A loaded watermark key.

    Attributes
    ----------
    secret : bytes
        The key material; never printed, recorded or compared in the clear.
    family : str
        The family whose tokenizer the key was made for (a hint for loading it).
    tokenizer : str
        That tokenizer's identity (:func:`tokenizer_fingerprint`).
    vocab_size : int
        The vocabulary the green lists cover.
    path : str or None
        Where the key was read from.
    """

    secret: bytes = field(repr=False)
    family: str
    tokenizer: str
    vocab_size: int
    path: str | None = None

    @property
    def digest(self) -> str:
        """SHA-256 hex of the key material: names the key without revealing it."""
        return hashlib.sha256(self.secret).hexdigest()

    def check_tokenizer(self, tokenizer) -> None:
        """Raise GuardError unless ``tokenizer`` is the one this key was made for."""
        ident = tokenizer_fingerprint(tokenizer)
        if ident != self.tokenizer:
            where = f" ({self.path})" if self.path else ""
            raise GuardError(f"watermark key{where} is for the {self.family} tokenizer {self.tokenizer[:12]}, not "
                             f"this text's tokenizer {ident[:12]}: use the key made for this family")


def tokenizer_fingerprint(tokenizer) -> str:
    """The identity of a loaded tokenizer: SHA-256 of its vocabulary and merges.

    The same value :func:`gpt2guard.family.userfile.tokenizer_identity` gives for the
    directory the tokenizer was saved in, computed from the tokenizer object (its
    ``tokenizers`` backend); a tokenizer without one is identified by its vocabulary alone.
    """
    from gpt2guard.paths import sha256_json

    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        model = json.loads(backend.to_str()).get("model") or {}
        vocab, merges = model.get("vocab"), model.get("merges") or []
        merges = [" ".join(m) if isinstance(m, list) else m for m in merges]
        return sha256_json({"vocab": vocab, "merges": merges})
    return sha256_json({"vocab": tokenizer.get_vocab(), "merges": []})


def _key_bytes(seed: int | None) -> bytes:
    if seed is None:
        return secrets.token_bytes(32)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise GuardError(f"key seed must be an integer >= 0, not {seed!r}")
    # a seeded key is reproducible, hence not secret: for tests and examples
    return hashlib.sha256(f"{KEY_FORMAT}:{seed}".encode()).digest()


def keygen(path, *, seed: int | None = None, force: bool = False, family: str = "nano",
           tokenizer=None) -> WatermarkKey:
    """Write a new watermark key file.

    Parameters
    ----------
    path : path-like
        Where to write it (mode 0600, atomically).
    seed : int, optional
        Derive the key from this seed instead of the operating system's randomness: the
        key is then reproducible and NOT secret (tests, examples).
    force : bool
        Replace an existing file; otherwise an existing file is an error.
    family : str
        The family whose tokenizer the key is for (builtin families are built if needed).
    tokenizer : transformers tokenizer, optional
        Use this tokenizer instead of loading ``family``'s.

    Returns
    -------
    WatermarkKey

    Raises
    ------
    GuardError
        When the file exists (without ``force``), the seed is bad or the directory is not
        writable.
    """
    path = Path(path)
    if path.exists() and not force:
        raise GuardError(f"{path} exists: use --force to replace it (a replaced key can no longer detect "
                         "text watermarked with it)")
    if path.is_dir():
        raise GuardError(f"{path} is a directory, not a key file")
    secret = _key_bytes(seed)
    if tokenizer is None:
        from gpt2guard.family import load_tokenizer

        tokenizer = load_tokenizer(family)
    key = WatermarkKey(secret, str(family), tokenizer_fingerprint(tokenizer), int(len(tokenizer)), str(path))
    doc = {"format": KEY_FORMAT, "version": KEY_VERSION, "key": secret.hex(), "family": key.family,
           "tokenizer": key.tokenizer, "vocab_size": key.vocab_size, "digest": key.digest,
           "note": "secret: whoever holds this file can detect, and forge, this watermark"}
    _write_private(path, json.dumps(doc, indent=2) + "\n", force)
    return key


def _write_private(path: Path, text: str, force: bool) -> None:
    """Write ``text`` to ``path`` with mode 0600 through a temporary file: readers see the
    old file or the whole new one; without ``force`` an existing file is never replaced."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise GuardError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if another process created the file meanwhile
            except FileExistsError:
                raise GuardError(f"{path} exists: use --force to replace it") from None
            except OSError:  # a file system without hard links
                if path.exists():
                    raise GuardError(f"{path} exists: use --force to replace it") from None
                os.replace(tmp, path)
    except OSError as exc:
        raise GuardError(f"cannot write key file {path}: {exc.strerror or exc}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)


_LOADED: dict[tuple, WatermarkKey] = {}


def load_key(path) -> WatermarkKey:
    """Read a key file written by :func:`keygen`.

    Raises
    ------
    GuardError
        One line, for a missing, unreadable or malformed file.
    """
    if isinstance(path, WatermarkKey):
        return path
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        raise GuardError(f"watermark key {p}: no such file (make one with `gpt2guard watermark keygen`)") from None
    if not p.is_file():
        raise GuardError(f"watermark key {p}: not a file")
    memo = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    if memo in _LOADED:
        return _LOADED[memo]
    bad = f"watermark key {p}: malformed key file"
    try:
        doc = json.loads(p.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise GuardError(f"watermark key {p}: cannot read it ({exc.strerror or exc})") from None
    except ValueError:
        raise GuardError(f"{bad} (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != KEY_FORMAT:
        raise GuardError(f"{bad} (not a {KEY_FORMAT} file)")
    if doc.get("version") != KEY_VERSION:
        raise GuardError(f"{bad} (version {doc.get('version')!r}; this gpt2guard reads version {KEY_VERSION})")
    try:
        secret = bytes.fromhex(doc["key"])
    except (KeyError, TypeError, ValueError):
        raise GuardError(f"{bad} (its \"key\" is not hex)") from None
    if len(secret) < MIN_KEY_BYTES:
        raise GuardError(f"{bad} (its key has {len(secret) * 8} bits; at least {MIN_KEY_BYTES * 8} are needed)")
    fam, tok, vocab = doc.get("family"), doc.get("tokenizer"), doc.get("vocab_size")
    if not isinstance(fam, str) or not isinstance(tok, str) or len(tok) != 64:
        raise GuardError(f"{bad} (no family or tokenizer identity)")
    if isinstance(vocab, bool) or not isinstance(vocab, int) or vocab < 2:
        raise GuardError(f"{bad} (vocab_size must be an integer >= 2)")
    key = WatermarkKey(secret, fam, tok, vocab, str(p))
    if doc.get("digest") not in (None, key.digest):
        raise GuardError(f"{bad} (its digest does not match its key: edited or damaged)")
    _LOADED[memo] = key
    return key

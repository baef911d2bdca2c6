"""Sign what is published, and check a signature, with OpenSSF model signing and a local key.

:func:`sign_dir` writes ``DIR/model.sig``: a Sigstore bundle (DSSE envelope over an in-toto
statement) whose payload lists the SHA-256 of every file under ``DIR``, made by the
``model-signing`` package with an elliptic-curve private key. No network is involved, no
transparency log, no identity provider: trust rests on the public key, which the publisher
hands out separately. :func:`verify_signature` recomputes every file's digest and checks the
bundle with the public key, so a changed, added or removed file, a bundle signed by another
key, or a missing bundle is a finding. Git files (``.gitignore``, ``.git/``) are signed
like any other file; only the bundle itself is left out.

``model-signing`` is the optional extra ``sign`` (``pip install 'gpt2guard[sign]'``). Because
the bundle is the standard format, a third party can also check it with model-signing's own
CLI: ``model_signing verify key DIR --signature DIR/model.sig --public_key public.pem
--no-ignore-git-paths``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.release.manifest import SIGNATURE

PRIVATE_KEY = "private.pem"
PUBLIC_KEY = "public.pem"


def _model_signing():
    try:
        import model_signing.hashing
        import model_signing.signing
        import model_signing.verifying
    except ImportError:
        raise GuardError("signing needs the model-signing package: pip install 'gpt2guard[sign]'") from None
    return model_signing


def _hashing(ms, ignored: list[str]):
    """SHA-256 of every file; git files included, only ``ignored`` (the bundle) left out."""
    return (ms.hashing.Config().use_file_serialization(hashing_algorithm="sha256", allow_symlinks=False)
            .set_ignored_paths(paths=ignored, ignore_git_paths=False))


def _signature_path(directory: Path, signature: str | Path | None) -> tuple[Path, list[str]]:
    sig = Path(signature) if signature is not None else directory / SIGNATURE
    try:
        inside = [sig.resolve().relative_to(directory.resolve()).as_posix()]
    except ValueError:
        inside = []
    return sig, inside


def generate_keys(out: str | Path, *, force: bool = False) -> tuple[Path, Path]:
    """Write a new NIST P-256 key pair as PEM: ``private.pem`` (mode 0600) and ``public.pem``.

    Parameters
    ----------
    out : path
        Directory for the two files (created when missing).
    force : bool
        Replace existing key files; otherwise refuse, so a key is never lost by accident.

    Returns
    -------
    (Path, Path)
        The private and the public key file.
    """
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError:
        raise GuardError("key generation needs the cryptography package: pip install 'gpt2guard[sign]'") from None

    out = Path(out)
    private, public = out / PRIVATE_KEY, out / PUBLIC_KEY
    for p in (private, public):
        if p.exists() and not force:
            raise GuardError(f"{p} exists; pass --force to replace it (the old key can no longer sign)")
    out.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    if private.exists():
        private.unlink()
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public


def sign_dir(directory: str | Path, private_key: str | Path, *, signature: str | Path | None = None) -> Path:
    """Sign every file under ``directory`` into a Sigstore bundle; returns the bundle's path.

    The directory is verified first (:func:`~gpt2guard.release.manifest.verify_tree`): a
    directory with findings is refused rather than signed.

    Parameters
    ----------
    directory : path
        A published stage directory or a whole simulation run.
    private_key : path
        PEM elliptic-curve private key (``release keygen``).
    signature : path, optional
        Where to write the bundle; default ``directory/model.sig``.
    """
    from gpt2guard.release.manifest import verify_tree

    directory = Path(directory)
    ms = _model_signing()
    findings = [line for r in verify_tree(directory) for line in r.lines()]
    if findings:
        raise GuardError(f"refusing to sign {directory}: it does not verify ({len(findings)} finding(s), "
                         f"first: {findings[0]}); run gpt2guard release verify {directory}")
    if not Path(private_key).is_file():
        raise GuardError(f"no such key file: {private_key}")
    sig, ignored = _signature_path(directory, signature)
    if sig.exists():
        sig.unlink()  # the old bundle is never part of the new one
    try:
        config = ms.signing.Config().set_hashing_config(_hashing(ms, ignored))
        config.use_elliptic_key_signer(private_key=Path(private_key)).sign(directory, sig)
    except ValueError as exc:  # unreadable or unsupported key, password-protected key
        raise GuardError(f"{private_key}: cannot sign with this key ({exc})") from None
    return sig


def verify_signature(directory: str | Path, public_key: str | Path, *,
                     signature: str | Path | None = None) -> list[str]:
    """Check ``directory`` against its bundle with ``public_key``; findings, one line each.

    An empty list means the bundle was made by the key's owner over exactly the files in
    ``directory`` now.
    """
    directory = Path(directory)
    ms = _model_signing()
    sig, ignored = _signature_path(directory, signature)
    if not Path(public_key).is_file():
        raise GuardError(f"no such key file: {public_key}")
    if not sig.is_file():
        return [f"{sig}: missing (the signature; sign with gpt2guard release sign {directory} --key PRIVATE.pem)"]
    try:
        verifier = ms.verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key))
    except ValueError as exc:
        raise GuardError(f"{public_key}: not a usable public key ({exc})") from None
    try:
        verifier.set_hashing_config(_hashing(ms, ignored)).verify(directory, sig)
    except json.JSONDecodeError:
        return [f"{sig}: not a signature bundle (not JSON)"]
    except ValueError as exc:
        text = str(exc)
        if text.startswith("Signature mismatch"):
            return _mismatch_lines(directory, sig, ignored) or [f"{sig}: the files differ from the signed ones"]
        return [f"{sig}: does not verify with {public_key} ({text.strip()})"]
    except Exception as exc:  # a damaged bundle: the protobuf/JSON parsers raise errors of several kinds
        return [f"{sig}: not a readable signature bundle ({type(exc).__name__}: {exc})"]
    return []


def _mismatch_lines(directory: Path, sig: Path, ignored: list[str]) -> list[str]:
    """One line per file that differs from the signed list.

    Called only after model-signing has checked the bundle's signature (a mismatch is
    raised after that), so the file list read from the bundle's payload is the signed one.
    """
    import base64

    from gpt2guard.paths import sha256_file
    from gpt2guard.release.manifest import _walk

    statement = json.loads(base64.b64decode(json.loads(sig.read_text(encoding="utf-8"))["dsseEnvelope"]["payload"]))
    signed = {r["name"]: r["digest"] for r in statement["predicate"]["resources"]}
    files, odd = _walk(directory)
    present = {p.relative_to(directory).as_posix(): p for p in files + odd}
    present = {k: v for k, v in present.items() if k not in ignored}
    lines = [f"missing   {directory}/{name} (signed)" for name in sorted(set(signed) - set(present))]
    lines += [f"altered   {directory}/{name} (not as signed)" for name in sorted(set(signed) & set(present))
              if not present[name].is_file() or sha256_file(present[name]) != signed[name]]
    lines += [f"unlisted  {directory}/{name} (not signed)" for name in sorted(set(present) - set(signed))]
    return lines

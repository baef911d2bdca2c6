"""Find the directory that holds one size of a family, without ever waiting on a network.

Order for a hub size: the user's weights directory (``--weights-dir`` or
``$GPT2GUARD_WEIGHTS``), then the Hugging Face cache, then the hub itself unless
``HF_HUB_OFFLINE`` is set. A builtin size lives in gpt2guard's cache once built.
"""

from __future__ import annotations

import os
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.family.spec import FamilySpec, SizeSpec
from gpt2guard.paths import cache_dir

WEIGHTS_ENV = "GPT2GUARD_WEIGHTS"
HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.model"]
PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.ckpt.index", "tf_model.h5")


def family_dir(name: str) -> Path:
    """Where a builtin family is built: ``<cache>/families/<name>``."""
    return cache_dir() / "families" / name


def check_weights(path: Path) -> Path:
    """Return ``path`` if it is a Hugging Face-format model with safetensors weights.

    Raises GuardError for a missing config, and refuses a checkpoint whose weights exist
    only as a pickle (``pytorch_model.bin``): loading a pickle can run arbitrary code.
    """
    if not (path / "config.json").is_file():
        raise GuardError(f"{path} is not a Hugging Face model directory (no config.json)")
    if any(path.glob("*.safetensors")):
        return path
    if any((path / n).exists() for n in PICKLE_NAMES):
        raise GuardError(f"{path} offers its weights only as a pickle (pytorch_model.bin); gpt2guard loads "
                         "safetensors only: convert it with transformers' save_pretrained(safe_serialization=True)")
    raise GuardError(f"{path} has no model.safetensors")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _from_weights_dir(size: SizeSpec, weights_dir: Path) -> Path | None:
    """A size inside a user's weights directory: ``DIR/<hub name>`` or ``DIR/<size>``."""
    names = [size.name] + ([size.hub_id.split("/")[-1], size.hub_id.replace("/", "--")] if size.hub_id else [])
    for name in names:
        if (weights_dir / name / "config.json").is_file():
            return weights_dir / name
    return None


def _from_hub(hub_id: str, local_only: bool) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = Path(snapshot_download(hub_id, allow_patterns=HUB_PATTERNS, local_files_only=local_only,
                                      etag_timeout=5))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError):
        return None
    return path if (path / "config.json").is_file() else None


def find_size(family: FamilySpec, size: str, weights_dir: str | os.PathLike | None = None,
              download: bool = False) -> Path | None:
    """The local directory of ``size`` in ``family``, or None when it is not at hand.

    Looks in the builtin build, the weights directory, the Hugging Face cache and, only
    when ``download`` is true, the hub. Never raises for a missing size.
    """
    spec = family.size(size)
    if family.kind == "builtin":
        path = family_dir(family.name) / spec.name
        return path if (path / "config.json").is_file() else None
    if family.kind == "single" and spec.hub_id is None:
        return Path(family.source)
    if family.kind == "user" and spec.hub_id is None:
        path = Path(family.local_path(spec.name))
        return path if (path / "config.json").is_file() else None
    weights_dir = weights_dir or os.environ.get(WEIGHTS_ENV)
    if weights_dir:
        found = _from_weights_dir(spec, Path(weights_dir).expanduser())
        if found:
            return found
    return _from_hub(spec.hub_id, local_only=True) or (_from_hub(spec.hub_id, local_only=False) if download else None)


def resolve_size(family: FamilySpec, size: str, weights_dir: str | os.PathLike | None = None) -> Path:
    """The local directory of ``size`` in ``family``, downloading only when online.

    Parameters
    ----------
    family : FamilySpec
    size : str
        Size name, e.g. ``"small"``.
    weights_dir : path, optional
        Directory holding per-size subdirectories in Hugging Face format (named ``gpt2``,
        ``gpt2-medium``, ... or ``small``, ``medium``, ...). Defaults to
        ``$GPT2GUARD_WEIGHTS``.

    Raises
    ------
    GuardError
        When the size is not found locally and cannot be downloaded (``HF_HUB_OFFLINE`` set,
        or no network); the message names the size and the two ways to provide it. A
        checkpoint with only pickle weights is refused.
    """
    spec = family.size(size)
    found = find_size(family, size, weights_dir, download=not _offline())
    if found is not None:
        if family.kind == "user":  # a size downloaded since the file was read is compared now
            from gpt2guard.family.userfile import check_shared_tokenizer

            check_shared_tokenizer(family, weights_dir)
        return check_weights(found)
    if family.kind == "builtin":
        raise GuardError(f"family {family.name!r} size {spec.name!r} is not built yet: "
                         f"run `gpt2guard family build {family.name}`")
    if family.kind == "user" and spec.hub_id is None:
        raise GuardError(f"family {family.name!r} size {spec.name!r}: no Hugging Face model (config.json) in "
                         f"{family.local_path(spec.name)} (family file {family.source})")
    where = f"{family.name} size {spec.name!r} ({spec.hub_id})" if family.kind in ("hub", "user") else spec.hub_id
    raise GuardError(
        f"{where} is not available offline: put a Hugging Face-format copy in "
        f"DIR/{spec.hub_id.split('/')[-1]} and pass --weights-dir DIR (or set {WEIGHTS_ENV}=DIR), "
        f"or download it into the Hugging Face cache with `hf download {spec.hub_id}` while online")

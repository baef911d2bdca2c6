"""The one loading function every part uses: family + size -> model and tokenizer."""

from __future__ import annotations

import json
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpt2guard.errors import GuardError
from gpt2guard.family.registry import get_family
from gpt2guard.family.resolve import resolve_size
from gpt2guard.paths import cache_dir, sha256_file, sha256_text, write_json

_LOADED: dict[tuple, "LoadedModel"] = {}
_MAX_LOADED = 4


@dataclass
class LoadedModel:
    """A model ready for inference, with what provenance needs to name it."""

    model: Any
    tokenizer: Any
    family: str
    size: str
    path: Path
    device: str
    model_hash: str
    tokenizer_hash: str

    @property
    def n_positions(self) -> int:
        """The context window in tokens."""
        cfg = self.model.config
        return int(getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings"))

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def quiet_transformers() -> None:
    """Silence transformers' advisory warnings and file-writing progress bars; our own
    progress and errors say what a user needs."""
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def pick_device(device: str | None = None) -> str:
    """``device`` if given, else ``"cuda"`` when a GPU is present, else ``"cpu"``."""
    import torch

    if not device:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(str(device))
    except (RuntimeError, TypeError, ValueError):
        raise GuardError(f"unknown device {device!r}: use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise GuardError(f"device {device!r} asked for, but no CUDA GPU is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise GuardError(f"device {device!r} asked for, but there are only {torch.cuda.device_count()} CUDA "
                             "GPU(s): cuda:0 to cuda:{}".format(torch.cuda.device_count() - 1))
        return str(dev)
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise GuardError(f"device {device!r} asked for, but no Apple MPS device is available")
        return "mps"
    raise GuardError(f"device {device!r} cannot run gpt2guard's models: use cpu, cuda, cuda:N or mps")


# Environment defaults for the OpenMP runtime torch loads; a user's own settings win.
THREAD_ENV = {
    # threads that wait for work sleep instead of spinning: a spinning thread burns a CPU
    # that another process on the machine needs (libgomp, which torch's Linux wheels use)
    "OMP_WAIT_POLICY": "PASSIVE",
    "KMP_BLOCKTIME": "0",          # the same for Intel's OpenMP runtime, where torch uses it
}


def thread_env_defaults(environ=None) -> dict:
    """Set :data:`THREAD_ENV` in ``environ`` (default ``os.environ``) where the user has not
    set those variables; return what was set. Takes effect only before torch is imported
    (the OpenMP runtime reads them when it loads): the CLI calls it first thing."""
    environ = os.environ if environ is None else environ
    added = {k: v for k, v in THREAD_ENV.items() if k not in environ}
    environ.update(added)
    return added


def busy_cpus(path: str = "/proc/loadavg") -> int:
    """How many CPUs other processes keep busy now: the runnable tasks besides this one
    (``/proc/loadavg``, median of a few samples over ~20 ms), at most the 1-minute load
    average rounded up (which damps a momentary burst); 0 where unknown."""
    import math
    import statistics
    import time

    try:
        samples = []
        for i in range(5):
            with open(path) as f:
                fields = f.read().split()
            samples.append(int(fields[3].split("/")[0]) - 1)  # runnable tasks, less the reader
            if i < 4:
                time.sleep(0.005)
        return max(0, min(int(statistics.median(samples)), math.ceil(float(fields[0]))))
    except (OSError, ValueError, IndexError):
        return 0


def pick_threads() -> int:
    """Torch threads for this process: the CPUs it may run on that other processes do not
    keep busy (:func:`busy_cpus`), at least one. On a shared machine extra threads do not
    make work faster; they make it wait for each other and cost CPU time."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, n - busy_cpus())


def set_threads() -> int:
    """Set torch's intra-op threads by :func:`pick_threads` and one inter-op thread, unless
    the user chose with ``OMP_NUM_THREADS``; return the thread count in use.

    The count is fixed here, when a model loads or a family builds, so a result's thread
    count (recorded in provenance, since float sums depend on it) does not change mid-run.
    """
    import torch

    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(pick_threads())
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # inter-op work has started (or it was set): torch keeps its pool
    return torch.get_num_threads()


def build_thread_count() -> int:
    """Torch threads of a family build: ``OMP_NUM_THREADS`` if set, else every CPU this
    process may run on. Fixed whatever the machine's load, because a build's weights
    depend on the thread count (float sums) and a build must be reproducible."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@contextmanager
def build_threads():
    """Run the block with :func:`build_thread_count` torch threads, then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(build_thread_count())
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def weights_hash(path: Path) -> str:
    """SHA-256 naming the weights of a model directory.

    Files in the Hugging Face cache are symlinks to blobs named by their own SHA-256, so
    their digest costs nothing; other files are hashed once and remembered by path, size
    and modification time.
    """
    memo_path = cache_dir() / "hashes.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    if not isinstance(memo, dict) or not all(isinstance(v, str) for v in memo.values()):
        memo = {}  # not an index this function wrote: start a new one (it is only a cache)
    parts, dirty = [], False
    for f in sorted(path.glob("*.safetensors")):
        target = f.resolve()
        if f.is_symlink() and re.fullmatch(r"[0-9a-f]{64}", target.name):
            digest = target.name
        else:
            st = target.stat()
            key = f"{target}:{st.st_size}:{st.st_mtime_ns}"
            if key not in memo:
                memo[key], dirty = sha256_file(target), True
            digest = memo[key]
        parts.append(f"{f.name}:{digest}")
    if dirty:
        try:
            write_json(memo_path, memo)
        except OSError:
            pass  # a read-only cache only costs re-hashing next time
    return sha256_text("\n".join(parts))


def tokenizer_hash(path: Path) -> str:
    """SHA-256 over the tokenizer files of a model directory."""
    names = ["tokenizer.json"] if (path / "tokenizer.json").is_file() else ["vocab.json", "merges.txt"]
    return sha256_text("\n".join(sha256_file(path / n) for n in names if (path / n).is_file()))


def load_tokenizer(family: str = "nano", *, weights_dir=None, build_missing: bool = True):
    """The tokenizer a family's sizes share, without loading any weights.

    A builtin family is built first if needed (``build_missing``); a hub family's tokenizer
    is read from the first size found locally.
    """
    from transformers import AutoTokenizer

    quiet_transformers()
    spec = get_family(family)
    if spec.kind == "builtin" and build_missing:
        from gpt2guard.family.build import build_family

        build_family(spec.name)
    path = resolve_size(spec, spec.sizes[0].name, weights_dir)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(family: str = "nano", size: str | None = None, *, weights_dir=None, device: str | None = None,
               dtype: str | None = None, build_missing: bool = True) -> LoadedModel:
    """Load one size of a family for inference.

    Parameters
    ----------
    family : str
        ``"gpt2"``, ``"nano"``, ``"micro"``, a local model directory or a Hugging Face id.
    size : str, optional
        Size name; defaults to the family's smallest.
    weights_dir : path, optional
        Directory with local copies of hub sizes (see :func:`resolve_size`).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; default CUDA when present, else CPU.
    dtype : str, optional
        ``"float32"`` (default), ``"bfloat16"`` or ``"float16"``.
    build_missing : bool
        Build a builtin family that is not built yet (deterministic, cached).

    Returns
    -------
    LoadedModel
        Model in eval mode on ``device``, tokenizer with a pad token, and hashes.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    spec = get_family(family)
    size = size or spec.sizes[0].name
    spec.size(size)
    if spec.kind == "builtin" and build_missing:
        from gpt2guard.family.build import build_family

        build_family(spec.name)
    path = resolve_size(spec, size, weights_dir)
    device = pick_device(device)
    key = (str(path), device, dtype)
    if key in _LOADED:
        return _LOADED[key]
    if device == "cpu":
        set_threads()
    torch_dtype = {"float32": torch.float32, None: torch.float32, "bfloat16": torch.bfloat16,
                   "float16": torch.float16}.get(dtype)
    if torch_dtype is None:
        raise GuardError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    try:
        model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise GuardError(f"cannot load the model in {path}: {str(exc).splitlines()[0]}") from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device).eval()
    loaded = LoadedModel(model, tokenizer, spec.name, size, path, device, weights_hash(path), tokenizer_hash(path))
    if len(_LOADED) >= _MAX_LOADED:
        _LOADED.pop(next(iter(_LOADED)))
    _LOADED[key] = loaded
    return loaded

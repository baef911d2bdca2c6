"""Build a builtin family: corpus, shared tokenizer, then each size, resumably.

Layout of ``<cache>/families/<name>/``::

    family.json          the manifest (sizes, parameters, config, losses, hashes, versions)
    tokenizer/           the shared byte-level BPE tokenizer
    small/ medium/ ...   one Hugging Face model directory per size (safetensors + tokenizer)

Each size is written to a temporary directory and renamed when complete, and the manifest
is rewritten after each size, so a build killed half way resumes at the first unfinished
size.
"""

from __future__ import annotations

import os
import platform
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from gpt2guard.errors import GuardError
from gpt2guard.family.registry import get_family
from gpt2guard.family.resolve import family_dir
from gpt2guard.paths import sha256_json, write_json

MANIFEST = "family.json"


def read_manifest(name: str) -> dict | None:
    """The manifest of a builtin family's build, or None if it was never started."""
    import json

    path = family_dir(name) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise GuardError(f"{path} is corrupt ({exc}); rebuild with --force") from exc


def library_versions() -> dict:
    import tokenizers
    import torch
    import transformers

    import gpt2guard

    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "numpy": np.__version__, "gpt2guard": gpt2guard.__version__}


def _encode(tokenizer, texts: list[str]) -> np.ndarray:
    """One stream of token ids: every document followed by ``<|endoftext|>``."""
    eot = tokenizer.eos_token_id
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return np.fromiter((t for doc in ids for t in (*doc, eot)), dtype=np.int32)


def build_family(name: str = "nano", seed: int = 0, force: bool = False, progress: bool = True,
                 log=None) -> Path:
    """Build (or finish building) a builtin family and return its directory.

    Parameters
    ----------
    name : str
        A builtin family (``"nano"`` or ``"micro"``).
    seed : int
        Seeds the corpus split, weight initialisation and batch order.
    force : bool
        Discard an existing build (needed to rebuild with another seed).
    progress : bool
        Show a progress bar per size (only on a terminal).
    log : callable, optional
        Receives one-line progress messages.

    Returns
    -------
    pathlib.Path
        The family directory, whose ``family.json`` records what was built.
    """
    from gpt2guard.datasets.builtin import builtin_corpus, corpus_hash
    from gpt2guard.family.load import build_thread_count, build_threads, quiet_transformers
    from gpt2guard.family.tokenizer import train_tokenizer
    from gpt2guard.family.train import train_size

    quiet_transformers()

    spec = get_family(name)
    if spec.kind != "builtin":
        raise GuardError(f"family {name!r} is not builtin: only {', '.join(_builtin_names())} can be built")
    root = family_dir(name)
    recipe_hash = sha256_json({"recipe": asdict(spec.recipe), "sizes": [asdict(s) for s in spec.sizes]})
    manifest = None if force else read_manifest(name)
    if manifest and (manifest["seed"] != seed or manifest["recipe_hash"] != recipe_hash):
        raise GuardError(f"{root} holds a build with seed {manifest['seed']} and another recipe or seed than "
                         "asked: pass --force to rebuild it")
    if manifest and manifest.get("complete"):
        return root
    say = log or (lambda msg: None)
    if force and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)

    # 1. the builtin human corpus, split by source module
    t0 = time.perf_counter()
    docs = builtin_corpus(packages=spec.recipe.packages, seed=seed)
    if spec.recipe.max_docs:
        docs = docs[: spec.recipe.max_docs]
    chash = corpus_hash(docs)
    if manifest and manifest["corpus"]["hash"] != chash:
        raise GuardError(f"the builtin corpus changed since {root} was started (another version of a package?): "
                         "pass --force to rebuild")
    train_texts = [d.text for d in docs if d.split == "train"]
    val_texts = [d.text for d in docs if d.split == "valid"]
    say(f"corpus: {len(docs)} documents ({len(train_texts)} train, {len(val_texts)} valid) "
        f"in {time.perf_counter() - t0:.1f}s")

    # 2. one tokenizer for every size, trained on the train split only
    from transformers import AutoTokenizer

    tok_dir = root / "tokenizer"
    if manifest and tok_dir.is_dir():
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tokenizer = train_tokenizer(train_texts, spec.recipe.vocab_size, spec.recipe.n_positions, tok_dir)
    train_ids, val_ids = _encode(tokenizer, train_texts), _encode(tokenizer, val_texts)
    manifest = manifest or {
        "name": name, "description": spec.description, "seed": seed, "recipe_hash": recipe_hash,
        "recipe": asdict(spec.recipe), "complete": False,
        "corpus": {"hash": chash, "documents": len(docs), "packages": list(spec.recipe.packages),
                   "train_tokens": int(len(train_ids)), "valid_tokens": int(len(val_ids))},
        "tokenizer": {"vocab_size": len(tokenizer), "eos_token_id": tokenizer.eos_token_id},
        "versions": library_versions(), "threads": build_thread_count(), "sizes": {},
    }
    write_json(root / MANIFEST, manifest)

    # 3. each size in order; a finished size is never trained again
    for i, size in enumerate(spec.sizes):
        out = root / size.name
        if size.name in manifest["sizes"] and (out / "model.safetensors").is_file():
            continue
        say(f"training {name} {size.name}: {size.n_layer} layers, width {size.n_embd}, "
            f"{size.train_tokens:,} tokens")
        with build_threads():  # a fixed count whatever the load: the weights depend on it
            model, stats = train_size(size, spec.recipe, tokenizer, train_ids, val_ids, seed=seed * 1000 + i,
                                      progress=progress)
        tmp = root / f".{size.name}.tmp-{os.getpid()}"
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
        manifest["sizes"][size.name] = {"params": sum(p.numel() for p in model.parameters()),
                                        "config": {"n_layer": size.n_layer, "n_embd": size.n_embd,
                                                   "n_head": size.n_head, "n_positions": spec.recipe.n_positions,
                                                   "vocab_size": len(tokenizer)},
                                        "lr": size.lr, **stats}
        write_json(root / MANIFEST, manifest)
        say(f"  {size.name}: val loss {stats['val_loss']:.3f}, train loss {stats['train_loss']:.3f}, "
            f"{stats['seconds']:.0f}s")
    manifest["complete"] = True
    manifest["build_seconds"] = round(sum(s["seconds"] for s in manifest["sizes"].values()), 1)
    write_json(root / MANIFEST, manifest)
    return root


def _builtin_names() -> list[str]:
    from gpt2guard.family.registry import BUILTIN

    return [n for n, f in BUILTIN.items() if f.kind == "builtin"]


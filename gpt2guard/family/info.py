"""What is known of each family without loading a model: sizes, parameter counts, availability."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.family.registry import BUILTIN, get_family
from gpt2guard.family.resolve import find_size
from gpt2guard.family.spec import FamilySpec


def gpt2_param_count(vocab: int, n_positions: int, n_layer: int, n_embd: int) -> int:
    """Parameters of a GPT2LMHeadModel with tied input and output embeddings."""
    d = n_embd
    return vocab * d + n_positions * d + n_layer * (12 * d * d + 13 * d) + 2 * d


def local_facts(path: Path) -> dict:
    """Layers, width and parameter count of a local Hugging Face model directory, read from
    its config.json and its safetensors headers (no weights are loaded); missing facts are None."""
    out = {"n_layer": None, "n_embd": None, "params": None}
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        out["n_layer"] = cfg.get("n_layer") or cfg.get("num_hidden_layers")
        out["n_embd"] = cfg.get("n_embd") or cfg.get("hidden_size")
        total = 0
        for f in sorted(path.glob("*.safetensors")):
            with open(f, "rb") as fh:
                (n,) = struct.unpack("<Q", fh.read(8))
                header = json.loads(fh.read(n))
            total += sum(math.prod(t["shape"]) for k, t in header.items() if k != "__metadata__")
        out["params"] = total or None
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        pass
    return out


def _size_rows(spec: FamilySpec) -> list[dict]:
    from gpt2guard.family.build import read_manifest

    build = read_manifest(spec.name) if spec.kind == "builtin" else None
    rows = []
    for s in spec.sizes:
        built = (build or {}).get("sizes", {}).get(s.name, {})
        if s.params or built:
            params = s.params or built["params"]
        elif spec.recipe:
            params = gpt2_param_count(spec.recipe.vocab_size, spec.recipe.n_positions, s.n_layer, s.n_embd)
        else:
            params = None
        where = find_size(spec, s.name)  # local only: listing never downloads
        facts = local_facts(where) if where and spec.kind == "user" else {}
        rows.append({"family": spec.name, "size": s.name, "n_layer": s.n_layer or facts.get("n_layer"),
                     "n_embd": s.n_embd or facts.get("n_embd"), "params": params or facts.get("params"),
                     "available": str(where) if where else "no", "val_loss": built.get("val_loss"),
                     "kind": spec.kind})
    return rows


def family_rows() -> list[dict]:
    """One row per size of every builtin family, then of every registered user family; a
    registered family whose file no longer checks out gets one row whose ``error`` says why."""
    from gpt2guard.family.userfile import parse_family_file, user_family_files

    rows = [row for spec in BUILTIN.values() for row in _size_rows(spec)]
    for name, path in sorted(user_family_files().items()):
        if name in BUILTIN:
            continue
        try:
            rows += _size_rows(parse_family_file(path))
        except GuardError as exc:
            rows.append({"family": name, "size": None, "n_layer": None, "n_embd": None, "params": None,
                         "available": "no", "val_loss": None, "kind": "user", "error": str(exc)})
    return rows


def family_info(name: str) -> dict:
    """Sizes and availability of family ``name``; for a builtin family, its build manifest."""
    from gpt2guard.family.build import read_manifest

    spec = get_family(name)
    return {"name": spec.name, "kind": spec.kind, "description": spec.description, "sizes": _size_rows(spec),
            "build": read_manifest(spec.name) if spec.kind == "builtin" else None}

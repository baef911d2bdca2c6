"""What is known of each family without loading a model: sizes, parameter counts, availability."""

from __future__ import annotations

from gpt2guard.family.registry import get_family, list_families
from gpt2guard.family.resolve import find_size
from gpt2guard.family.spec import FamilySpec


def gpt2_param_count(vocab: int, n_positions: int, n_layer: int, n_embd: int) -> int:
    """Parameters of a GPT2LMHeadModel with tied input and output embeddings."""
    d = n_embd
    return vocab * d + n_positions * d + n_layer * (12 * d * d + 13 * d) + 2 * d


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
        rows.append({"family": spec.name, "size": s.name, "n_layer": s.n_layer, "n_embd": s.n_embd,
                     "params": params, "available": str(where) if where else "no",
                     "val_loss": built.get("val_loss")})
    return rows


def family_rows() -> list[dict]:
    """One row per size of every builtin family."""
    return [row for spec in list_families() for row in _size_rows(spec)]


def family_info(name: str) -> dict:
    """Sizes and availability of family ``name``; for a builtin family, its build manifest."""
    from gpt2guard.family.build import read_manifest

    spec = get_family(name)
    return {"name": spec.name, "kind": spec.kind, "description": spec.description, "sizes": _size_rows(spec),
            "build": read_manifest(spec.name) if spec.kind == "builtin" else None}

"""Model families as data: which sizes exist and how each is built or found.

A family is an ordered list of sizes, smallest first, that share one tokenizer. Three
kinds exist:

* ``hub``: sizes are Hugging Face checkpoints (the real GPT-2 family);
* ``builtin``: sizes are trained by gpt2guard itself (``nano`` and its ``micro`` preset for
  tests), with the training recipe below;
* ``single``: one model given by a Hugging Face id or a local directory;
* ``user``: sizes named in a family file, each a Hugging Face id or a local directory
  (:mod:`gpt2guard.family.userfile`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SizeSpec:
    """One size of a family.

    ``n_layer``, ``n_embd`` and ``n_head`` describe the architecture; ``hub_id`` names the
    checkpoint of a hub size; ``lr`` and ``train_tokens`` are the training recipe of a
    builtin size (a user family's local directories are its :attr:`FamilySpec.paths`).
    """

    name: str
    n_layer: int | None = None
    n_embd: int | None = None
    n_head: int | None = None
    params: int | None = None
    hub_id: str | None = None
    lr: float | None = None
    train_tokens: int | None = None


@dataclass(frozen=True)
class BuildRecipe:
    """How a builtin family is trained: corpus, tokenizer and optimisation settings shared
    by all its sizes."""

    vocab_size: int
    n_positions: int
    block_size: int
    batch_size: int
    packages: tuple[str, ...]
    max_docs: int | None = None  # take only the first N corpus documents (micro preset)
    val_tokens: int = 65536
    warmup: float = 0.05
    weight_decay: float = 0.1


@dataclass(frozen=True)
class FamilySpec:
    """An ordered family of sizes sharing one tokenizer."""

    name: str
    kind: str  # "hub" | "builtin" | "single" | "user"
    sizes: tuple[SizeSpec, ...]
    description: str = ""
    recipe: BuildRecipe | None = None
    source: str | None = None  # the id or directory of a "single" family; a "user" family's file
    paths: tuple[tuple[str, str], ...] = ()  # (size, local directory) of a "user" family's local sizes

    def local_path(self, name: str) -> str | None:
        """The local directory a user family's file gives for size ``name`` (None for a hub size)."""
        return dict(self.paths).get(name)

    @property
    def size_names(self) -> list[str]:
        return [s.name for s in self.sizes]

    def size(self, name: str) -> SizeSpec:
        """The size called ``name``; raises GuardError naming the sizes that exist."""
        from gpt2guard.errors import GuardError

        for s in self.sizes:
            if s.name == name:
                return s
        raise GuardError(f"family {self.name!r} has no size {name!r}; its sizes are {', '.join(self.size_names)}")

    def select(self, sizes: str | list[str] | None) -> list[SizeSpec]:
        """Sizes named by ``"all"``, a comma-separated string or a list, in family order."""
        if sizes is None or sizes == "all" or sizes == ["all"]:
            return list(self.sizes)
        names = [n.strip() for n in sizes.split(",")] if isinstance(sizes, str) else list(sizes)
        wanted = {self.size(n).name for n in names if n}
        return [s for s in self.sizes if s.name in wanted]

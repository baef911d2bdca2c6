"""Model families: which sizes exist, where each is found, how each is loaded or built."""

from gpt2guard.family.load import LoadedModel, load_model, load_tokenizer
from gpt2guard.family.registry import DEFAULT_FAMILY, get_family, list_families
from gpt2guard.family.resolve import resolve_size
from gpt2guard.family.spec import FamilySpec, SizeSpec

__all__ = ["DEFAULT_FAMILY", "FamilySpec", "LoadedModel", "SizeSpec", "get_family", "list_families",
           "load_model", "load_tokenizer", "resolve_size"]

"""What the scoring engine needs from a causal language model, and the checks on a model pair."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gpt2guard.errors import GuardError
from gpt2guard.family.load import LoadedModel


def wrap_model(model, tokenizer, name: str = "adhoc") -> LoadedModel:
    """A :class:`LoadedModel` for a model built in memory (tests, benchmarks).

    The weights hash is a SHA-256 over parameter names, shapes and bytes, so the score
    cache tells two random initialisations apart. ``tokenizer`` may be None for callers
    that score token ids only.
    """
    import torch

    h = hashlib.sha256()
    with torch.no_grad():
        for pname, p in sorted(model.state_dict().items()):
            h.update(f"{pname}:{tuple(p.shape)}:{p.dtype}".encode())
            h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    tok_hash = ""
    if tokenizer is not None:
        tok_hash = hashlib.sha256(repr(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    device = str(next(model.parameters()).device)
    model.eval()
    return LoadedModel(model, tokenizer, name, "model", Path("."), device, h.hexdigest(), tok_hash)


def lm_parts(model):
    """The body and the output head of a causal LM.

    Returns
    -------
    body : torch.nn.Module
        Maps token ids to final hidden states (B, T, d), last layer norm included.
    weight : Tensor, shape (V, d)
    bias : Tensor of shape (V,) or None
    """
    head = model.get_output_embeddings()
    if head is None or not hasattr(head, "weight"):
        raise GuardError(f"{type(model).__name__} has no output projection to score with")
    return model.base_model, head.weight, getattr(head, "bias", None)


def eos_id(loaded: LoadedModel) -> int:
    """The ``<|endoftext|>`` id prepended to every document: the tokenizer's eos (else bos),
    else the model config's."""
    tok, cfg = loaded.tokenizer, loaded.model.config
    candidates = ((tok.eos_token_id, tok.bos_token_id) if tok is not None else ()) + (
        getattr(cfg, "eos_token_id", None), getattr(cfg, "bos_token_id", None))
    for ident in candidates:
        if isinstance(ident, int):
            return ident
    raise GuardError(f"the tokenizer of {loaded.family} has no end-of-text token to start documents with")


def bf16_supported(device: str = "cpu") -> bool:
    """Whether ``device`` runs bfloat16 matrix products natively (CUDA with bf16, or a CPU with
    AVX512-BF16 or AMX); elsewhere ``bf16=True`` still works but emulated, usually slower."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def check_pair(scorer: LoadedModel, reference: LoadedModel) -> None:
    """Refuse a scorer/reference pair that does not share a tokenizer and an output vocabulary.

    Tokenizer files are compared by hash; when the hashes differ the vocabularies and
    end-of-text ids are compared, so two copies of one tokenizer saved differently pass.
    """
    if scorer.device != reference.device:
        raise GuardError(f"the scorer is on {scorer.device} and the reference on {reference.device}: "
                         "load both on one device")
    same = scorer.tokenizer_hash == reference.tokenizer_hash
    if not same and scorer.tokenizer is not None and reference.tokenizer is not None:
        same = (scorer.tokenizer.get_vocab() == reference.tokenizer.get_vocab()
                and eos_id(scorer) == eos_id(reference))
    if not same:
        raise GuardError(f"the scorer ({scorer.family} {scorer.size}) and the reference "
                         f"({reference.family} {reference.size}) use different tokenizers: "
                         "a reference model must come from the scorer's family")
    v1, v2 = lm_parts(scorer.model)[1].shape[0], lm_parts(reference.model)[1].shape[0]
    if v1 != v2:
        raise GuardError(f"the scorer predicts {v1} tokens and the reference {v2}: their vocabularies differ")

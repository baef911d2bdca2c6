"""GPT-2 architectures with random weights, and the device and dtype helpers the benches share.

Nothing is downloaded: a model is built from its shape (``GPT2Config``), on the device it
runs on (a 1.5B-parameter model initialised on a GPU takes a second; on a CPU it takes
tens), then cast to the dtype asked for. The four sizes are OpenAI's GPT-2 releases
(vocabulary 50257, context 1024); ``tiny`` is a two-layer model with GPT-2's vocabulary
and context, for dry runs of the benchmark pipeline.
"""

from __future__ import annotations

# name -> (n_layer, n_embd, n_head): OpenAI's four GPT-2 sizes, and a tiny one for dry runs
ARCHS = {
    "124M": (12, 768, 12),
    "355M": (24, 1024, 16),
    "774M": (36, 1280, 20),
    "1558M": (48, 1600, 25),
    "tiny": (2, 64, 2),
}
VOCAB, CONTEXT, EOS = 50257, 1024, 50256
DTYPES = ("float32", "bfloat16")


def arch_params(arch: str) -> int:
    """Parameters of a GPT-2 architecture (the output layer shares the token embedding)."""
    n_layer, d, _ = ARCHS[arch]
    per_layer = 12 * d * d + 13 * d  # attention 4d^2 + 4d, MLP 8d^2 + 5d, two layer norms 4d
    return n_layer * per_layer + VOCAB * d + CONTEXT * d + 2 * d


def flops_per_token(arch: str, context: float) -> float:
    """Forward FLOPs of one token at ``context`` tokens of attention: 2 per weight it
    multiplies (every layer, and the output projection; not the embedding look-ups) plus
    the attention scores and their weighted sum, 4 x n_layer x context x d."""
    n_layer, d, _ = ARCHS[arch]
    return 2.0 * (n_layer * 12 * d * d + VOCAB * d) + 4.0 * n_layer * context * d


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cuda`` without one exits
    with one line."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {device}: no CUDA GPU is available to this torch ({torch.__version__})")
    return device


def torch_dtype(name: str):
    import torch

    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[name]


def random_gpt2(arch: str = "124M", device: str = "cpu", dtype: str = "float32", seed: int = 0):
    """A ``GPT2LMHeadModel`` of architecture ``arch`` with random weights, built on ``device``
    and cast to ``dtype``, in eval mode."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    n_layer, d, heads = ARCHS[arch]
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=CONTEXT, n_layer=n_layer, n_embd=d, n_head=heads,
                     bos_token_id=EOS, eos_token_id=EOS)
    torch.manual_seed(seed)
    with torch.device(device):
        model = GPT2LMHeadModel(cfg)
    return model.to(torch_dtype(dtype)).eval()


def loaded_random_gpt2(arch: str = "124M", device: str = "cpu", dtype: str = "float32", seed: int = 0):
    """:func:`random_gpt2` as a :class:`~gpt2guard.family.load.LoadedModel` without a tokenizer
    (the scoring engine's input). Named by its architecture and seed instead of a hash of its
    weights: hashing 6 GB of weights would cost more than some benchmarks."""
    from pathlib import Path

    from gpt2guard.family.load import LoadedModel

    model = random_gpt2(arch, device, dtype, seed)
    name = f"gpt2-{arch}-random"
    return LoadedModel(model, None, name, "model", Path("."), str(next(model.parameters()).device),
                       f"{name}-seed{seed}-{dtype}", "")


def sync(device) -> None:
    """Wait for the device's queued work (CUDA runs asynchronously; timings need this)."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device) -> str:
    """The GPU's name on CUDA, else the CPU's."""
    import torch

    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    from gpt2guard.family.linear import cpu_fingerprint

    fp = cpu_fingerprint()
    return f"{fp['vendor']} {fp['model']}"

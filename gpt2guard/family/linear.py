"""GPT-2's linear layers through oneDNN on CPU: the same float32 products, about twice as fast.

On CPU, torch runs a float32 ``addmm``/``F.linear`` through its BLAS (MKL on x86-64). Its
oneDNN backend has a float32 linear primitive (``torch.ops.mkldnn._linear_pointwise``, the
one torch's own compiler emits) that on this project's machine (2 AVX-512 cores) runs every
GPT-2 layer shape 2-2.3x faster than MKL at 512-2048 rows and 2-4x faster at 8 rows, with
float32 arithmetic (no bfloat16 rounding: results agree with MKL's to ~1e-6 relative, as
two float32 summation orders do). It reads GPT-2's ``Conv1D`` weights, stored (in, out), as
a transposed view, so nothing is copied. ``bench/bench_scoring.py`` and
``bench/bench_generate.py`` time both backends.

oneDNN also sums each output row in an order that does not depend on the other rows once
there are at least :data:`ONEDNN_MIN_ROWS` rows, nor on the thread count (measured for every
GPT-2 and nano layer shape, M = 2..96, 1 and 2 threads; the generator's tests assert it), which
the generator's batch-invariance needs.

The MLP's tanh-approximated GELU (GPT-2's ``gelu_new``) runs fused into its first product
as a oneDNN post-op: transformers computes it as five elementwise passes over a (B, T, 4d)
tensor, which cost about a quarter of a forward pass once the products are fast (measured:
57 ms fused against 176 ms for the product followed by the five passes, 4096 x 768 -> 3072;
the results differ by 5e-7).

Backends, by name: ``"aten"`` (torch's default path, any device and dtype) and ``"onednn"``
(CPU, float32, torch built with oneDNN). :func:`pick_backend` resolves ``"auto"`` to the
fastest one available; :func:`linear_backend` runs a model's layers through it for a block
of code and then restores the model exactly.
"""

from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache

BACKENDS = ("aten", "onednn")
# Fewest rows for which oneDNN's bits of a row do not depend on how many rows there are
# (one row takes a matrix-vector path that sums differently for the 3072- and 1600-wide inputs).
ONEDNN_MIN_ROWS = 2


@lru_cache(maxsize=None)
def onednn_available() -> bool:
    """Whether this torch has oneDNN's float32 linear and it agrees with ``F.linear``.

    Checked once per process on a small product, so a build whose kernel misbehaves falls
    back to the default path instead of producing wrong numbers.
    """
    import torch

    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if op is None or not torch.backends.mkldnn.is_available():
        return False
    try:
        gen = torch.Generator().manual_seed(0)
        x, w, b = (torch.randn(*shape, generator=gen) for shape in ((5, 64), (48, 64), (48,)))
        with torch.inference_mode():
            got = op(x, w, b, "none", [], "")
        return bool(torch.allclose(got, torch.nn.functional.linear(x, w, b), rtol=1e-4, atol=1e-5))
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def pick_backend(requested: str = "auto", device="cpu", dtype=None) -> str:
    """The backend to run linear layers on: ``requested`` if it applies, ``"onednn"`` for
    ``"auto"`` on a CPU float32 model when available, else ``"aten"``.

    Raises
    ------
    ValueError
        For a name outside :data:`BACKENDS` and ``"auto"``, or ``"onednn"`` where it cannot run.
    """
    import torch

    if requested not in BACKENDS + ("auto",):
        raise ValueError(f"unknown linear backend {requested!r}: use auto, {', '.join(BACKENDS)}")
    fits = str(device).startswith("cpu") and dtype in (None, torch.float32) and onednn_available()
    if requested == "onednn" and not fits:
        raise ValueError("the onednn backend runs float32 models on CPU with a torch built with oneDNN")
    if requested == "auto":
        return "onednn" if fits else "aten"
    return requested


def backend_for(requested: str, *models) -> str:
    """The one backend to run every model in ``models`` (``nn.Module``) on: ``requested``
    resolved by :func:`pick_backend` for each model's device and dtype; ``"auto"`` gives
    oneDNN only if every model can run on it.

    Raises
    ------
    GuardError
        As :func:`pick_backend` raises ValueError, as one line for the user.
    """
    from gpt2guard.errors import GuardError

    try:
        picked = {pick_backend(requested, p.device, p.dtype) for p in (next(m.parameters()) for m in models)}
    except ValueError as exc:
        raise GuardError(str(exc)) from None
    return picked.pop() if len(picked) == 1 else "aten"


def linear(x, weight, bias=None, backend: str = "aten", *, gelu: bool = False):
    """``x @ weight.T + bias`` for ``x`` (..., d_in) and ``weight`` (d_out, d_in), on
    ``backend``; with ``gelu`` followed by the tanh approximation of GELU (fused on oneDNN)."""
    import torch
    import torch.nn.functional as F

    if backend == "onednn" and not torch.is_grad_enabled():
        post, algorithm = ("gelu", "tanh") if gelu else ("none", "")
        return torch.ops.mkldnn._linear_pointwise(x.contiguous(), weight, bias, post, [], algorithm)
    y = F.linear(x, weight, bias)
    return F.gelu(y, approximate="tanh") if gelu else y


def _fusable_mlp(mlp) -> bool:
    """Whether a GPT-2 MLP computes the tanh approximation of GELU between two ``Conv1D``
    layers, so that the GELU can run fused into the first product."""
    from transformers.pytorch_utils import Conv1D

    name = type(mlp.act).__name__
    tanh = name in ("NewGELUActivation", "PytorchGELUTanh", "GELUTanh") or (
        name == "GELUActivation" and getattr(mlp.act, "approximate", None) == "tanh")
    return tanh and type(mlp.c_fc) is Conv1D and type(mlp.c_proj) is Conv1D


@lru_cache(maxsize=None)
def _onednn_classes() -> dict:
    """Subclasses of GPT-2's ``Conv1D`` and MLP and of ``nn.Linear`` whose forward runs on
    oneDNN; :func:`linear_backend` gives a model's modules these classes for a while."""
    import torch
    from transformers.models.gpt2.modeling_gpt2 import GPT2MLP
    from transformers.pytorch_utils import Conv1D

    class OneDNNConv1D(Conv1D):
        def forward(self, x):  # (..., nx) -> (..., nf); the weight is stored (nx, nf)
            return linear(x, self.weight.t(), self.bias, "onednn")

    class OneDNNLinear(torch.nn.Linear):
        def forward(self, x):  # (..., in) -> (..., out)
            return linear(x, self.weight, self.bias, "onednn")

    class OneDNNGPT2MLP(GPT2MLP):
        def forward(self, x):  # (..., d) -> (..., d), GELU fused into the first product
            if torch.is_grad_enabled():
                return super().forward(x)
            fc, proj = self.c_fc, self.c_proj
            h = linear(x, fc.weight.t(), fc.bias, "onednn", gelu=True)  # (..., d) -> (..., 4d)
            return self.dropout(linear(h, proj.weight.t(), proj.bias, "onednn"))  # (..., 4d) -> (..., d)

    return {Conv1D: OneDNNConv1D, torch.nn.Linear: OneDNNLinear, GPT2MLP: OneDNNGPT2MLP}


@contextmanager
def linear_backend(model, backend: str):
    """Run ``model``'s ``Conv1D`` and ``nn.Linear`` layers on ``backend`` inside the block,
    and on oneDNN its GPT-2 MLPs with the GELU fused.

    The modules keep their parameters (tied weights stay tied, ``state_dict`` is unchanged);
    only their class is switched, and switched back on exit, exception or not. Gradients,
    when enabled, still go through torch's default path. Blocks on the same model nest
    when they ask for the same backend. The switch is visible to every user of the model,
    so do not share one model between threads inside such a block.

    Raises
    ------
    ValueError
        For oneDNN on a model that is not float32 on CPU, or a block asking for another
        backend than an enclosing one on the same model.
    """
    import torch

    active = getattr(model, "_gpt2guard_linear", None)
    if active is not None and active != backend:
        raise ValueError(f"the model already runs on the {active!r} linear backend in an enclosing block")
    if backend != "onednn" or active == backend:
        yield model
        return
    param = next(model.parameters(), None)
    if param is not None and (param.device.type != "cpu" or param.dtype != torch.float32):
        raise ValueError(f"the onednn backend runs float32 models on CPU, not {param.dtype} on {param.device}")
    swaps = _onednn_classes()
    changed = []
    try:
        model._gpt2guard_linear = backend
        for module in model.modules():
            fast = swaps.get(type(module))
            if fast is not None and (fast.__name__ != "OneDNNGPT2MLP" or _fusable_mlp(module)):
                changed.append((module, type(module)))
                module.__class__ = fast
        yield model
    finally:
        for module, cls in changed:
            module.__class__ = cls
        del model._gpt2guard_linear

"""GPT-2's linear layers on torch's default path or on oneDNN, whichever this CPU runs faster.

On CPU, torch runs a float32 ``addmm``/``F.linear`` through its BLAS (MKL on x86-64). Its
oneDNN backend has a float32 linear primitive (``torch.ops.mkldnn._linear_pointwise``, the
one torch's own compiler emits), float32 arithmetic too (results agree with MKL's to ~1e-6
relative, as two float32 summation orders do). Which is faster depends on the CPU and on the
number of rows: on a 2-core AMD EPYC (AVX-512) oneDNN ran every GPT-2 layer shape 2-2.3x
faster than MKL at 512-2048 rows and 2-4x at 8 rows; on a 2-core Intel Xeon (AVX-512 with
AMX) neither wins at every shape and MKL's matrix-vector path wins at one row (see
docs/generator.md). So ``"auto"`` is decided by measurement:
:func:`probe` times both backends on the model's own layer shapes at the row count of the
work, on this CPU and thread count, in a fraction of a second, and caches the result in
``linear-probe.json`` in gpt2guard's cache directory (JSON, keyed by :func:`cpu_fingerprint`,
torch's kernel libraries, the shapes, the rows and the threads).

Bits. A float32 product's bits depend on the kernel that computes it, and libraries choose
kernels by CPU instruction set, thread count and the number of rows M. What the generator
promises (:mod:`gpt2guard.generator.forward`) rests on one property of a backend: from some
row count on, a row's bits no longer depend on how many rows the product has, nor where the
row sits. That row count is measured too (:func:`invariant_rows`, part of the same probe),
for every layer shape of the model, at the thread count in use, instead of being assumed.
Measured: oneDNN from 2 rows on both CPUs above (its one-row path sums the 3072-wide input
differently); MKL from 4 rows on the AMD CPU, from 2 on the Intel one, where its products
with the 3072-wide input also change their bits with the thread count.

The MLP's tanh-approximated GELU (GPT-2's ``gelu_new``) runs fused into its first product
as a oneDNN post-op: transformers computes it as five elementwise passes over a (B, T, 4d)
tensor (the results differ by ~5e-7).

Backends, by name: ``"aten"`` (torch's default path, any device and dtype) and ``"onednn"``
(CPU, float32, torch built with oneDNN). :func:`pick_backend` resolves ``"auto"``;
:func:`linear_backend` runs a model's layers through a backend for a block of code and then
restores the model exactly. :func:`kernel_provenance` names what a result's bits depend on.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from functools import lru_cache

BACKENDS = ("aten", "onednn")


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


PROBE_FILE = "linear-probe.json"
# Row counts at which invariant_rows compares a row's bits (plus the work's own row count).
INVARIANCE_ROWS = (1, 2, 3, 4, 5, 6, 8, 16)
# Rows at which a probe times products when the work does not say (the scoring engine's
# products have more rows; 64 keeps a probe short).
PROBE_ROWS = 64


@lru_cache(maxsize=None)
def cpu_fingerprint() -> dict:
    """What this CPU's kernels depend on: vendor, model name, a digest of its instruction-set
    flags, the ISA torch dispatches to, and the versions of torch, MKL and oneDNN.

    Read from ``/proc/cpuinfo`` where it exists (Linux), else from :mod:`platform`.
    """
    import hashlib
    import platform

    import torch

    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("vendor_id", "model name", "flags", "cpu family", "model") and key not in info:
                    info[key] = value.strip()
                if not line.strip() and info:
                    break                                        # the first processor is enough
    except OSError:
        pass
    flags = " ".join(sorted(info.get("flags", "").split()))
    config = torch.__config__.show()
    libs = [line.strip(" -") for line in config.splitlines() if "Math Kernel" in line or "MKL-DNN" in line]
    try:
        isa = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        isa = "unknown"
    return {"vendor": info.get("vendor_id") or platform.processor() or platform.machine(),
            "model": info.get("model name") or platform.processor() or "unknown",
            "family_model": f"{info.get('cpu family', '?')}/{info.get('model', '?')}",
            "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()[:16], "isa": isa,
            "torch": torch.__version__, "libraries": libs}


def kernel_id() -> str:
    """A short digest of :func:`cpu_fingerprint`. With the same thread count and backend, equal
    ids mean torch's libraries see the same CPU and are the same versions, so they choose the
    same kernels (as far as what they dispatch on is visible from here)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(cpu_fingerprint(), sort_keys=True).encode()).hexdigest()[:16]


def kernel_provenance(backend: str) -> dict:
    """What a float32 CPU result's bits depend on besides its inputs: the linear backend, the
    torch thread count, torch's version and :func:`kernel_id` with the CPU's vendor, model and
    the ISA torch dispatches to. Bits are promised only between runs that agree on all of these."""
    import torch

    fp = cpu_fingerprint()
    return {"linear": backend, "torch_threads": torch.get_num_threads(), "torch": fp["torch"],
            "kernel_id": kernel_id(), "cpu": f"{fp['vendor']} {fp['model']} ({fp['isa']})"}


def layer_shapes(*models) -> list[tuple[int, int, int, str]]:
    """``(d_in, d_out, count, kind)`` of every ``Conv1D`` (kind ``"conv"``, weight stored
    (in, out)) and ``nn.Linear`` (kind ``"linear"``, weight (out, in)) layer of ``models``,
    one entry per distinct shape and kind, in first-seen order."""
    import torch
    from transformers.pytorch_utils import Conv1D

    counts: dict[tuple[int, int, str], int] = {}
    for model in models:
        for m in model.modules():
            if isinstance(m, Conv1D):
                shape = (*m.weight.shape, "conv")
            elif isinstance(m, torch.nn.Linear):
                shape = (m.in_features, m.out_features, "linear")
            else:
                continue
            counts[shape] = counts.get(shape, 0) + 1
    return [(i, o, n, kind) for (i, o, kind), n in counts.items()]


def _weights(shapes, backend: str, n_rows: int):
    """Random inputs and weights in the layouts the loop multiplies by on ``backend``: a
    Conv1D's (in, out) weight seen transposed; an ``nn.Linear`` (the output layer) as stored
    on oneDNN and as the generator's contiguous transposed copy on the default path."""
    import torch

    gen = torch.Generator().manual_seed(0)
    out = []
    for d_in, d_out, count, kind in shapes:
        if kind == "linear" and backend == "onednn":
            w = torch.rand(d_out, d_in, generator=gen) - 0.5
        else:
            w = (torch.rand(d_in, d_out, generator=gen) - 0.5).t()
        b = torch.rand(d_out, generator=gen) if kind == "conv" else None
        out.append((torch.randn(n_rows, d_in, generator=gen), w, b, count))
    return out


def _measure(shapes, rows: int, backends, rounds: int = 3) -> dict:
    """Per backend: the time in ms of one product of each shape at ``rows`` rows, weighted
    by how many layers have it (per shape the best of ``rounds`` interleaved rounds, so
    that both backends see the same load)."""
    import time

    import torch

    # one thread: its own CPU time, which other processes on the machine disturb least
    clock = time.thread_time if torch.get_num_threads() == 1 else time.perf_counter
    data = {be: _weights(shapes, be, rows) for be in backends}
    best = {be: [float("inf")] * len(shapes) for be in backends}
    with torch.inference_mode():
        for r in range(rounds + 1):                              # round 0 warms up
            for i in range(len(shapes)):
                for be in backends:
                    x, w, b, _ = data[be][i]
                    t0 = clock()
                    linear(x, w, b, be)
                    if r:
                        best[be][i] = min(best[be][i], clock() - t0)
    return {be: round(1e3 * sum(t * s[2] for t, s in zip(best[be], shapes)), 4) for be in backends}


def _invariant_rows(tensors, backend: str, counts) -> int:
    """Fewest rows m such that, for every shape, rows 0 and 1 of the input come out with the
    same bits in every product of M >= m rows (M over ``counts``), and row 1 also when moved
    to position 0; 0 when no such m exists among the counts tried."""
    import torch

    first_bad = 0                                                # largest M whose bits differ
    for x, w, b, _ in tensors:
        top = x[:counts[-1]]
        ref = linear(top, w, b, backend)[:2]                     # (2, d_out) in the largest product
        if not torch.equal(linear(top[[1, 0] + list(range(2, len(top)))], w, b, backend)[0], ref[1]):
            return 0
        for m in counts[:-1]:
            got = linear(top[:m], w, b, backend)
            if not (torch.equal(got[0], ref[0]) and (m < 2 or torch.equal(got[1], ref[1]))):
                first_bad = max(first_bad, m)
    later = [m for m in counts if m > first_bad]
    return later[0] if later else 0


def _probe_key(what: str, shapes, rows: int) -> str:
    import torch

    return (f"{what}|{kernel_id()}|threads={torch.get_num_threads()}|rows={rows}|"
            + ",".join(f"{i}x{o}x{n}{k[0]}" for i, o, n, k in shapes))


def _busy() -> float:
    """The 1-minute load average per CPU this process may use (0 where unknown)."""
    try:
        return os.getloadavg()[0] / len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return 0.0


def _cached(key: str, compute, remeasure_if_busy: bool = False):
    """The JSON-ready value stored under ``key`` in the probe file, else ``compute()`` stored.
    With ``remeasure_if_busy``, a value measured on a busy machine (load above 0.75 per
    CPU) is measured again once the machine is quieter than it was."""
    import json

    from gpt2guard.paths import cache_dir, write_json

    path = cache_dir() / PROBE_FILE
    try:
        cached = json.loads(path.read_text())
        if not isinstance(cached, dict):
            cached = {}
    except (OSError, ValueError):
        cached = {}
    hit = cached.get(key)
    busy = _busy()
    if isinstance(hit, dict) and "value" in hit and not (
            remeasure_if_busy and hit.get("busy", 0) > 0.75 and busy < hit.get("busy", 0) - 0.25):
        return hit["value"]
    value = compute()
    cached[key] = {"value": value, "busy": round(busy, 2), "cpu": cpu_fingerprint()["model"],
                   "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        write_json(path, cached)
    except OSError:
        pass                                                     # a read-only cache only costs a re-probe
    return value


def probe(shapes, rows: int = PROBE_ROWS) -> dict:
    """Time both backends on layer shapes at ``rows`` rows per product, on this CPU at the
    current torch thread count; cached per CPU, torch, shapes, rows and threads (measured
    again when the cached figures came from a busier machine than now).

    Parameters
    ----------
    shapes : list of (int, int, int, str)
        As :func:`layer_shapes` gives.
    rows : int
        Rows per product of the work to choose for (a generation step's batch).

    Returns
    -------
    dict
        ``{"ms": {"aten": ..., "onednn": ...}, "fastest": name}``; ``onednn`` only where it
        can run. Within 3% of each other counts as a tie, which the default path wins.
    """
    rows = max(1, int(rows))
    backends = BACKENDS if onednn_available() else ("aten",)

    def measure():
        ms = _measure(shapes, rows, backends)
        return {"ms": ms, "fastest": min(backends, key=lambda be: ms[be] * (1.0 if be == "aten" else 1.03))}

    return _cached(_probe_key("speed", shapes, rows), measure, remeasure_if_busy=True)


def pick_backend(requested: str = "auto", device="cpu", dtype=None, shapes=None,
                 rows: int = PROBE_ROWS) -> str:
    """The backend to run linear layers on: ``requested`` if it applies; for ``"auto"`` on a
    CPU float32 model with oneDNN available, the faster one on this CPU for ``shapes`` at
    ``rows`` rows (:func:`probe`; oneDNN when no shapes are given), else ``"aten"``.

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
        if not fits:
            return "aten"
        return probe(shapes, rows)["fastest"] if shapes else "onednn"
    return requested


def backend_for(requested: str, *models, rows: int = PROBE_ROWS) -> str:
    """The one backend to run every model in ``models`` (``nn.Module``) on: ``requested``
    resolved by :func:`pick_backend` for each model's device and dtype; ``"auto"`` measures
    which backend runs the models' layer shapes faster at ``rows`` rows on this CPU (cached),
    and gives oneDNN only if every model can run on it.

    Raises
    ------
    GuardError
        As :func:`pick_backend` raises ValueError, as one line for the user.
    """
    from gpt2guard.errors import GuardError

    try:
        params = [next(m.parameters()) for m in models]
        fit = {pick_backend(requested, p.device, p.dtype) for p in params}
        if requested == "auto" and fit == {"onednn"}:
            return pick_backend("auto", "cpu", None, layer_shapes(*models), rows)
    except ValueError as exc:
        raise GuardError(str(exc)) from None
    return fit.pop() if len(fit) == 1 else "aten"


def invariant_rows(backend: str, *models, rows: int = 8) -> int:
    """Fewest rows per product from which a row's bits depend neither on the number of rows
    (up to ``max(16, rows)``) nor on the row's place, for every layer of ``models`` on
    ``backend`` at this CPU and thread count: measured once, then cached. 0 when no row
    count tried gives that."""
    import torch

    shapes = layer_shapes(*models)
    counts = sorted(set(INVARIANCE_ROWS) | {max(1, int(rows))})

    def measure():
        with torch.inference_mode():
            return _invariant_rows(_weights(shapes, backend, counts[-1]), backend, counts)

    return int(_cached(_probe_key(f"rows-{backend}", shapes, counts[-1]), measure))


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

"""The linear backends: oneDNN gives torch's default path's numbers; "auto" is measured on this
CPU and cached as JSON; the measured invariant rows hold; a model is restored exactly after use."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gpt2guard.family.linear import (BACKENDS, invariant_rows, layer_shapes, linear,  # noqa: E402
                                     linear_backend, onednn_available, pick_backend, probe)

needs_onednn = pytest.mark.skipif(not onednn_available(), reason="this torch has no oneDNN float32 linear")


def small_gpt2(act="gelu_new"):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=300, n_positions=64, n_embd=48, n_layer=2, n_head=4, activation_function=act)
    return GPT2LMHeadModel(cfg).eval()


def test_pick_backend_resolves_and_refuses():
    assert pick_backend("aten") == "aten"
    assert pick_backend("auto", "cpu", torch.bfloat16) == "aten"  # oneDNN here is float32 only
    assert pick_backend("auto", "cuda:0", torch.float32) == "aten"
    assert pick_backend("auto", "cpu", torch.float32) == ("onednn" if onednn_available() else "aten")
    with pytest.raises(ValueError, match="unknown linear backend 'mkl'"):
        pick_backend("mkl")
    with pytest.raises(ValueError, match="float32 models on CPU"):
        pick_backend("onednn", "cpu", torch.float16)


@needs_onednn
@pytest.mark.parametrize("shape", [(48, 144), (768, 2304), (3072, 768), (768, 50257)])
def test_onednn_linear_matches_the_default_path(shape):
    d_in, d_out = shape
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 7, d_in, generator=gen)
    w = torch.randn(d_out, d_in, generator=gen) * d_in ** -0.5
    b = torch.randn(d_out, generator=gen)
    with torch.inference_mode():
        got = linear(x, w, b, "onednn")
        want = torch.nn.functional.linear(x, w, b)
    assert got.dtype == torch.float32 and got.shape == (2, 7, d_out)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    # a transposed view (GPT-2's Conv1D stores weights (in, out)) gives the same numbers
    with torch.inference_mode():
        torch.testing.assert_close(linear(x, w.t().contiguous().t(), b, "onednn"), got, rtol=0, atol=0)
        # the fused tanh GELU equals the unfused one
        fused = linear(x, w, b, "onednn", gelu=True)
        torch.testing.assert_close(fused, torch.nn.functional.gelu(want, approximate="tanh"), rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(linear(x, w, b, "aten", gelu=True), fused, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_measured_invariant_rows_hold_for_every_layer(backend):
    """What the generator's batch-invariance relies on, checked on this machine with other
    inputs than the measurement used: from invariant_rows on, a row's bits are the same in
    every product of up to 16 rows, wherever the row sits."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if backend == "onednn" and not onednn_available():
        pytest.skip("this torch has no oneDNN float32 linear")
    torch.manual_seed(5)
    model = GPT2LMHeadModel(GPT2Config(n_embd=768, n_layer=1, n_head=12)).eval()  # GPT-2's own shapes
    m0 = invariant_rows(backend, model)
    assert 1 <= m0 <= 16
    gen = torch.Generator().manual_seed(6)
    block = model.transformer.h[0]
    with torch.inference_mode():
        layers = [(m.weight.t(), m.bias) for m in (block.attn.c_attn, block.attn.c_proj, block.mlp.c_fc,
                                                  block.mlp.c_proj)]
        head = model.lm_head.weight
        layers.append((head if backend == "onednn" else head.t().contiguous().t(), None))  # as the loop runs it
        for w, b in layers:
            X = torch.randn(16, w.shape[1], generator=gen)
            ref = linear(X, w, b, backend)
            for m in range(m0, 16):
                got = linear(X[:m], w, b, backend)
                assert torch.equal(got[0], ref[0]) and torch.equal(got[m - 1], ref[m - 1]), (tuple(w.shape), m)
            moved = X.clone()
            moved[[0, 5]] = moved[[5, 0]]
            assert torch.equal(linear(moved, w, b, backend)[5], ref[0])


def test_auto_is_measured_here_and_cached_as_json(tmp_path, monkeypatch):
    import json

    import gpt2guard.family.linear as lin

    monkeypatch.setenv("GPT2GUARD_CACHE", str(tmp_path))
    model = small_gpt2()
    shapes = layer_shapes(model)
    assert shapes == [(48, 144, 2, "conv"), (48, 48, 2, "conv"), (48, 192, 2, "conv"), (192, 48, 2, "conv"),
                      (48, 300, 1, "linear")]
    first = probe(shapes, 4)
    assert first["fastest"] in BACKENDS and set(first["ms"]) == set(BACKENDS if onednn_available() else ["aten"])
    assert pick_backend("auto", "cpu", torch.float32, shapes, 4) == first["fastest"]
    saved = json.loads((tmp_path / lin.PROBE_FILE).read_text())      # JSON, keyed by CPU, threads, rows, shapes
    (key, entry), = saved.items()
    assert lin.kernel_id() in key and f"threads={torch.get_num_threads()}" in key and "rows=4" in key
    assert entry["value"] == first and entry["cpu"] == lin.cpu_fingerprint()["model"]
    # the next call reads the cache; another row count is measured anew
    monkeypatch.setattr(lin, "_measure", lambda *a, **k: pytest.fail("measured again"))
    assert probe(shapes, 4) == first
    with pytest.raises(BaseException, match="measured again"):
        probe(shapes, 5)
    # a damaged cache file is measured over, never trusted
    monkeypatch.undo()
    monkeypatch.setenv("GPT2GUARD_CACHE", str(tmp_path))
    (tmp_path / lin.PROBE_FILE).write_text("[not json")
    assert probe(shapes, 4)["fastest"] in BACKENDS
    assert isinstance(json.loads((tmp_path / lin.PROBE_FILE).read_text()), dict)


def test_kernel_provenance_names_what_the_bits_depend_on():
    from gpt2guard.family.linear import cpu_fingerprint, kernel_id, kernel_provenance

    prov = kernel_provenance("aten")
    assert prov["linear"] == "aten" and prov["torch"] == torch.__version__
    assert prov["torch_threads"] == torch.get_num_threads() and prov["kernel_id"] == kernel_id()
    fp = cpu_fingerprint()
    assert fp["model"] in prov["cpu"] and len(fp["flags_sha256"]) == 16 and len(kernel_id()) == 16


@needs_onednn
@pytest.mark.parametrize("act", ["gelu_new", "relu"])
def test_linear_backend_runs_the_model_and_restores_it(act):
    model = small_gpt2(act)
    ids = torch.randint(0, 300, (3, 20), generator=torch.Generator().manual_seed(3))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    classes = [type(m) for m in model.modules()]
    with torch.inference_mode():
        want = model(ids).logits
        with linear_backend(model, "onednn"):
            mlp = model.transformer.h[0].mlp
            assert type(model.transformer.h[0].attn.c_attn).__name__ == "OneDNNConv1D"
            assert type(model.lm_head).__name__ == "OneDNNLinear"
            # the GELU fuses into the MLP's first product only for GPT-2's tanh GELU
            assert (type(mlp).__name__ == "OneDNNGPT2MLP") == (act == "gelu_new")
            got = model(ids).logits
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert [type(m) for m in model.modules()] == classes
    assert model.lm_head.weight is model.transformer.wte.weight  # still tied
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@needs_onednn
def test_linear_backend_keeps_gradients_on_the_default_path():
    model = small_gpt2()
    ids = torch.randint(0, 300, (2, 10), generator=torch.Generator().manual_seed(4))
    with linear_backend(model, "onednn"):
        loss = model(ids, labels=ids).loss
        loss.backward()
    grad = model.transformer.h[0].mlp.c_fc.weight.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


def test_backend_for_picks_one_backend_for_every_model():
    from gpt2guard.errors import GuardError
    from gpt2guard.family.linear import backend_for

    f32, bf16 = small_gpt2(), small_gpt2().to(torch.bfloat16)
    assert backend_for("auto", f32, rows=3) == pick_backend("auto", "cpu", torch.float32, layer_shapes(f32), 3)
    assert backend_for("auto", f32, bf16) == "aten"  # oneDNN only if all of them can run on it
    assert backend_for("aten", f32, bf16) == "aten"
    with pytest.raises(GuardError, match="unknown linear backend"):
        backend_for("blas", f32)


def test_aten_backend_changes_nothing():
    model = small_gpt2()
    classes = [type(m) for m in model.modules()]
    with linear_backend(model, "aten"):
        assert [type(m) for m in model.modules()] == classes


@needs_onednn
def test_linear_backend_restores_the_model_after_an_error_and_refuses_mixed_nesting():
    model = small_gpt2()
    classes = [type(m) for m in model.modules()]
    with pytest.raises(RuntimeError, match="boom"):
        with linear_backend(model, "onednn"):
            with linear_backend(model, "onednn"):  # the same backend nests
                pass
            assert type(model.lm_head).__name__ == "OneDNNLinear"
            with pytest.raises(ValueError, match="enclosing block"):
                with linear_backend(model, "aten"):
                    pass
            raise RuntimeError("boom")
    assert [type(m) for m in model.modules()] == classes
    with linear_backend(model, "aten"):  # usable again on any backend
        pass


@needs_onednn
def test_onednn_refuses_models_it_cannot_run():
    model = small_gpt2().to(torch.bfloat16)
    with pytest.raises(ValueError, match="float32 models on CPU"):
        with linear_backend(model, "onednn"):
            pass
    assert type(model.lm_head) is torch.nn.Linear

"""The batched sampling loop: reproducibility, stopping, lengths, context window, log-probs."""

import math
from pathlib import Path

import pytest
import torch

from gpt2guard.errors import GuardError
from gpt2guard.family import LoadedModel
from gpt2guard.generator import GenerationResult, generate_tokens, parse_sampling, plan_batches

CONFIGS = parse_sampling("pure,top-k=40,nucleus=0.8-1.0,nucleus-openai=0.9:temperature=0.8")


@pytest.fixture(scope="module")
def micro(micro_family):
    from gpt2guard.family import load_model

    return load_model("micro", "small", device="cpu")


@pytest.fixture(scope="module")
def prompts(micro):
    enc = micro.tokenizer.encode
    texts = ["def main(argv):", "", "The parser reads", "import os\nimport sys\n", "x", "class Record:",
             "Returns\n-------\n", "# comment"]
    return [enc(t) for t in texts]


def eos_model(eos_logit: float, vocab: int = 16):
    """A tiny GPT-2 whose next-token distribution ignores the context: token 0
    (``<|endoftext|>`` of the micro tokenizer) has logit ``eos_logit``, the others 0."""
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=8, n_layer=1, n_head=2, tie_word_embeddings=False,
                     bos_token_id=0, eos_token_id=0)
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():
        model.transformer.ln_f.weight.zero_()
        model.transformer.ln_f.bias.copy_(torch.ones(8))         # every hidden state = ones
        model.lm_head.weight.zero_()
        model.lm_head.weight[0] = eos_logit / 8                   # eos logit = eos_logit
    return model


def wrap(model, tokenizer) -> LoadedModel:
    return LoadedModel(model, tokenizer, "test", "tiny", Path("."), "cpu", "", "")


# --- reproducibility ------------------------------------------------------------------------

@pytest.mark.parametrize("cfg,linear", [(c, "auto") for c in CONFIGS] + [(CONFIGS[1], "aten")],
                         ids=lambda v: v if isinstance(v, str) else (v.name or "pure"))
def test_a_record_in_a_batch_of_8_equals_the_record_alone(micro, prompts, cfg, linear):
    """On the fastest linear backend here and on torch's default path."""
    limits = [40, 25, 40, 33, 40, 12, 40, 40]      # rows leave the batch at different steps
    seeds = [11, 12, 13, 14, 15, 16, 17, 18]
    kw = dict(stop_at_eos=True, return_logprobs=True, linear=linear)
    batched = generate_tokens(micro, prompts, limits, cfg, seeds, batch_size=8, **kw)
    for i in range(8):
        alone = generate_tokens(micro, [prompts[i]], limits[i], cfg, [seeds[i]], batch_size=1, **kw)[0]
        assert alone.token_ids == batched[i].token_ids, f"record {i}"
        assert alone.stop_reason == batched[i].stop_reason and alone.top_p == batched[i].top_p
        # not only the same tokens: the same logits, bit for bit
        assert alone.logprobs == batched[i].logprobs, f"record {i}"
    # and in batches of 3 (other neighbours, other padding)
    threes = generate_tokens(micro, prompts, limits, cfg, seeds, batch_size=3, **kw)
    assert [r.token_ids for r in threes] == [r.token_ids for r in batched]
    assert [r.logprobs for r in threes] == [r.logprobs for r in batched]


def test_results_record_their_linear_backend_and_kernels(micro, prompts):
    from gpt2guard.family.linear import backend_for, kernel_id
    from gpt2guard.generator.forward import min_rows_for

    auto = generate_tokens(micro, prompts[:2], 8, CONFIGS[0], [1, 2])
    assert {r.linear for r in auto} == {backend_for("auto", micro.model, rows=2)}
    prov = auto[0].provenance()
    assert prov["linear"] == auto[0].linear
    # what the bits depend on is recorded, and the rows per pass used
    assert prov["kernel_id"] == kernel_id() and prov["torch_threads"] == torch.get_num_threads()
    assert prov["torch"] == torch.__version__ and prov["cpu"]
    assert prov["min_rows"] == min_rows_for(auto[0].linear, micro.model, 2)
    assert generate_tokens(micro, prompts[:1], 4, CONFIGS[0], [1], min_rows=1)[0].provenance()["min_rows"] == 1
    aten = generate_tokens(micro, prompts[:2], 8, CONFIGS[0], [1, 2], linear="aten")
    assert {r.provenance()["linear"] for r in aten} == {"aten"}
    with pytest.raises(GuardError, match="unknown linear backend"):
        generate_tokens(micro, prompts[:1], 8, CONFIGS[0], [1], linear="blas")


def test_same_seed_same_text_other_seed_other_text(micro, prompts):
    cfg = CONFIGS[0]
    a = generate_tokens(micro, prompts[:4], 30, cfg, [1, 2, 3, 4])
    b = generate_tokens(micro, prompts[:4], 30, cfg, [1, 2, 3, 4])
    c = generate_tokens(micro, prompts[:4], 30, cfg, [5, 6, 7, 8])
    assert [r.text for r in a] == [r.text for r in b]
    assert all(x.token_ids != y.token_ids for x, y in zip(a, c))


def test_mixed_configs_keep_input_order_and_provenance(micro, prompts):
    cfgs = [CONFIGS[i % 4] for i in range(8)]
    res = generate_tokens(micro, prompts, 10, cfgs, list(range(8)), batch_size=2)
    assert [r.sampling for r in res] == cfgs
    assert [r.seed for r in res] == list(range(8))
    for r, p in zip(res, prompts):
        assert r.prompt_ids == (p or [micro.tokenizer.eos_token_id])
        prov = r.provenance()
        assert prov["sampling"] == r.sampling.to_dict() and prov["max_new_tokens"] == 10
        if r.sampling.p_range:
            assert 0.8 <= r.top_p < 1.0 and prov["top_p"] == r.top_p == r.sampling.draw_top_p(r.seed)
    # each record matches a run of its own config alone
    for i in (2, 5):
        alone = generate_tokens(micro, [prompts[i]], 10, cfgs[i], [i])[0]
        assert alone.token_ids == res[i].token_ids


def test_forward_matches_the_model_on_prompts_of_different_lengths(micro, prompts):
    """Our cache, right padding and row-wise attention compute the model's own logits."""
    from gpt2guard.generator.forward import forward_hidden
    from gpt2guard.generator.kvcache import RowCache

    model = micro.model
    rows = [p or [micro.tokenizer.eos_token_id] for p in prompts[:6]]
    lengths = [len(p) for p in rows]
    T0, B = max(lengths), len(rows)
    ids = torch.tensor([p + [0] * (T0 - len(p)) for p in rows])
    attn = model.transformer.h[0].attn
    cache = RowCache(len(model.transformer.h), B, attn.num_heads, attn.head_dim, T0 + 1, torch.float32, "cpu")
    with torch.inference_mode():
        hidden = forward_hidden(model, ids, torch.arange(T0).expand(B, T0), cache, None, lengths)
        ours = model.lm_head(hidden)                                           # (B, T0, V)
        nxt = torch.tensor([[7]] * B)
        cols = torch.tensor(lengths)
        step = model.lm_head(forward_hidden(model, nxt, cols[:, None], cache, cols, (cols + 1).tolist()))
        for b, p in enumerate(rows):
            ref = model(torch.tensor([p + [7]])).logits[0]                     # (L + 1, V)
            assert torch.allclose(ours[b, :len(p)], ref[:-1], atol=1e-4)
            assert torch.allclose(step[b, 0], ref[-1], atol=1e-4)


@pytest.mark.parametrize("backend", ["aten", "onednn"])
def test_output_layer_agrees_with_lm_head_and_its_rows_keep_their_bits(backend):
    """The loop's output layer gives lm_head's logits to float32 rounding (hence the same
    greedy and sampled tokens), and from the measured minimum rows on, a row's logits have
    the same bits in any product: what batch-independent records need, on this machine."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2guard.family.linear import onednn_available
    from gpt2guard.generator.draw import draw_tokens
    from gpt2guard.generator.forward import OutputLayer, min_rows_for

    if backend == "onednn" and not onednn_available():
        pytest.skip("this torch has no oneDNN float32 linear")
    torch.manual_seed(0)
    for vocab, width in [(512, 32), (4096, 96), (50257, 768)]:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=width, n_layer=1, n_head=4)).eval()
        head, m0 = OutputLayer(model, backend), min_rows_for(backend, model)
        assert 1 <= m0 <= 16
        h = torch.randn(16, width)
        with torch.inference_mode():
            ours, ref = head(h), model.lm_head(h)
            torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)
            assert torch.equal(ours.argmax(-1), ref.argmax(-1))
            u = torch.linspace(0.05, 0.95, 16, dtype=torch.float64)
            cfg = CONFIGS[1]
            assert torch.equal(draw_tokens(ours, cfg, u), draw_tokens(ref, cfg, u)), (vocab, width)
            for rows in range(m0, 17):
                got = head(h[:rows])
                assert torch.equal(got[0], ours[0]) and torch.equal(got[-1], ours[rows - 1]), (vocab, rows)


@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: c.name or "pure")
def test_nan_logits_are_reported(micro_tokenizer, cfg):
    model = eos_model(eos_logit=1.0)
    with torch.no_grad():
        model.lm_head.weight[3] = float("nan")
    with pytest.raises(GuardError, match="NaN or infinite logits"):
        generate_tokens(wrap(model, micro_tokenizer), [[1]], 4, cfg, [0])


def test_plan_batches_groups_by_config_and_length():
    prompts = [[1] * n for n in (5, 1, 3, 9, 2, 2, 7)]
    cfgs = [CONFIGS[0], CONFIGS[1], CONFIGS[0], CONFIGS[0], CONFIGS[1], CONFIGS[0], CONFIGS[0]]
    batches = plan_batches(prompts, cfgs, 2)
    assert batches == [[5, 2], [0, 6], [3], [1, 4]]
    assert sorted(i for b in batches for i in b) == list(range(7))


# --- stopping and lengths -----------------------------------------------------------------

def test_stop_reasons_eos_and_length(micro_tokenizer):
    loaded = wrap(eos_model(eos_logit=math.log(5)), micro_tokenizer)   # p(eos) = 5 / (5 + 15) = 0.25
    cfg = CONFIGS[0]
    seeds = list(range(32))
    stopped = generate_tokens(loaded, [[]] * 32, 6, cfg, seeds)
    reasons = {r.stop_reason for r in stopped}
    assert reasons == {"eos", "length"}
    for r in stopped:
        assert 0 not in r.token_ids                              # the stopping eos is not part of the text
        if r.stop_reason == "eos":
            assert r.ended and r.length < 6
        else:
            assert not r.ended and r.length == 6
    # continuing past <|endoftext|>: every row runs to its length, and agrees up to its first eos
    going = generate_tokens(loaded, [[]] * 32, 6, cfg, seeds, stop_at_eos=False)
    for s, g in zip(stopped, going):
        assert g.stop_reason == "length" and g.length == 6
        assert g.token_ids[:s.length] == s.token_ids
        assert g.ended == (0 in g.token_ids)
        if s.stop_reason == "eos":
            assert g.token_ids[s.length] == 0 and "<|endoftext|>" in g.text


def test_eos_on_the_first_token_gives_an_empty_ended_record(micro_tokenizer):
    loaded = wrap(eos_model(eos_logit=60.0), micro_tokenizer)
    (r,) = generate_tokens(loaded, [[5, 6]], 10, CONFIGS[1], [0], return_logprobs=True)
    assert (r.token_ids, r.text, r.stop_reason, r.ended, r.logprobs) == ([], "", "eos", True, [])


@pytest.mark.parametrize("min_rows", [None, 1])
def test_per_row_lengths_are_honoured(micro, prompts, min_rows):
    limits = [1, 5, 17, 2, 30, 8, 3, 11]
    res = generate_tokens(micro, prompts, limits, CONFIGS[1], list(range(8)), stop_at_eos=False,
                          min_rows=min_rows, batch_size=3)
    assert [r.length for r in res] == limits
    assert all(r.stop_reason == "length" for r in res)


def test_context_window_is_checked_before_generating(micro):
    window = micro.n_positions
    prompt = [5] * (window - 20)
    ok = generate_tokens(micro, [prompt], 20, CONFIGS[1], [0], stop_at_eos=False)
    assert ok[0].length == 20
    with pytest.raises(GuardError, match="exceeds the context window of 128 tokens"):
        generate_tokens(micro, [[1], prompt], [5, 21], CONFIGS[1], [0, 1])
    with pytest.raises(GuardError, match="context window"):
        generate_tokens(micro, [[]], window, CONFIGS[0], [0])    # [eos] + window tokens


@pytest.mark.parametrize("args, words", [
    (dict(max_new_tokens=0), "max_new_tokens must be an integer >= 1"),
    (dict(max_new_tokens=[3, 3]), "2 lengths given for 3 prompts"),
    (dict(seeds=[1, 2]), "one seed per prompt"),
    (dict(seeds=[1, 2, -5]), "seed must be in"),
    (dict(prompts=[[1], [2], [99999]]), "outside the vocabulary"),
    (dict(prompts=[[1], [2.5], [3]]), "must be integers"),
    (dict(max_new_tokens=2.0), "max_new_tokens must be an integer"),
    (dict(configs="top-k=40"), "must be a SamplingConfig"),
    (dict(batch_size=0), "batch size"),
])
def test_bad_input_raises_guard_error(micro, args, words):
    kw = dict(prompts=[[1], [2], [3]], max_new_tokens=3, configs=CONFIGS[0], seeds=[1, 2, 3])
    kw.update(args)
    with pytest.raises(GuardError, match=words) as info:
        generate_tokens(micro, **kw)
    assert "\n" not in str(info.value)


# --- log-probabilities ----------------------------------------------------------------------

def test_logprobs_equal_a_full_forward_over_the_sequence(micro, prompts):
    # temperature and truncation change the draw, never the score
    cfg = parse_sampling("top-k=5:temperature=0.5")[0]
    res = generate_tokens(micro, prompts[:5], 25, cfg, list(range(5)), return_logprobs=True, stop_at_eos=False)
    for r in res:
        seq = torch.tensor([r.prompt_ids + r.token_ids])
        with torch.inference_mode():
            logits = micro.model(seq).logits[0].float()                        # (T, V)
        scores = torch.log_softmax(logits, -1)[len(r.prompt_ids) - 1:-1]        # predicts each new token
        want = scores.gather(-1, torch.tensor(r.token_ids)[:, None]).squeeze(-1)
        assert len(r.logprobs) == r.length
        assert torch.allclose(torch.tensor(r.logprobs), want, atol=1e-4)
    assert generate_tokens(micro, prompts[:1], 5, cfg, [0])[0].logprobs is None


def test_result_text_is_the_decoded_tokens(micro, prompts):
    (r,) = generate_tokens(micro, prompts[:1], 20, CONFIGS[0], [3])
    assert isinstance(r, GenerationResult)
    assert r.text == micro.tokenizer.decode(r.token_ids, skip_special_tokens=False,
                                            clean_up_tokenization_spaces=False)
    assert r.length == len(r.token_ids)


def test_regeneration_names_other_kernels_when_the_text_differs(micro, prompts):
    """Bits are promised on the same kernels only: a record from another CPU whose text does
    not regenerate gets a warning saying so; on the same kernels a mismatch gets none."""
    import warnings

    from gpt2guard.datasets.records import Record
    from gpt2guard.generator.run import regenerate

    made = generate_tokens(micro, [[]], 20, CONFIGS[0], [9])[0]
    prov = {"family": "micro", "size": "small", **made.provenance(), "stop_at_eos": True,
            "model_hash": micro.model_hash}
    same = Record(id=0, text=made.text, length=made.length, ended=made.ended, label="machine", provenance=prov)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert regenerate(same, micro) == made.text                      # same kernels: the same text
        assert regenerate(Record.from_dict({**same.to_dict(), "text": "forged"}), micro) == made.text
    moved = Record.from_dict({**same.to_dict(), "text": "made elsewhere",
                              "provenance": {**prov, "kernel_id": "0" * 16, "cpu": "Other CPU (AVX2)"}})
    with pytest.warns(UserWarning, match="made on other kernels .*Other CPU .*not proof of tampering"):
        assert regenerate(moved, micro) == made.text

"""Each sampling rule against its definition, on hand-made and random distributions."""

import math

import numpy as np
import pytest
import torch

from gpt2guard.errors import GuardError
from gpt2guard.generator import (SamplingConfig, filter_logits, nucleus_mask, sample_inverse_cdf, top_k_mask,
                                 uniforms)
from gpt2guard.generator.draw import draw_tokens


def logits_of(probs):
    """Logits (1, V) whose softmax is ``probs``."""
    return torch.log(torch.tensor([probs], dtype=torch.float32))


def kept(mask):
    return mask[0].nonzero().flatten().tolist()


# --- top-k -----------------------------------------------------------------------------

def test_top_k_keeps_exactly_the_k_largest():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 300, generator=g)
    for k in (1, 7, 40, 299, 300, 1000):
        mask = top_k_mask(x, k)
        assert (mask.sum(-1) == min(k, 300)).all()
        # every kept logit is >= every dropped one
        lo_kept = x.masked_fill(~mask, math.inf).min(-1).values
        hi_dropped = x.masked_fill(mask, -math.inf).max(-1).values
        assert (lo_kept >= hi_dropped).all()


def test_top_k_breaks_ties_towards_lower_ids():
    x = torch.tensor([[1.0, 3.0, 3.0, 3.0, 0.0, 3.0]])
    assert kept(top_k_mask(x, 1)) == [1]
    assert kept(top_k_mask(x, 2)) == [1, 2]
    assert kept(top_k_mask(x, 3)) == [1, 2, 3]
    assert kept(top_k_mask(x, 5)) == [0, 1, 2, 3, 5]
    # same answer however the tie is laid out in memory
    assert kept(top_k_mask(x.flip(-1), 2)) == [0, 2]


def test_top_k_matches_transformers_warper_without_ties():
    from transformers.generation.logits_process import TopKLogitsWarper

    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1000, generator=g)
    ours = top_k_mask(x, 40)
    theirs = TopKLogitsWarper(40)(None, x.clone()) > -math.inf
    assert torch.equal(ours, theirs)


# --- nucleus ----------------------------------------------------------------------------

PROBS = [0.5, 0.3, 0.15, 0.05]


@pytest.mark.parametrize("p, transformers_keeps, openai_keeps", [
    (0.3, [0], [0]),          # below the first token: both keep the most likely one
    (0.7, [0, 1], [0]),       # 0.3 crosses 0.7: transformers keeps it, OpenAI drops it
    (0.9, [0, 1, 2], [0, 1]),  # 0.15 crosses 0.9 (0.8 -> 0.95)
    (0.96, [0, 1, 2, 3], [0, 1, 2]),
    (1.0, [0, 1, 2, 3], [0, 1, 2, 3]),
])
def test_nucleus_rules_on_a_hand_made_distribution(p, transformers_keeps, openai_keeps):
    x = logits_of(PROBS)
    assert kept(nucleus_mask(x, p)) == transformers_keeps
    assert kept(nucleus_mask(x, p, openai=True)) == openai_keeps


def test_nucleus_rules_at_the_edge_where_a_prefix_sums_to_p():
    x = logits_of(PROBS)
    # p exactly the (float) mass of the first two tokens, as the rules compute it
    at = float(torch.softmax(x.double(), -1).cumsum(-1)[0, 1])
    assert kept(nucleus_mask(x, at)) == [0, 1]             # reached p: stop
    assert kept(nucleus_mask(x, at, openai=True)) == [0, 1]  # within p: keep
    above, below = at + 1e-9, at - 1e-9
    assert kept(nucleus_mask(x, above)) == [0, 1, 2]        # 0.15 needed to reach p
    assert kept(nucleus_mask(x, above, openai=True)) == [0, 1]
    assert kept(nucleus_mask(x, below)) == [0, 1]
    assert kept(nucleus_mask(x, below, openai=True)) == [0]


def test_nucleus_openai_rule_keeps_ties_with_the_smallest_kept_logit():
    x = logits_of([0.4, 0.2, 0.2, 0.2])
    # cumsum 0.4, 0.6, 0.8, 1.0: p=0.65 keeps two by count, and the tied third and fourth
    assert kept(nucleus_mask(x, 0.65, openai=True)) == [0, 1, 2, 3]
    # transformers' rule breaks the tie by id: 0.4 + 0.2 = 0.6 < 0.65, one more needed
    assert kept(nucleus_mask(x, 0.65)) == [0, 1, 2]


def openai_reference(logits: np.ndarray, p: float) -> np.ndarray:
    """The original sampler's top_p_logits, written from its definition with numpy."""
    out = np.zeros(logits.shape, dtype=bool)
    for i, row in enumerate(logits):
        srt = np.sort(row)[::-1]
        e = np.exp(srt.astype(np.float64) - srt[0])
        cum = np.cumsum(e / e.sum())
        idx = max(int((cum <= p).sum()) - 1, 0)
        out[i] = row >= srt[idx]
    return out


def transformers_reference(logits: np.ndarray, p: float) -> np.ndarray:
    """The smallest set of most likely tokens whose probability reaches p."""
    out = np.zeros(logits.shape, dtype=bool)
    for i, row in enumerate(logits):
        order = np.argsort(-row, kind="stable")
        e = np.exp(row[order].astype(np.float64) - row[order][0])
        cum = np.cumsum(e / e.sum())
        n = int(np.searchsorted(cum, p, side="left")) + 1  # first index with cum >= p, inclusive
        out[i, order[:min(n, len(row))]] = True
    return out


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8, 0.9, 0.95, 0.999])
def test_nucleus_rules_match_reference_implementations(p):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(16, 500, generator=g) * 3
    assert np.array_equal(nucleus_mask(x, p, openai=True).numpy(), openai_reference(x.numpy(), p))
    assert np.array_equal(nucleus_mask(x, p).numpy(), transformers_reference(x.numpy(), p))


def test_nucleus_transformers_rule_matches_transformers_warper():
    from transformers.generation.logits_process import TopPLogitsWarper

    g = torch.Generator().manual_seed(3)
    x = torch.randn(16, 2000, generator=g) * 2
    for p in (0.5, 0.9, 0.95):
        theirs = TopPLogitsWarper(p)(None, x.clone()) > -math.inf
        assert torch.equal(nucleus_mask(x, p), theirs)


def test_nucleus_takes_one_p_per_row():
    x = logits_of(PROBS).expand(3, 4)
    mask = nucleus_mask(x, torch.tensor([0.3, 0.7, 0.9]))
    assert [m.nonzero().flatten().tolist() for m in mask] == [[0], [0, 1], [0, 1, 2]]
    cfg = SamplingConfig("nucleus", p_range=(0.5, 1.0))
    with pytest.raises(GuardError):
        filter_logits(x, cfg)  # a drawn p must be passed


# --- temperature and filter_logits ---------------------------------------------------------

def test_temperature_divides_before_truncation():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(4, 50, generator=g)
    assert torch.allclose(filter_logits(x, SamplingConfig("pure", temperature=0.5)), x / 0.5)
    assert torch.equal(filter_logits(x, SamplingConfig("pure")), x)  # pure: untouched, nothing truncated
    cold = filter_logits(x, SamplingConfig("nucleus", top_p=0.9, temperature=0.5))
    assert torch.equal(cold > -math.inf, nucleus_mask(x / 0.5, 0.9))
    # a colder distribution needs fewer tokens to reach the same p
    hot = filter_logits(x, SamplingConfig("nucleus", top_p=0.9, temperature=2.0))
    assert ((cold > -math.inf).sum(-1) <= (hot > -math.inf).sum(-1)).all()
    assert ((cold > -math.inf).sum() < (hot > -math.inf).sum())
    k = filter_logits(x, SamplingConfig("top-k", top_k=5, temperature=0.5))
    assert torch.equal(k > -math.inf, top_k_mask(x, 5))
    assert torch.allclose(k[k > -math.inf], (x / 0.5)[top_k_mask(x, 5)])


# --- drawing -------------------------------------------------------------------------------

def empirical(logits_row, cfg, n=60_000, seed=0, top_p=None):
    """Frequencies of n draws with the loop's own drawing function and seed streams."""
    x = logits_row.reshape(1, -1).expand(n, -1).contiguous()
    u = torch.from_numpy(uniforms(seed, n))
    p = None if top_p is None else torch.full((n,), top_p, dtype=torch.float64)
    ids = draw_tokens(x, cfg, u, p)
    return torch.bincount(ids, minlength=x.shape[1]).double() / n


def test_pure_sampling_matches_the_softmax():
    x = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    freq = empirical(x, SamplingConfig("pure"))
    assert torch.allclose(freq, torch.softmax(x.double(), -1), atol=0.01)


def test_temperature_sampling_matches_the_scaled_softmax():
    x = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])
    freq = empirical(x, SamplingConfig("pure", temperature=0.5), seed=1)
    assert torch.allclose(freq, torch.softmax(x.double() / 0.5, -1), atol=0.01)
    assert not torch.allclose(freq, torch.softmax(x.double(), -1), atol=0.05)


def test_pure_sampling_truncates_nothing():
    # 200 equally likely tokens: a hidden top-k (transformers defaults to 50) would never
    # draw ids past its cut
    freq = empirical(torch.zeros(200), SamplingConfig("pure"), n=40_000, seed=2)
    assert (freq > 0).all()
    assert torch.allclose(freq, torch.full((200,), 1 / 200, dtype=torch.float64), atol=0.003)


def test_top_k_and_nucleus_sample_their_renormalised_sets():
    x = logits_of([0.4, 0.25, 0.15, 0.1, 0.06, 0.04])[0]
    probs = torch.softmax(x.double(), -1)
    freq = empirical(x, SamplingConfig("top-k", top_k=3), seed=3)
    want = torch.where(torch.arange(6) < 3, probs, 0.0)
    assert torch.allclose(freq, want / want.sum(), atol=0.01)
    freq = empirical(x, SamplingConfig("nucleus", p_range=(0.5, 1.0)), seed=4, top_p=0.7)
    want = torch.where(torch.arange(6) < 3, probs, 0.0)   # 0.4 + 0.25 < 0.7: 0.15 crosses, kept
    assert torch.allclose(freq, want / want.sum(), atol=0.01)
    freq = empirical(x, SamplingConfig("nucleus", top_p=0.7, openai_nucleus=True), seed=5)
    want = torch.where(torch.arange(6) < 2, probs, 0.0)   # OpenAI rule: 0.8 > 0.7, dropped
    assert torch.allclose(freq, want / want.sum(), atol=0.01)


def test_inverse_cdf_picks_the_first_token_whose_cdf_exceeds_u():
    x = logits_of([0.25, 0.25, 0.0 + 1e-30, 0.5])
    x[0, 2] = -math.inf
    u = torch.tensor([0.0, 0.2499, 0.2501, 0.4999, 0.5001, 0.9999999], dtype=torch.float64)
    ids = sample_inverse_cdf(x.expand(6, -1), u)
    assert ids.tolist() == [0, 0, 1, 1, 3, 3]   # never the excluded token 2


@pytest.mark.parametrize("cfg", [
    SamplingConfig("pure"), SamplingConfig("pure", temperature=0.8), SamplingConfig("top-k", top_k=1),
    SamplingConfig("top-k", top_k=40), SamplingConfig("top-k", top_k=3, temperature=1.3),
    SamplingConfig("nucleus", p_range=(0.3, 1.0)), SamplingConfig("nucleus", p_range=(0.3, 1.0), openai_nucleus=True),
    SamplingConfig("nucleus", top_p=1.0), SamplingConfig("nucleus", top_p=0.999, temperature=0.7),
])
def test_fast_draw_equals_the_definition(cfg):
    """draw_tokens == sample_inverse_cdf(filter_logits(...)) token for token, ties included."""
    g = torch.Generator().manual_seed(5)
    for trial in range(12):
        V = [30, 100, 1500, 3000][trial % 4]
        x = torch.randn(8, V, generator=g) * [0.5, 3.0, 8.0][trial % 3]
        if trial % 2:
            x = (x * 2).round() / 2        # many exact ties
        u = torch.rand(8, generator=g, dtype=torch.float64)
        p = None
        if cfg.method == "nucleus":
            p = torch.tensor([cfg.draw_top_p(trial * 8 + i) for i in range(8)], dtype=torch.float64)
        assert torch.equal(draw_tokens(x, cfg, u, p), sample_inverse_cdf(filter_logits(x, cfg, p), u))


# --- seeds ---------------------------------------------------------------------------------

def test_uniform_streams_are_prefix_consistent_and_independent():
    a = uniforms(7, 1000)
    assert np.array_equal(uniforms(7, 10), a[:10])
    assert ((a >= 0) & (a < 1)).all()
    assert not np.array_equal(uniforms(8, 10), a[:10])
    assert not np.array_equal(uniforms(7, 10, stream=1), a[:10])
    # streams of neighbouring seeds are not shifted copies of each other
    b = uniforms(8, 1000)
    assert len(set(a.tolist()) & set(b.tolist())) == 0
    big = uniforms(123, 100_000)
    assert abs(big.mean() - 0.5) < 0.005 and abs(big.var() - 1 / 12) < 0.002


@pytest.mark.parametrize("seed", [-1, 2**63, 1.5, "3", True])
def test_bad_seeds_are_refused(seed):
    with pytest.raises(GuardError):
        uniforms(seed, 3)

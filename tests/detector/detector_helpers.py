"""Helpers shared by the detector tests: tiny random GPT-2 models, and a direct (full
log-softmax, sort-based rank, float64) computation of every statistic."""

from __future__ import annotations

import numpy as np

def tiny_gpt2(vocab_size: int, n_positions: int = 128, n_layer: int = 2, n_embd: int = 32, seed: int = 0):
    """A randomly initialised GPT2LMHeadModel, scaled so its predictions are far from uniform."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_layer=n_layer, n_embd=n_embd, n_head=4,
                     eos_token_id=0, bos_token_id=0)
    model = GPT2LMHeadModel(cfg)
    with torch.no_grad():  # sharper distributions than the default init gives
        model.transformer.wte.weight.mul_(8.0)
    return model.eval()


def direct_stats(model, ids, ref_model=None) -> dict:
    """Statistics of ``ids[1:]`` given ``ids`` (first id = context start), by brute force.

    One unpadded forward pass, full float64 log-softmax, rank as the position of the observed
    token in a descending sort of the logits.
    """
    import torch

    with torch.no_grad():
        x = torch.tensor([list(ids[:-1])])
        logits = model(x).logits[0].double()  # (T, V)
        targets = torch.tensor(list(ids[1:]))
        logprobs = torch.log_softmax(logits, -1)  # (T, V)
        order = torch.argsort(logits, dim=-1, descending=True)  # (T, V)
        rank = (order == targets[:, None]).int().argmax(-1)  # (T,)
        p = logprobs.exp()
        mean = (p * logprobs).sum(-1)
        out = {"logp": logprobs.gather(1, targets[:, None])[:, 0], "rank": rank, "entropy": -mean,
               "mean_ref": mean, "var_ref": (p * logprobs ** 2).sum(-1) - mean ** 2}
        if ref_model is not None:
            q = torch.softmax(ref_model(x).logits[0].double(), -1)
            qmean = (q * logprobs).sum(-1)
            out["cross_entropy"] = -qmean
            out["cross_var"] = (q * logprobs ** 2).sum(-1) - qmean ** 2
    return {k: v.numpy() for k, v in out.items()}


def assert_stats_close(stats, expected: dict, atol: float = 2e-4, rank_slack: int = 0):
    """Compare a TokenStats (or dict of arrays) with a :func:`direct_stats` result."""
    get = (lambda k: stats[k]) if isinstance(stats, dict) else (lambda k: getattr(stats, k))
    for key, value in expected.items():
        got = np.asarray(get(key))
        assert got.shape == value.shape, key
        if key == "rank":
            assert np.abs(got.astype(int) - value.astype(int)).max() <= rank_slack, key
        else:
            np.testing.assert_allclose(got, value, atol=atol, rtol=1e-4, err_msg=key)

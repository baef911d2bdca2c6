"""The chunked vocabulary reduction against full float64 computations."""

import numpy as np
import pytest


def _direct(z, targets, zq=None):
    import torch

    z = z.double()
    logprobs = torch.log_softmax(z, -1)
    p = logprobs.exp()
    mean = (p * logprobs).sum(-1)
    order = torch.argsort(z, -1, descending=True)
    out = {"logp": logprobs.gather(1, targets[:, None])[:, 0],
           "rank": (order == targets[:, None]).int().argmax(-1),
           "entropy": -mean, "mean_ref": mean, "var_ref": ((logprobs - mean[:, None]) ** 2 * p).sum(-1)}
    if zq is not None:
        q = torch.softmax(zq.double(), -1)
        qmean = (q * logprobs).sum(-1)
        out["cross_entropy"] = -qmean
        out["cross_var"] = ((logprobs - qmean[:, None]) ** 2 * q).sum(-1)
    return out


@pytest.mark.parametrize("scale", [0.5, 4.0, 30.0])
def test_reduce_chunk_matches_full_softmax(scale):
    import torch

    from gpt2guard.detector.reduce import reduce_chunk

    g = torch.Generator().manual_seed(int(scale * 10))
    z = torch.randn(37, 1000, generator=g) * scale + 50.0  # large offset: stability of the shift
    zq = torch.randn(37, 1000, generator=g) * scale
    targets = torch.randint(0, 1000, (37,), generator=g)
    expected = _direct(z, targets, zq)
    got = reduce_chunk(z.clone(), targets, zq.clone())
    assert set(got) == set(expected)
    for key, value in expected.items():
        if key == "rank":
            assert torch.equal(got[key].long(), value.long())
        else:
            np.testing.assert_allclose(got[key].double().numpy(), value.numpy(), rtol=1e-4, atol=1e-4 * scale,
                                       err_msg=key)


def test_rank_counts_strictly_higher_logits():
    import torch

    from gpt2guard.detector.reduce import reduce_chunk

    z = torch.tensor([[1.0, 3.0, 3.0, 2.0, 0.0]] * 5)
    got = reduce_chunk(z.clone(), torch.tensor([0, 1, 2, 3, 4]))["rank"]
    assert got.tolist() == [3, 0, 0, 2, 4]  # ties share the better rank


@pytest.mark.parametrize("chunk_elements", [1, 700, 5000, 10 ** 9])
def test_project_and_reduce_is_independent_of_chunking(chunk_elements):
    import torch

    from gpt2guard.detector.reduce import project_and_reduce, reduce_chunk

    g = torch.Generator().manual_seed(0)
    hidden, weight, bias = torch.randn(23, 16, generator=g), torch.randn(300, 16, generator=g), torch.randn(300, generator=g)
    ref_hidden, ref_weight = torch.randn(23, 8, generator=g), torch.randn(300, 8, generator=g)
    targets = torch.randint(0, 300, (23,), generator=g)
    whole = reduce_chunk(hidden @ weight.T + bias, targets, ref_hidden @ ref_weight.T)
    got = project_and_reduce(hidden, weight, targets, bias=bias, ref_hidden=ref_hidden, ref_weight=ref_weight,
                             chunk_elements=chunk_elements)
    for key in whole:
        np.testing.assert_allclose(got[key].numpy(), whole[key].numpy(), rtol=1e-5, atol=1e-5, err_msg=key)

"""The green lists: a gamma share of the vocabulary, keyed, and one function for both sides."""

from __future__ import annotations

import pytest
import torch

from gpt2guard.errors import GuardError
from gpt2guard.watermark.greenlist import green_mask, key_table


@pytest.mark.parametrize("scheme, width", [("lefthash", 1), ("selfhash", 3)])
@pytest.mark.parametrize("gamma", [0.1, 0.25, 0.5])
def test_a_gamma_share_is_green(micro_key, scheme, width, gamma):
    key = micro_key[0]
    table = key_table(key, key.vocab_size)
    ctx = torch.randint(0, key.vocab_size, (200, width), generator=torch.Generator().manual_seed(0))
    mask = green_mask(table, scheme, gamma, ctx, torch.arange(key.vocab_size)[None, :])
    assert mask.shape == (200, key.vocab_size)
    # lefthash: every (context, token) pair is its own coin; selfhash: a token whose own hash is
    # the window's minimum has one colour whatever the context, so the tokens are the sample
    n = mask.numel() if scheme == "lefthash" else key.vocab_size
    assert abs(mask.float().mean().item() - gamma) < 4 * (gamma * (1 - gamma) / n) ** 0.5
    # each context has its own list: two contexts share about gamma^2 + (1-gamma)^2 of decisions
    agree = (mask[0] == mask[1]).float().mean().item()
    assert abs(agree - (gamma ** 2 + (1 - gamma) ** 2)) < 0.1


@pytest.mark.parametrize("scheme, width", [("lefthash", 1), ("selfhash", 3)])
def test_generation_and_detection_ask_the_same_question(micro_key, scheme, width):
    """The (B, V) mask of a step, and one (context, token) pair at a time, agree everywhere."""
    key = micro_key[0]
    table = key_table(key, key.vocab_size)
    gen = torch.Generator().manual_seed(1)
    ctx = torch.randint(0, key.vocab_size, (6, width), generator=gen)
    full = green_mask(table, scheme, 0.25, ctx)  # every token, as a generation step asks
    assert torch.equal(full, green_mask(table, scheme, 0.25, ctx, torch.arange(key.vocab_size)[None, :]))
    pairs = torch.randint(0, key.vocab_size, (6, 40), generator=gen)
    for r in range(6):
        single = green_mask(table, scheme, 0.25, ctx[r:r + 1].expand(40, width), pairs[r][:, None])[:, 0]
        assert torch.equal(single, full[r, pairs[r]])


def test_keys_choose_different_lists(micro_key, other_key):
    ctx = torch.arange(50)[:, None]
    cand = torch.arange(micro_key[0].vocab_size)[None, :]
    a = green_mask(key_table(micro_key[0], 512), "lefthash", 0.25, ctx, cand)
    b = green_mask(key_table(other_key[0], 512), "lefthash", 0.25, ctx, cand)
    assert abs((a == b).float().mean().item() - 0.625) < 0.05  # independent lists: 0.25^2 + 0.75^2


def test_selfhash_depends_on_three_tokens_back_and_no_further(micro_key):
    key = micro_key[0]
    table = key_table(key, key.vocab_size)
    cand = torch.arange(key.vocab_size)[None, :]
    base = green_mask(table, "selfhash", 0.25, torch.tensor([[5, 6, 7]]), cand)
    for changed in ([[9, 6, 7]], [[5, 9, 7]], [[5, 6, 9]]):
        assert not torch.equal(base, green_mask(table, "selfhash", 0.25, torch.tensor(changed), cand))
    # the scheme sees only its window: a longer history cannot be passed
    with pytest.raises(GuardError, match="needs 3 context"):
        green_mask(table, "selfhash", 0.25, torch.tensor([[4, 5, 6, 7]]), cand)


def test_table_prefix_does_not_depend_on_its_length(micro_key):
    key = micro_key[0]
    assert torch.equal(key_table(key, 100), key_table(key, 512)[:, :100])


@pytest.mark.parametrize("scheme, width", [("lefthash", 1), ("selfhash", 3)])
def test_a_large_vocabulary_is_hashed_in_slices_with_the_same_result(micro_key, scheme, width):
    from gpt2guard.watermark.greenlist import CHUNK, green_values, threshold

    table = key_table(micro_key[0], 2 * CHUNK + 17)  # a GPT-2-sized step is cut into slices
    ctx = torch.randint(0, table.shape[1], (3, width), generator=torch.Generator().manual_seed(2))
    whole = green_values(table, scheme, ctx, torch.arange(table.shape[1])[None, :]) < threshold(0.25)
    assert torch.equal(green_mask(table, scheme, 0.25, ctx), whole)

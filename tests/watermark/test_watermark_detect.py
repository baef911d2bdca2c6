"""Detection on the micro family: watermarked text is found, other text is not, and
repetition cannot fake a watermark."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gpt2guard.errors import GuardError
from gpt2guard.watermark import WatermarkConfig, detect_texts
from gpt2guard.watermark.detect import builtin_human, normal_sf, score_ids, z_score
from gpt2guard.watermark.greenlist import green_mask, key_table


def generate(loaded, n, length, watermark, sampling="pure", seed0=0):
    from gpt2guard.generator.sample import generate_tokens
    from gpt2guard.generator.sampling import parse_sampling

    return generate_tokens(loaded, [[]] * n, length, parse_sampling(sampling)[0], list(range(seed0, seed0 + n)),
                           stop_at_eos=False, watermark=watermark)


@pytest.mark.parametrize("scheme, sampling", [("lefthash", "pure"), ("lefthash", "top-k=40"),
                                              ("selfhash", "pure")])
def test_watermarked_text_is_detected_and_unmarked_text_is_not(micro_small, micro_key, scheme, sampling):
    key, path = micro_key
    tok = micro_small.tokenizer
    marked = generate(micro_small, 12, 100, WatermarkConfig(str(path), scheme=scheme), sampling)
    plain = generate(micro_small, 12, 100, None, sampling)
    found = detect_texts([r.text for r in marked], key, tok, scheme=scheme)
    missed = detect_texts([r.text for r in plain], key, tok, scheme=scheme)
    assert all(s.detected and s.z >= 4 and s.p_value < 1e-4 for s in found), [s.z for s in found]
    assert not any(s.detected for s in missed), [s.z for s in missed]
    assert np.mean([s.green_fraction for s in found]) > 0.45
    # (a micro text with a NUL byte is binary to the input hygiene: not scored, not detected)
    assert abs(np.mean([s.z for s in missed if s.n_scored])) < 1.5
    # the right key and scheme are needed
    other = "selfhash" if scheme == "lefthash" else "lefthash"
    assert not any(s.detected for s in detect_texts([r.text for r in marked], key, tok, scheme=other))


def test_another_key_does_not_find_the_watermark(micro_small, micro_key, other_key):
    marked = generate(micro_small, 8, 100, WatermarkConfig(str(micro_key[1])))
    scores = detect_texts([r.text for r in marked], other_key[0], micro_small.tokenizer)
    assert not any(s.detected for s in scores)


def test_human_text_is_not_detected_and_its_p_values_are_uniform(micro_key, micro_tokenizer):
    """The null hypothesis is over the key: a document tested with a fresh key has a uniform
    p-value. (With one fixed key, the green-list luck of frequent tokens shifts every
    document's z alike, by about 0.2 in z at micro's 512 tokens: hence the empirical FPR.)"""
    import hashlib

    from scipy.stats import binomtest, kstest

    from gpt2guard.watermark import WatermarkKey

    docs = builtin_human("valid")
    fixed = detect_texts(docs, micro_key[0], micro_tokenizer)
    assert len(docs) >= 200 and not any(s.detected for s in fixed)
    assert abs(np.mean([s.z for s in fixed if s.n_scored])) < 1
    key = micro_key[0]
    fresh = [detect_texts([doc], WatermarkKey(hashlib.sha256(b"%d" % i).digest(), "micro", key.tokenizer,
                                              key.vocab_size), micro_tokenizer)[0] for i, doc in enumerate(docs)]
    assert not any(s.detected for s in fresh)
    p = np.array([s.p_value for s in fresh if s.n_scored >= 20])
    assert len(p) >= 200
    assert kstest(p, "uniform").pvalue > 0.01
    for alpha in (0.1, 0.5):  # the share below alpha lies in the binomial band around alpha
        assert binomtest(int((p < alpha).sum()), len(p), alpha).pvalue > 0.01


def green_cycle(key, length, scheme="lefthash"):
    """Token ids t0..t(k-1) whose every pair (t_i, t_i+1), including the wrap-around, is green."""
    table = key_table(key, key.vocab_size)
    ids = [7]
    cand = np.arange(key.vocab_size)
    import torch

    while len(ids) < length:
        row = green_mask(table, scheme, 0.25, torch.tensor([[ids[-1]]]), torch.tensor(cand)[None, :])[0].numpy()
        if len(ids) == length - 1:  # the last one must lead back to t0
            back = green_mask(table, scheme, 0.25, torch.tensor(cand)[:, None], torch.tensor([[ids[0]]]).expand(
                len(cand), 1))[:, 0].numpy()
            row &= back
        options = [c for c in cand[row] if c not in ids]
        ids.append(int(options[0]))
    return ids


def test_repeating_one_phrase_cannot_fake_the_watermark(micro_key):
    key = micro_key[0]
    phrase = green_cycle(key, 5)
    text = phrase * 48  # 240 tokens, every pair green
    counted = score_ids(text, key, ignore_repeated=False)
    assert counted.detected and counted.green_fraction == 1.0 and counted.n_scored == 239
    ignored = score_ids(text, key)  # five distinct pairs, all green: z = sqrt(15) < 4
    assert ignored.n_scored == 5 and ignored.n_green == 5 and not ignored.detected
    assert ignored.z == pytest.approx(z_score(5, 5, 0.25)) and ignored.z < counted.z / 5


def test_a_repetitive_human_text_is_not_flagged(micro_key, micro_tokenizer):
    text = "The results are shown in the table below. " * 60
    [s] = detect_texts([text], micro_key[0], micro_tokenizer)
    assert s.n_tokens > 400 and s.n_scored < 25 and not s.detected  # its distinct pairs, not its 960 tokens


def test_scored_tokens_need_a_full_context(micro_key):
    key = micro_key[0]
    ids = list(range(10, 30))
    assert score_ids(ids, key).n_scored == 19
    assert score_ids(ids, key, scheme="selfhash").n_scored == 17
    empty = score_ids([], key)
    assert empty.n_scored == 0 and math.isnan(empty.z) and empty.p_value == 1.0 and not empty.detected
    assert empty.to_dict()["z"] is None


def test_z_and_p_follow_the_formula():
    assert z_score(50, 100, 0.25) == pytest.approx((50 - 25) / math.sqrt(100 * 0.25 * 0.75))
    assert normal_sf(4.0) == pytest.approx(3.167e-5, rel=1e-3)
    assert normal_sf(0.0) == 0.5


def test_hygiene_removes_invisible_characters_before_testing(micro_small, micro_key):
    marked = generate(micro_small, 3, 100, WatermarkConfig(str(micro_key[1])))
    hidden = ["\u200b ".join(r.text.split(" ")) for r in marked]  # a zero-width space before every space
    clean = detect_texts(hidden, micro_key[0], micro_small.tokenizer)
    assert all(s.detected and "zero_width" in s.flags for s in clean), [(s.z, s.flags) for s in clean]
    raw = detect_texts(hidden, micro_key[0], micro_small.tokenizer, hygiene=False)
    assert all(r.z < c.z - 1 for r, c in zip(raw, clean)), [(r.z, c.z) for r, c in zip(raw, clean)]


@pytest.mark.parametrize("kwargs, message", [({"gamma": 1.0}, "gamma"), ({"gamma": 0}, "gamma"),
                                              ({"scheme": "nope"}, "unknown watermark scheme"),
                                              ({"z_threshold": float("nan")}, "z threshold")])
def test_bad_detection_settings(micro_key, micro_tokenizer, kwargs, message):
    with pytest.raises(GuardError, match=message):
        detect_texts(["some text"], micro_key[0], micro_tokenizer, **kwargs)


def test_detection_refuses_a_key_of_another_tokenizer(foreign_key, micro_tokenizer):
    with pytest.raises(GuardError, match="is for the foreign tokenizer"):
        detect_texts(["some text"], foreign_key[0], micro_tokenizer)

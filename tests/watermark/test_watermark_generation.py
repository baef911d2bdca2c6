"""Watermarked generation jobs: provenance without the key, bit-for-bit regeneration,
batch independence, and resumes that must keep the key."""

from __future__ import annotations

import json

import pytest

from gpt2guard.datasets.sets import open_set
from gpt2guard.errors import GuardError
from gpt2guard.generator.run import GenerationJob, regenerate, run_generation
from gpt2guard.watermark import WatermarkConfig, detect_texts


def job(out, key_path, **kw):
    settings = dict(out=str(out), family="micro", sizes="small", sampling="pure", n=4, length=40,
                    watermark=WatermarkConfig(str(key_path)) if key_path else None)
    settings.update(kw)
    return GenerationJob(**settings)


def test_records_name_the_watermark_never_the_key(micro_key, micro_tokenizer, tmp_path):
    key, path = micro_key
    run_generation(job(tmp_path, path, sampling="top-k=40"), progress=False)
    records = list(open_set(tmp_path, "micro-small-k40", "train"))
    for r in records:
        wm = r.provenance["watermark"]
        assert wm["scheme"] == "lefthash" and wm["gamma"] == 0.25 and wm["delta"] == 2.0
        assert wm["key_digest"] == key.digest
    secret = key.secret.hex()
    for f in tmp_path.iterdir():
        assert secret not in f.read_text(errors="replace"), f.name
    manifest = json.loads((tmp_path / "micro-small-k40.train.manifest.json").read_text())
    assert manifest["meta"]["job"]["settings"]["watermark"]["key_digest"] == key.digest
    scored = [s for s in detect_texts([r.text for r in records], key, micro_tokenizer) if s.n_scored]
    assert scored and all(s.z > 2.5 for s in scored)  # 40 tokens: marked, if not always past z = 4


def test_watermarked_records_regenerate_bit_for_bit_with_their_key(micro_key, other_key, tmp_path):
    marker = WatermarkConfig(str(micro_key[1]), 0.5, 1.5, "selfhash")
    run_generation(job(tmp_path, micro_key[1], watermark=marker), progress=False)
    records = list(open_set(tmp_path, "micro-small", "train"))
    for r in records:
        assert regenerate(r, watermark_key=micro_key[1]) == r.text
    with pytest.raises(GuardError, match="is watermarked .*needs its key file"):
        regenerate(records[0])
    with pytest.raises(GuardError, match="is not the record's key"):
        regenerate(records[0], watermark_key=other_key[1])


def test_a_record_does_not_depend_on_its_batch(micro_small, micro_key):
    from gpt2guard.generator.sample import generate_tokens
    from gpt2guard.generator.sampling import parse_sampling

    cfg, wm = parse_sampling("top-k=40")[0], WatermarkConfig(str(micro_key[1]), scheme="selfhash")
    prompts = [[], [5, 6], [7, 8, 9, 10, 11], []]
    together = generate_tokens(micro_small, prompts, 30, cfg, [1, 2, 3, 4], watermark=wm, batch_size=4)
    for i, prompt in enumerate(prompts):
        [alone] = generate_tokens(micro_small, [prompt], 30, cfg, [i + 1], watermark=wm, batch_size=2)
        assert alone.token_ids == together[i].token_ids


def test_delta_zero_changes_no_token(micro_small, micro_key):
    from gpt2guard.generator.sample import generate_tokens
    from gpt2guard.generator.sampling import parse_sampling

    cfg = parse_sampling("pure")[0]
    plain = generate_tokens(micro_small, [[]] * 3, 30, cfg, [1, 2, 3], return_logprobs=True)
    zero = generate_tokens(micro_small, [[]] * 3, 30, cfg, [1, 2, 3], return_logprobs=True,
                           watermark=WatermarkConfig(str(micro_key[1]), delta=0.0))
    marked = generate_tokens(micro_small, [[]] * 3, 30, cfg, [1, 2, 3], return_logprobs=True,
                             watermark=WatermarkConfig(str(micro_key[1]), delta=4.0))
    assert [r.token_ids for r in zero] == [r.token_ids for r in plain]
    assert [r.token_ids for r in marked] != [r.token_ids for r in plain]
    # log-probabilities stay the model's own (the unwatermarked distribution)
    assert [r.logprobs for r in zero] == [r.logprobs for r in plain]


def test_a_resume_must_keep_the_watermark(micro_key, other_key, tmp_path):
    run_generation(job(tmp_path, micro_key[1], n=2), progress=False)
    with pytest.raises(GuardError, match="--watermark .* differs from the set's watermark"):
        run_generation(job(tmp_path, other_key[1], n=3), progress=False)
    with pytest.raises(GuardError, match="--watermark \\(none\\) differs"):
        run_generation(job(tmp_path, None, n=3), progress=False)
    with pytest.raises(GuardError, match="differs from the set's watermark"):
        run_generation(job(tmp_path, None, n=3, watermark=WatermarkConfig(str(micro_key[1]), delta=1.0)),
                       progress=False)
    assert len(list(open_set(tmp_path, "micro-small", "train"))) == 2
    run_generation(job(tmp_path, micro_key[1], n=3), progress=False)  # the same key resumes
    assert len(list(open_set(tmp_path, "micro-small", "train"))) == 3
    # an unwatermarked set refuses a watermarked resume too
    plain = tmp_path / "plain"
    run_generation(job(plain, None, n=1), progress=False)
    with pytest.raises(GuardError, match="differs from the set's watermark \\(none\\)"):
        run_generation(job(plain, micro_key[1], n=2), progress=False)


def test_a_foreign_key_fails_before_anything_is_written(foreign_key, tmp_path):
    with pytest.raises(GuardError, match="is for the foreign tokenizer"):
        run_generation(job(tmp_path / "out", foreign_key[1]), progress=False)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kwargs, message", [({"gamma": 0.0}, "gamma"), ({"gamma": 1.0}, "gamma"),
                                              ({"delta": -1.0}, "delta"), ({"delta": float("inf")}, "delta"),
                                              ({"scheme": "hash"}, "unknown watermark scheme")])
def test_config_checks_its_ranges(kwargs, message):
    with pytest.raises(GuardError, match=message):
        WatermarkConfig("k.key", **kwargs)


def test_config_provenance_names_the_key_by_digest(micro_key):
    prov = WatermarkConfig(str(micro_key[1]), 0.5, 1.0, "selfhash").provenance()
    assert prov == {"format": "gpt2guard.watermark/1", "scheme": "selfhash", "gamma": 0.5, "delta": 1.0,
                    "context_width": 3, "key_digest": micro_key[0].digest}


def test_delta_is_added_after_temperature(micro_key):
    """The sampler divides by T after the bias: delta * T on the raw logits is delta on the
    logits it samples from."""
    import torch

    from gpt2guard.watermark.bias import WatermarkBias

    bias = WatermarkBias(WatermarkConfig(str(micro_key[1]), delta=2.0), micro_key[0].vocab_size)
    hist, count = bias.start([[3, 4], [5]], "cpu")
    out = bias.apply(torch.zeros(2, micro_key[0].vocab_size), hist, count, temperature=0.5)
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert 0.15 < (out == 1.0).float().mean().item() < 0.35
    assert not torch.equal(out[0], out[1])  # each row's own context

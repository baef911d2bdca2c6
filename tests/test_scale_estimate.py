"""bench/scale_estimate.py: wall time of an OpenAI-size output set from per-device throughput."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from archs import arch_params, flops_per_token  # noqa: E402
from scale_estimate import Rate, Workload, estimate, rates_from_results, seconds_per_token  # noqa: E402


def test_gpt2_sizes_have_openais_parameter_counts():
    assert [arch_params(a) for a in ("124M", "355M", "774M", "1558M")] == [
        124_439_808, 354_823_168, 774_030_080, 1_557_611_200]


def test_one_measured_size_gives_hours_from_tokens_and_flops():
    rates = [Rate("generate", "124M", 1000.0, context=512), Rate("score", "124M", 10_000.0, context=512)]
    est = estimate(rates, devices=(1, 8, 64), efficiency=0.9)
    gen_tokens = 2 * 260_000 * 1024
    score_tokens = 4 * gen_tokens + 260_000 * 1024
    assert est["per_size"]["124M"]["generate"] == pytest.approx(gen_tokens / 1000 / 3600)
    assert est["per_size"]["124M"]["score"] == pytest.approx(score_tokens / 10_000 / 3600)
    ratio = flops_per_token("1558M", 512) / flops_per_token("124M", 512)
    assert est["per_size"]["1558M"]["generate"] == pytest.approx(ratio * est["per_size"]["124M"]["generate"])
    one, eight, many = est["rows"]
    assert one["total_h"] == pytest.approx(sum(v["generate"] + v["score"] for v in est["per_size"].values()))
    assert eight["total_h"] == pytest.approx(one["total_h"] / (8 * 0.9))
    assert many["generate_h"] == pytest.approx(one["generate_h"] / (64 * 0.9))


def test_two_measured_sizes_are_reproduced_and_interpolated():
    rates = [Rate("score", "124M", 50_000.0, context=512), Rate("score", "1558M", 8_000.0, context=512)]
    assert seconds_per_token(rates, "score", "124M", 512) == pytest.approx(1 / 50_000)
    assert seconds_per_token(rates, "score", "1558M", 512) == pytest.approx(1 / 8_000)
    middle = seconds_per_token(rates, "score", "774M", 512)
    assert 1 / 50_000 < middle < 1 / 8_000
    with pytest.raises(ValueError, match="no measured generate"):
        seconds_per_token(rates, "generate", "124M", 512)


def test_shorter_documents_cost_less():
    rates = [Rate("generate", "124M", 1000.0), Rate("score", "124M", 10_000.0)]
    full = estimate(rates, devices=(1,))["rows"][0]["total_h"]
    half = estimate(rates, devices=(1,), work=Workload(gen_tokens=512, webtext_tokens=512))["rows"][0]["total_h"]
    assert half < full / 2  # half the tokens, each attending to a shorter context


def test_rates_come_from_bench_json_without_the_dry_run_model():
    scoring = {"bench": "scoring", "arch": "124M", "device_name": "GPU", "dtype": "bfloat16",
               "setups": [{"setup": "GPT-2 124M arch", "docs": 4, "tokens": 4000, "tokens_per_s": {"engine": 9000.0},
                           "best_cpu_s": {"engine": 2.0}}]}
    tiny = dict(scoring, arch="tiny")
    generate = {"bench": "generate", "device_name": "GPU", "dtype": "bfloat16",
                "speed": [{"arch": "124M", "variant": "", "ours_tok_s": 700.0, "ours_cpu_tok_s": 650.0, "tokens": 256},
                          {"arch": "124M", "variant": "aten linear", "ours_tok_s": 900.0, "ours_cpu_tok_s": 1.0,
                           "tokens": 256}]}
    rates = rates_from_results([scoring, tiny, generate])
    assert [(r.kind, r.arch, r.tokens_per_s, r.context) for r in rates] == [
        ("score", "124M", 9000.0, 500.0), ("generate", "124M", 700.0, 128.0)]
    assert [r.tokens_per_s for r in rates_from_results([scoring, generate], clock="cpu")] == [2000.0, 650.0]

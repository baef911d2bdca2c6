"""Sampling specs: parsing, names, records, and one-line errors for bad input."""

import pytest

from gpt2guard.errors import GuardError
from gpt2guard.generator import SamplingConfig, parse_sampling


def test_parse_the_documented_list():
    cfgs = parse_sampling("pure,top-k=40,nucleus=0.8-1.0,nucleus=0.9,temperature=0.7,nucleus-openai=0.9")
    assert [c.method for c in cfgs] == ["pure", "top-k", "nucleus", "nucleus", "pure", "nucleus"]
    assert [c.name for c in cfgs] == ["", "k40", "nucleus", "nucleus0.9", "t0.7", "nucleus-openai0.9"]
    pure, k40, rng, fixed, temp, openai = cfgs
    assert (pure.temperature, pure.top_k, pure.top_p, pure.p_range) == (1.0, 0, None, None)
    assert k40.top_k == 40
    assert rng.p_range == (0.8, 1.0) and rng.top_p is None and not rng.openai_nucleus
    assert fixed.top_p == 0.9 and fixed.nucleus_rule == "transformers"
    assert temp.temperature == 0.7
    assert openai.openai_nucleus and openai.nucleus_rule == "openai"


def test_modifiers_and_other_ranges_have_names():
    cfgs = parse_sampling("top-k=40:temperature=0.7, nucleus=0.85-0.95 ,nucleus-openai=0.8-1")
    assert [c.name for c in cfgs] == ["k40-t0.7", "nucleus0.85-0.95", "nucleus-openai"]
    assert cfgs[0] == SamplingConfig("top-k", temperature=0.7, top_k=40)


@pytest.mark.parametrize("spec", ["pure", "top-k=40", "nucleus=0.8-1.0", "nucleus=0.9", "temperature=0.7",
                                  "nucleus-openai=0.9", "top-k=5:temperature=1.5", "nucleus=0.5-0.6:temperature=2"])
def test_spec_and_dict_round_trip(spec):
    (cfg,) = parse_sampling(spec)
    assert parse_sampling(cfg.spec) == [cfg]
    assert SamplingConfig.from_dict(cfg.to_dict()) == cfg
    d = cfg.to_dict()
    assert d["name"] == cfg.name and d["method"] == cfg.method


@pytest.mark.parametrize("spec, words", [
    ("beam=4", "unknown sampling spec"),
    ("greedy", "unknown sampling spec"),
    ("top-k", "unknown sampling spec"),
    ("top-k=0", "k must be >= 1"),
    ("top-k=-3", "k must be >= 1"),
    ("top-k=4.5", "not an integer"),
    ("nucleus=0", "p must be in (0, 1]"),
    ("nucleus=1.5", "p must be in (0, 1]"),
    ("nucleus=-0.2-0.9", "not a number"),
    ("nucleus=0.9-0.8", "is empty"),
    ("nucleus=abc", "not a number"),
    ("temperature=0", "temperature must be > 0"),
    ("temperature=-1", "temperature must be > 0"),
    ("temperature=nan", "must be finite"),
    ("temperature=inf", "must be finite"),
    ("top-k=40:nucleus=0.9", "more than one"),
    ("temperature=0.5:temperature=0.7", "more than one"),
    ("pure,,top-k=40", "empty sampling method"),
    ("", "no sampling method"),
    ("pure,pure", "listed twice"),
    ("top-k=40,top-k=40:temperature=1", "listed twice"),
])
def test_bad_specs_raise_one_line(spec, words):
    with pytest.raises(GuardError) as info:
        parse_sampling(spec)
    message = str(info.value)
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize("kwargs", [
    dict(method="beam"),
    dict(method="top-k", top_k=0),
    dict(method="top-k", top_k=True),
    dict(method="pure", top_k=40),
    dict(method="nucleus"),
    dict(method="nucleus", top_p=0.9, p_range=(0.8, 1.0)),
    dict(method="nucleus", top_p=0.0),
    dict(method="nucleus", p_range=(0.9, 0.9)),
    dict(method="pure", top_p=0.9),
    dict(method="top-k", top_k=4, openai_nucleus=True),
    dict(method="pure", temperature=0.0),
    dict(method="pure", temperature=float("inf")),
])
def test_invalid_configs_are_refused(kwargs):
    with pytest.raises(GuardError):
        SamplingConfig(**kwargs)


def test_draw_top_p_is_a_function_of_the_seed_in_range():
    (cfg,) = parse_sampling("nucleus=0.8-1.0")
    ps = [cfg.draw_top_p(s) for s in range(2000)]
    assert all(0.8 <= p < 1.0 for p in ps)
    assert ps == [cfg.draw_top_p(s) for s in range(2000)]
    assert len(set(ps)) == 2000
    # uniform on [0.8, 1.0): mean 0.9, variance 0.04 / 12
    mean = sum(ps) / len(ps)
    assert abs(mean - 0.9) < 0.006
    assert parse_sampling("nucleus=0.9")[0].draw_top_p(5) == 0.9
    assert parse_sampling("top-k=40")[0].draw_top_p(5) is None

"""Watermark tests: keys for the micro family, one torch thread (tiny models)."""

from __future__ import annotations

import pytest
from one_thread import one_thread  # noqa: F401 - autouse, for every module here


@pytest.fixture(scope="session")
def micro_key(micro_family, tmp_path_factory):
    """A seeded key for the micro tokenizer, and its path."""
    from gpt2guard.watermark import keygen

    path = tmp_path_factory.mktemp("wm-key") / "micro.key"
    return keygen(path, seed=1, family="micro"), path


@pytest.fixture(scope="session")
def other_key(micro_family, tmp_path_factory):
    """A key for the micro tokenizer from another seed."""
    from gpt2guard.watermark import keygen

    path = tmp_path_factory.mktemp("wm-key2") / "other.key"
    return keygen(path, seed=2, family="micro"), path


@pytest.fixture(scope="session")
def foreign_key(tmp_path_factory):
    """A key for a tokenizer that is not micro's (a small BPE trained here)."""
    from gpt2guard.family.tokenizer import train_tokenizer
    from gpt2guard.watermark import keygen

    root = tmp_path_factory.mktemp("wm-foreign")
    texts = ["a watermark hides in the choice of words, one token at a time"] * 20
    tok = train_tokenizer(texts, vocab_size=300, n_positions=64, out_dir=root / "tok")
    path = root / "foreign.key"
    return keygen(path, seed=3, family="foreign", tokenizer=tok), path


@pytest.fixture(scope="session")
def micro_small(micro_family):
    from gpt2guard.family import load_model

    return load_model("micro", "small")

"""Watermark tests: keys for the micro family, one torch thread (tiny models)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    saved_env, saved_threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    yield
    if saved_env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = saved_env
    torch.set_num_threads(saved_threads)


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

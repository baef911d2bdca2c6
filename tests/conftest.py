"""Shared fixtures: an isolated cache per test session, and the micro family built once."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    """Skip tests marked ``cuda`` where torch sees no CUDA GPU, saying so (``-rs`` lists it)."""
    marked = [item for item in items if item.get_closest_marker("cuda")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="CUDA not available")
    for item in marked:
        item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point gpt2guard's cache at a fresh directory and keep the hub offline for the whole run.

    ``GPT2GUARD_TEST_CACHE`` may name a persistent directory to reuse builds across runs.
    """
    saved = {k: os.environ.get(k) for k in ("GPT2GUARD_CACHE", "HF_HUB_OFFLINE", "GPT2GUARD_WEIGHTS")}
    os.environ["GPT2GUARD_CACHE"] = os.environ.get("GPT2GUARD_TEST_CACHE") or str(tmp_path_factory.mktemp("cache"))
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.pop("GPT2GUARD_WEIGHTS", None)
    yield os.environ["GPT2GUARD_CACHE"]
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def micro_family(isolated_cache):
    """The micro family (two tiny sizes), built once per session; returns its directory."""
    from gpt2guard.family.build import build_family

    return build_family("micro", progress=False)


@pytest.fixture(scope="session")
def micro_tokenizer(micro_family):
    from gpt2guard.family import load_tokenizer

    return load_tokenizer("micro")

"""Fixtures for the detector tests: tiny random GPT-2 models sharing the micro tokenizer."""

from __future__ import annotations

import pytest

from detector_helpers import tiny_gpt2


@pytest.fixture(scope="session")
def tokenizer(micro_tokenizer):
    return micro_tokenizer


@pytest.fixture(scope="session")
def tiny_pair(tokenizer):
    """Two tiny models (scorer, reference) sharing the micro tokenizer, context 128."""
    from gpt2guard.detector import wrap_model

    vocab = len(tokenizer)
    return (wrap_model(tiny_gpt2(vocab, seed=1), tokenizer, "tiny-a"),
            wrap_model(tiny_gpt2(vocab, n_layer=1, n_embd=48, seed=2), tokenizer, "tiny-b"))


@pytest.fixture(scope="session")
def texts():
    """Documents of varied length, in the micro tokenizer's domain (English prose)."""
    base = ("The module provides functions for working with files and directories. It returns a list of "
            "names, sorted in arbitrary order, and raises an error when the path does not exist. ")
    return [base[:40], base, base * 2 + "Short tail.", "Numbers 12345 and symbols #$%!", base[:90] * 3]

"""Fixtures for the datasets tests."""

from __future__ import annotations

import pytest
from ds_helpers import openai_lines, write_jsonl


@pytest.fixture
def openai_dir(tmp_path):
    """A directory laid out like gpt-2-output-dataset: webtext (plain) and small-117M-k40 (gzip)."""
    d = tmp_path / "openai"
    d.mkdir()
    write_jsonl(d / "webtext.test.jsonl", openai_lines(12, start=255000))
    write_jsonl(d / "small-117M-k40.test.jsonl.gz", openai_lines(10, start=255000, n_words=60), gz=True)
    return d

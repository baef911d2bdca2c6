"""Helpers for the datasets tests: small files in OpenAI's gpt-2-output-dataset format."""

from __future__ import annotations

import gzip
import json

WORDS = ("river stone light market window garden paper silver morning engine letter forest winter "
         "harbor signal orange ladder pocket candle meadow thunder bridge copper violin").split()


def prose(i: int, n_words: int) -> str:
    """Deterministic English-looking text, different for every ``i``."""
    words = [WORDS[(i * 7 + k * (i % 5 + 3)) % len(WORDS)] for k in range(n_words)]
    return " ".join(words).capitalize() + "."


def openai_lines(n: int, start: int = 0, n_words: int = 40) -> list[dict]:
    return [{"id": start + i, "ended": i % 3 != 0, "length": n_words + 2, "text": prose(start + i, n_words)}
            for i in range(n)]


def write_jsonl(path, objs, gz: bool = False) -> None:
    data = "".join(json.dumps(o) + "\n" for o in objs).encode()
    path.write_bytes(gzip.compress(data) if gz else data)

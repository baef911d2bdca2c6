"""Sliding windows: score a document of any length with a model of fixed context.

A document of ``n`` tokens is scored as the sequence ``ids = [<|endoftext|>] + tokens`` of
length ``n + 1``: the model's prediction at ``ids[j]`` scores ``ids[j + 1]``, i.e. document
token ``j``. A window feeds ``ids[start:stop]`` (at most ``context`` tokens) to the model
and keeps the predictions at window positions ``first, ..., stop - start - 1``, which
score document tokens ``start + first, ..., stop - 1``. The last token of a document is
never fed to the model (nothing follows it), so a document of up to ``context`` tokens is
one window.

Windows after the first start ``stride = context // 2`` tokens apart and score only tokens
the previous window did not reach, so every token is scored exactly once and, outside the
first window, with at least ``context - stride + 1 > context / 2`` tokens of left context.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    """One model call's worth of a document: feed ``ids[start:stop]``, keep positions from ``first``."""

    start: int
    stop: int
    first: int

    @property
    def length(self) -> int:
        """Tokens fed to the model."""
        return self.stop - self.start

    @property
    def n_scored(self) -> int:
        """Document tokens this window scores."""
        return self.length - self.first

    @property
    def scored(self) -> range:
        """Indices of the document tokens this window scores."""
        return range(self.start + self.first, self.stop)


def plan_windows(n_tokens: int, context: int) -> list[Window]:
    """Cover a document of ``n_tokens`` tokens with overlapping windows of at most ``context``.

    Parameters
    ----------
    n_tokens : int
        Document length in tokens (without the prepended ``<|endoftext|>``).
    context : int
        The model's context window (``n_positions``), at least 2.

    Returns
    -------
    list of Window
        Empty for an empty document; one window when ``n_tokens <= context``.
    """
    if context < 2:
        raise ValueError(f"context must be at least 2 tokens, not {context}")
    if n_tokens <= 0:
        return []
    stride = context // 2
    windows = [Window(0, min(context, n_tokens), 0)]
    while windows[-1].stop < n_tokens:
        start = windows[-1].start + stride
        windows.append(Window(start, min(start + context, n_tokens), windows[-1].stop - start))
    return windows

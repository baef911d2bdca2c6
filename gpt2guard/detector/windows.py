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

:func:`iter_window_ids` cuts the same windows from a stream of token-id pieces, so a huge
document can be scored without its ids ever being held whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np


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


def iter_window_ids(pieces: Iterable[np.ndarray], context: int, eos: int
                    ) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """The windows of :func:`plan_windows` of a document given as consecutive pieces of
    token ids, each with the ids it feeds and the tokens it scores, without the document's
    length being known in advance or its ids ever held whole.

    Parameters
    ----------
    pieces : iterable of int arrays
        The document's tokens, in order, in pieces of any size (as
        :func:`~gpt2guard.detector.encode.iter_token_pieces` gives them).
    context : int
        Window size, at least 2.
    eos : int
        The ``<|endoftext|>`` id fed in front of the document.

    Yields
    ------
    window : Window
        Exactly the windows ``plan_windows(n, context)`` gives for the whole document.
    fed : ndarray of int, shape (window.length,)
        ``([eos] + tokens)[window.start:window.stop]``.
    targets : ndarray of int, shape (window.n_scored,)
        The document tokens the window scores, ``tokens[window.start + window.first:window.stop]``.

    Memory: the ids of the current piece and of the window being cut from the last one.
    A full window is yielded as soon as its ids have arrived (it cannot be the last window
    cut short); the rest once the pieces are exhausted and the length is known.
    """
    if context < 2:
        raise ValueError(f"context must be at least 2 tokens, not {context}")
    stride = context // 2
    buf, base = np.zeros(0, np.int32), 0  # buf holds document tokens base, base + 1, ...
    prev: Window | None = None

    def cut(w: Window) -> tuple[Window, np.ndarray, np.ndarray]:
        if w.start == 0:
            fed = np.concatenate([np.array([eos], buf.dtype), buf[: w.stop - 1 - base]])
        else:
            fed = buf[w.start - 1 - base: w.stop - 1 - base]
        return w, fed, buf[w.start + w.first - base: w.stop - base]

    def next_start() -> int:
        return 0 if prev is None else prev.start + stride

    for piece in pieces:
        piece = np.asarray(piece).reshape(-1)
        if not len(piece):
            continue
        buf = np.concatenate([buf, piece.astype(buf.dtype if piece.dtype.kind == "i" else np.int64, copy=False)])
        while base + len(buf) >= next_start() + context:  # a full window, not the document's last cut short
            start = next_start()
            w = Window(start, start + context, 0 if prev is None else prev.stop - start)
            yield cut(w)
            prev = w
        keep = max(next_start() - 1, 0)  # the next window feeds tokens from here on
        if keep > base:
            buf, base = buf[keep - base:], keep  # a view: windows already yielded keep their own
    n = base + len(buf)
    while n > 0 and (prev is None or prev.stop < n):
        start = next_start()
        w = Window(start, min(start + context, n), 0 if prev is None else prev.stop - start)
        yield cut(w)
        prev = w

"""Sliding windows: every token scored once, with at least half a window of left context."""

import pytest

from gpt2guard.detector.windows import Window, plan_windows


@pytest.mark.parametrize("context", [2, 3, 8, 9, 128, 1024])
@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 100, 500, 4097])
def test_every_token_once_with_half_a_window_of_context(n, context):
    windows = plan_windows(n, context)
    scored = [i for w in windows for i in w.scored]
    assert scored == list(range(n))  # exactly once, in order
    for k, w in enumerate(windows):
        assert 0 <= w.start < w.stop <= n and w.length <= context and 0 <= w.first < w.length
        # document token i is predicted from ids[start .. i] (ids[0] is <|endoftext|>): i + 1 - start
        # tokens; the least is at the window's first scored token, i = start + first
        min_context = w.first + 1
        if k == 0:
            assert w.start == 0 and w.first == 0
        else:
            assert min_context >= context / 2


def test_short_document_is_one_window_and_empty_has_none():
    assert plan_windows(128, 128) == [Window(0, 128, 0)]
    assert plan_windows(5, 128) == [Window(0, 5, 0)]
    assert plan_windows(0, 128) == []


def test_context_below_two_is_refused():
    with pytest.raises(ValueError):
        plan_windows(10, 1)

"""Progress bars: shown on a terminal, never in a pipe, a log file, or when asked for quiet.

Every long-running part of gpt2guard (family build, generation, scoring, dataset import, the
release simulation) makes its bars through :func:`progress_bar`, so one rule decides: a
bar is drawn only when the caller passed ``progress=True`` *and* the bar's stream (standard
error by default) is a terminal, or the code runs in a Jupyter kernel (where tqdm draws a
notebook widget). Redirected to a file, piped, or run under a test runner, the bars write
nothing, whatever ``progress`` says; ``progress=False`` (``--no-progress`` on the command
line) silences them on a terminal and in a notebook too.
"""

from __future__ import annotations

import sys


def in_notebook() -> bool:
    """Whether this process is a Jupyter (IPython kernel) process."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an odd IPython install: behave as outside a notebook
        return False
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def show_progress(progress: bool = True, stream=None) -> bool:
    """Whether a bar on ``stream`` (default: standard error) should be drawn.

    Parameters
    ----------
    progress : bool
        The caller's wish; False always means no bar.
    stream : file-like, optional
        Where the bar would be written.

    Returns
    -------
    bool
        True when ``progress`` and ``stream`` is a terminal, or in a Jupyter kernel.
    """
    if not progress:
        return False
    stream = sys.stderr if stream is None else stream
    try:
        if stream is not None and stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return in_notebook()


def progress_bar(iterable=None, *, progress: bool = True, stream=None, **kwargs):
    """A tqdm bar (a notebook widget in Jupyter) that is disabled unless :func:`show_progress`.

    Parameters
    ----------
    iterable : iterable, optional
        Wrapped as by ``tqdm(iterable)``; else call ``update`` on the bar.
    progress : bool
        The caller's wish (``--progress/--no-progress``).
    stream : file-like, optional
        Where to draw (default: standard error).
    **kwargs
        Passed to tqdm (``total``, ``desc``, ``unit``, ``initial``, ``leave``...).
    """
    from tqdm.auto import tqdm

    if stream is not None:
        kwargs["file"] = stream
    return tqdm(iterable, disable=not show_progress(progress, stream), **kwargs)

"""A self-contained HTML page that shows, GLTR-style, how predictable every token was.

Each token is coloured by its 0-based rank under the scorer: top 10 green (``r10``), top 100
yellow (``r100``), top 1000 red (``r1000``), the rest purple (``rrest``). Hovering shows the
token's probability, rank and the scorer's top-5 alternatives at that position. Runs of
``window`` tokens with the lowest mean log-rank (the most predictable, i.e. most
machine-looking stretches) are outlined (class ``hot``). Every piece of document text is
HTML-escaped.

The top alternatives need the full next-token distribution, which :class:`TokenStats` does
not keep: :func:`top_alternatives` runs one extra forward pass per sliding window (the
engine's windows, so each position sees the context it was scored with), for the documents
being rendered only, keeping just the top-k ids and probabilities of each position (memory
bounded by one window's logits).

A page of millions of tokens is useless and huge: :func:`html_report` renders at most
``max_tokens`` tokens of each document when asked (``gpt2guard score --html`` renders at most
``--html-max-tokens``, default 20,000, and scores no more for the page), and says on the page
how many of the document's tokens are shown.
"""

from __future__ import annotations

import html
import math

import numpy as np

BUCKETS = (("r10", 10, "top 10"), ("r100", 100, "top 100"), ("r1000", 1000, "top 1000"), ("rrest", None, "rest"))
STYLE = """
body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;line-height:1.9}
.doc{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1.5em 0}
.tokens{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:14px}
.tok{border-radius:2px}
.r10{background:#b6f2b0}.r100{background:#fbef9a}.r1000{background:#f9b1a9}.rrest{background:#d8b8f5}
.hot{outline:2px solid #333;outline-offset:-1px}
.legend span{padding:0 .5em;margin-right:.5em}
.verdict-machine{color:#a00}.verdict-human{color:#060}.verdict-abstain{color:#666}
"""


def rank_class(rank: int) -> str:
    """CSS class of a 0-based rank (GLTR buckets)."""
    for name, edge, _ in BUCKETS:
        if edge is None or rank < edge:
            return name
    return BUCKETS[-1][0]


def top_alternatives(loaded, token_ids: np.ndarray, k: int = 5, *, context: int | None = None,
                     linear: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` next-token ids and probabilities before each document token.

    The document (with ``<|endoftext|>`` in front) goes through the scoring engine's sliding
    windows (:func:`~gpt2guard.detector.windows.plan_windows`) of ``context`` tokens (the
    scorer's; default the model's window) on the ``linear`` backend, so every position sees
    the same context as when it was scored.

    Returns
    -------
    ids : ndarray of int64, shape (n, k)
    probs : ndarray of float32, shape (n, k)
    """
    import torch

    from gpt2guard.detector.models import eos_id
    from gpt2guard.detector.scoring import engine_backend
    from gpt2guard.detector.windows import plan_windows
    from gpt2guard.family.linear import linear_backend

    n = len(token_ids)
    ids_out = np.zeros((n, k), np.int64)
    probs_out = np.zeros((n, k), np.float32)
    padded = np.concatenate([[eos_id(loaded)], np.asarray(token_ids, np.int64)])
    device = next(loaded.model.parameters()).device
    with torch.inference_mode(), linear_backend(loaded.model, engine_backend(loaded, linear)):
        for w in plan_windows(n, context or loaded.n_positions):
            x = torch.from_numpy(padded[w.start:w.stop])[None].to(device)  # (1, L)
            logits = loaded.model(x).logits[0, w.first:].float()  # (n_scored, V)
            top = torch.topk(torch.softmax(logits, -1), k, dim=-1)
            ids_out[w.start + w.first:w.stop] = top.indices.cpu().numpy()
            probs_out[w.start + w.first:w.stop] = top.values.cpu().numpy()
    return ids_out, probs_out


def hot_mask(rank: np.ndarray, window: int = 16, n_spans: int = 3) -> np.ndarray:
    """Tokens inside the ``n_spans`` non-overlapping windows with the lowest mean log-rank."""
    n = len(rank)
    mask = np.zeros(n, bool)
    if n < window or window < 1:
        return mask
    lr = np.log1p(rank.astype(np.float64))
    means = np.convolve(lr, np.ones(window) / window, mode="valid")  # means[i] = window starting at i
    for i in np.argsort(means, kind="stable"):
        if n_spans == 0:
            break
        if not mask[i:i + window].any():
            mask[i:i + window] = True
            n_spans -= 1
    return mask


def _token_text(tokenizer, tid: int) -> str:
    return tokenizer.decode([int(tid)], clean_up_tokenization_spaces=False)


def render_document(verdict, stats, tokenizer, alternatives=None, window: int = 16) -> str:
    """HTML ``<section>`` of one document: verdict line, then the coloured tokens."""
    from gpt2guard.detector.verdict import format_probability

    head = (f'<h2>{html.escape(str(verdict.name if verdict.name is not None else verdict.index))}</h2>'
            f'<p class="verdict-{verdict.decision}"><b>{verdict.decision}</b> &mdash; {html.escape(verdict.reason)}'
            + (f"; machine probability {format_probability(verdict.probability, verdict.probability_threshold)}"
               if verdict.probability is not None else "")
            + f"; {verdict.n_tokens} tokens, {verdict.n_windows} windows; method {html.escape(verdict.method)}, "
              f"scorer {html.escape(verdict.scorer)}"
            + (f"; flags: {html.escape(', '.join(verdict.flags))}" if verdict.flags else "") + "</p>")
    if not stats.scorable:
        return f'<section class="doc">{head}<p>(nothing to show)</p></section>'
    if stats.n_tokens < verdict.n_tokens:
        head += (f'<p class="cut">Showing the first {stats.n_tokens:,} of {verdict.n_tokens:,} tokens; '
                 "the verdict judges them all.</p>")
    hot = hot_mask(stats.rank, window)
    parts = []
    for i, (tid, rank, logp) in enumerate(zip(stats.token_ids, stats.rank, stats.logp)):
        tip = f"p={math.exp(float(logp)):.4f} rank={int(rank)}"
        if alternatives is not None:
            ids, probs = alternatives
            tip += " | top: " + ", ".join(f"{_token_text(tokenizer, a)!r} {p:.3f}" for a, p in zip(ids[i], probs[i]))
        cls = "tok " + rank_class(int(rank)) + (" hot" if hot[i] else "")
        parts.append(f'<span class="{cls}" title="{html.escape(tip, quote=True)}">'
                     f'{html.escape(_token_text(tokenizer, tid))}</span>')
    return f'<section class="doc">{head}<div class="tokens">{"".join(parts)}</div></section>'


def render_page(sections: list[str], title: str = "gpt2guard report") -> str:
    """A complete HTML page (inline CSS, no external resources) around document sections."""
    legend = "".join(f'<span class="{name}">{label}</span>' for name, _, label in BUCKETS)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="legend">Token rank under the scorer: {legend} '
            f'<span class="hot">most machine-like span</span></p>{"".join(sections)}</body></html>\n')


def first_tokens(stats, n: int):
    """``stats`` (a TokenStats) cut to its first ``n`` tokens: views of its arrays, no copy."""
    from dataclasses import fields, replace

    if stats.n_tokens <= n:
        return stats
    return replace(stats, **{f.name: getattr(stats, f.name)[:n] for f in fields(stats)
                             if isinstance(getattr(stats, f.name), np.ndarray)})


def html_sections(verdicts, stats, loaded, *, k: int = 5, window: int = 16, context: int | None = None,
                  linear: str = "auto", max_tokens: int | None = None) -> list[str]:
    """The ``<section>`` of each document (see :func:`html_report`), to render in pieces."""
    sections = []
    for v, s in zip(verdicts, stats):
        if max_tokens is not None:
            s = first_tokens(s, max_tokens)
        alts = top_alternatives(loaded, s.token_ids, k, context=context, linear=linear) if s.scorable else None
        sections.append(render_document(v, s, loaded.tokenizer, alts, window))
    return sections


def html_report(verdicts, stats, loaded, *, k: int = 5, window: int = 16, title: str = "gpt2guard report",
                context: int | None = None, linear: str = "auto", max_tokens: int | None = None) -> str:
    """Render documents' verdicts and token statistics under ``loaded`` (a LoadedModel);
    ``context`` and ``linear`` as the :class:`~gpt2guard.detector.scoring.Scorer` used.
    With ``max_tokens``, each document shows its first ``max_tokens`` tokens only (and says
    so); a record already shorter than its verdict's token count says so too."""
    return render_page(html_sections(verdicts, stats, loaded, k=k, window=window, context=context, linear=linear,
                                     max_tokens=max_tokens), title)

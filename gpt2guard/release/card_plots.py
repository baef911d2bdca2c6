"""The plots of a model card, drawn with matplotlib (Agg backend) from an evaluation dict.

One size: the flagged rate of each sample set, AUROC by length bucket (both with
confidence-interval error bars), the transfer matrix as an annotated heatmap, perplexity by
size. Family: detectability and perplexity by stage, and the latest transfer matrix. A plot
whose data is missing is not drawn (the card then says "not measured").
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from gpt2guard.release.card_detect import all_row, by_length, set_rows
from gpt2guard.release.card_format import bucket_order, fpr_label, get, is_num, matrix_cell, sampling_label, valid_ci
from gpt2guard.release.card_quant import detector_fpr, previous_size

PLOT_NAMES = ("detection_by_sampling", "auroc_by_length", "transfer", "perplexity")
FAMILY_PLOT_NAMES = ("family_detectability", "family_perplexity", "transfer")
COLOURS = {"this": "#d95f02", "prev": "#7570b3", "other": "#999999", "main": "#1b9e77", "held": "#d62728"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    _pyplot().close(fig)
    return buf.getvalue()


def _yerr(values: list, cis: list):
    """Asymmetric error bars; zero length where an interval is missing."""
    lo = [v - c[0] if valid_ci(c) else 0.0 for v, c in zip(values, cis)]
    hi = [c[1] - v if valid_ci(c) else 0.0 for v, c in zip(values, cis)]
    return [lo, hi]


def _bars(labels, values, cis, *, title, ylabel, ylim=None, colours=None, fmt="{:.2f}") -> bytes:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels) + 2), 3.6), dpi=100)
    x = list(range(len(labels)))
    ax.bar(x, values, yerr=_yerr(values, cis), capsize=4, color=colours or COLOURS["main"])
    for i, v in enumerate(values):
        ax.annotate(fmt.format(v), (i, v), textcoords="offset points", xytext=(8, 2), fontsize=8)
    ax.set_xticks(x, labels, rotation=20 if len(labels) > 4 else 0)
    if ylim:
        ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    return _png(fig)


def detection_by_sampling_png(evaluation: dict) -> bytes | None:
    """The flagged rate of each of this size's sample sets, with CI error bars (the figures
    of the card's detection table)."""
    rows = [r for r in set_rows(evaluation) if is_num(r["flagged"])]
    if not rows:
        return None
    label = f"flagged at the {fpr_label(detector_fpr(evaluation))} FPR threshold"
    return _bars([sampling_label(r["sampling"]) for r in rows], [r["flagged"] for r in rows],
                 [r["flagged_ci"] for r in rows], ylim=(0, 1.05),
                 title=f"{get(evaluation, 'model', 'size', default='')}: {label}, by sampling", ylabel=label)


def auroc_by_length_png(evaluation: dict) -> bytes | None:
    """AUROC for each length bucket, with CI error bars."""
    groups = by_length(evaluation) or {}
    groups = {k: groups[k] for k in sorted(groups, key=bucket_order)
              if isinstance(groups[k], dict) and is_num(groups[k].get("auroc"))}
    if not groups:
        return None
    return _bars(list(groups), [m["auroc"] for m in groups.values()], [m.get("auroc_ci") for m in groups.values()],
                 ylim=(0, 1.05), title=f"{get(evaluation, 'model', 'size', default='')}: AUROC by length (tokens)",
                 ylabel="AUROC", fmt="{:.3f}")


def transfer_png(evaluation: dict) -> bytes | None:
    """The transfer AUROC matrix as a heatmap with the value (or n/a) written in each cell."""
    tr = get(evaluation, "transfer")
    sizes = (tr or {}).get("sizes") if isinstance(tr, dict) else None
    matrix = (tr or {}).get("auroc") if isinstance(tr, dict) else None
    if not sizes or not isinstance(matrix, list):
        return None
    import numpy as np

    n = len(sizes)
    grid = np.array([[v if is_num(v := matrix_cell(matrix, i, j)) else np.nan for j in range(n)] for i in range(n)],
                    dtype=float)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * n + 2.5, 1.0 * n + 1.8), dpi=100)
    low = float(np.nanmin(grid)) if not np.isnan(grid).all() else 0.5
    im = ax.imshow(np.ma.masked_invalid(grid), vmin=min(0.5, low), vmax=1.0, cmap="viridis")
    for i in range(n):
        for j in range(n):
            v = grid[i, j]
            ax.text(j, i, "n/a" if np.isnan(v) else f"{v:.3f}", ha="center", va="center", fontsize=9,
                    color="black" if np.isnan(v) or v > 0.8 else "white")
    ax.set_xticks(range(n), [str(s) for s in sizes])
    ax.set_yticks(range(n), [str(s) for s in sizes])
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title("Transfer AUROC", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _png(fig)


def perplexity_png(evaluation: dict) -> bytes | None:
    """Perplexity of each size evaluated so far (this size and the previous release coloured)."""
    ppl = {s: p for s, p in (get(evaluation, "perplexity", default={}) or {}).items()
           if isinstance(p, dict) and is_num(p.get("ppl"))}
    if not ppl:
        return None
    size, prev = get(evaluation, "model", "size"), previous_size(evaluation)
    colours = [COLOURS["this"] if s == size else COLOURS["prev"] if s == prev else COLOURS["other"] for s in ppl]
    labels = [f"{s}\n(this size)" if s == size else f"{s}\n(previous release)" if s == prev else s for s in ppl]
    return _bars(labels, [p["ppl"] for p in ppl.values()], [p.get("ci") for p in ppl.values()],
                 title="Perplexity on human text (lower is better)", ylabel="perplexity", colours=colours,
                 fmt="{:.1f}")


def family_detectability_png(evaluations: list[dict]) -> bytes | None:
    """Per size (stage after stage): AUROC and the flagged rate of all its samples, with CI
    error bars (the figures of the family card's table)."""
    totals = [all_row(e) or {} for e in evaluations]
    if not any(is_num(t.get("auroc")) or is_num(t.get("flagged")) for t in totals):
        return None
    plt = _pyplot()
    labels = [f"{get(e, 'stage', 'index', default='?')} {get(e, 'model', 'size', default='?')}" for e in evaluations]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(labels) + 2), 3.6), dpi=100)
    flagged = f"flagged at the {'/'.join(sorted({fpr_label(detector_fpr(e)) for e in evaluations}))} FPR threshold"
    for label, marker, key in (("AUROC", "o", "auroc"), (flagged, "s", "flagged")):
        pts = [(i, t[key], t.get(key + "_ci")) for i, t in enumerate(totals) if is_num(t.get(key))]
        if pts:
            xs, ys, cis = zip(*pts)
            ax.errorbar(xs, ys, yerr=_yerr(list(ys), list(cis)), marker=marker, capsize=4, label=label)
    for i, e in enumerate(evaluations):
        if get(e, "stage", "decision") != "release":
            ax.axvspan(i - 0.4, i + 0.4, color=COLOURS["held"], alpha=0.12)
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylim(0, 1.05)
    ax.set_title("Detectability by size (shaded: not released)", fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    return _png(fig)


def family_perplexity_png(evaluations: list[dict]) -> bytes | None:
    """Each stage's size's perplexity, with CI error bars; held stages in red."""
    rows = [(f"{get(e, 'stage', 'index', default='?')} {get(e, 'model', 'size', default='?')}",
             get(e, "perplexity", get(e, "model", "size"), default={}), get(e, "stage", "decision"))
            for e in evaluations]
    rows = [r for r in rows if isinstance(r[1], dict) and is_num(r[1].get("ppl"))]
    if not rows:
        return None
    return _bars([r[0] for r in rows], [r[1]["ppl"] for r in rows], [r[1].get("ci") for r in rows],
                 title="Perplexity by stage (red: not released)", ylabel="perplexity", fmt="{:.1f}",
                 colours=[COLOURS["main"] if r[2] == "release" else COLOURS["held"] for r in rows])


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _save(pngs: dict[str, bytes | None], out_dir, names) -> dict[str, Path]:
    out = Path(out_dir)
    written = {}
    for name in names:
        path = out / f"{name}.png"
        if pngs.get(name):
            _atomic_write_bytes(path, pngs[name])
            written[name] = path
        elif path.exists():  # a stale plot from an earlier card would contradict this one
            path.unlink()
    return written


def write_plots(evaluation: dict, out_dir) -> dict[str, Path]:
    """Draw one size's plots into ``out_dir``; returns plot name -> path of those drawn."""
    pngs = {"detection_by_sampling": detection_by_sampling_png(evaluation),
            "auroc_by_length": auroc_by_length_png(evaluation),
            "transfer": transfer_png(evaluation), "perplexity": perplexity_png(evaluation)}
    return _save(pngs, out_dir, PLOT_NAMES)


def write_family_plots(evaluations: list[dict], out_dir) -> dict[str, Path]:
    """Draw the family plots (and the latest stage's transfer heatmap) into ``out_dir``."""
    with_transfer = [e for e in evaluations if isinstance(get(e, "transfer"), dict)]
    pngs = {"family_detectability": family_detectability_png(evaluations),
            "family_perplexity": family_perplexity_png(evaluations),
            "transfer": transfer_png(with_transfer[-1]) if with_transfer else None}
    return _save(pngs, out_dir, FAMILY_PLOT_NAMES)

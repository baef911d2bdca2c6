"""The detection figures of one size's samples, each from one computation.

A card speaks of one size (``model.size`` of the evaluation it is given; see
:func:`~gpt2guard.release.card_size.size_view` for a stage of several sizes). Every flagged
rate it shows is the share of a sample set's test documents that the released detector
flags at its calibrated threshold, documents it abstains on counted as *not flagged*: the
rate the detectability gate judges (``detection.by_size_sampling`` of the evaluation). The
row of all of a size's samples adds up the counts of those same cells, so it cannot
disagree with them. AUROC is threshold-free and leaves abstentions out. Nothing here is
recomputed with another threshold or another treatment of abstentions, so one set of
samples has one flagged rate wherever it appears.
"""

from __future__ import annotations

from gpt2guard.release.card_format import get, is_num, valid_ci


def size_of(evaluation: dict) -> str | None:
    """The size a card of ``evaluation`` is about."""
    size = get(evaluation, "model", "size")
    return None if size is None else str(size)


def stage_sizes(evaluation: dict) -> list[str]:
    """Every size the evaluation's stage measured (``stage.sizes``, else the card's size)."""
    sizes = get(evaluation, "stage", "sizes") or get(evaluation, "model", "stage_sizes")
    if isinstance(sizes, list) and sizes:
        return [str(s) for s in sizes]
    return [s for s in [size_of(evaluation)] if s]


def pooled_stage(evaluation: dict) -> bool:
    """Whether the stage's overall and by-length figures mix this size with others."""
    return stage_sizes(evaluation) != [size_of(evaluation)]


def _sample_set(evaluation: dict, size: str, method: str) -> dict:
    sets = [s for s in get(evaluation, "data", "samples", default=[]) or [] if isinstance(s, dict)]
    for s in sets:
        if s.get("size") == size and s.get("sampling") == method and s.get("split", "test") == "test":
            return s
    return {}


def set_rows(evaluation: dict) -> list[dict]:
    """One row per sampling method of this size's test samples.

    Returns
    -------
    list of dict
        ``sampling``, ``set`` and ``sha256`` (the sample set, or None when the evaluation
        does not name it), ``n`` (test documents, abstentions included), ``n_abstain``,
        ``n_human``, ``auroc`` and ``auroc_ci``, ``flagged`` and ``flagged_ci`` (share flagged
        at the calibrated threshold, abstentions not flagged), ``n_flagged`` and ``fpr``
        (share of the human test documents flagged at that threshold).
    """
    size = size_of(evaluation)
    cells = get(evaluation, "detection", "by_size_sampling", size, default={}) if size else {}
    rows = []
    for method, m in (cells if isinstance(cells, dict) else {}).items():
        if not isinstance(m, dict):
            continue
        scored = m.get("n_machine")
        abstain = m.get("n_abstain") if is_num(m.get("n_abstain")) else 0
        n = int(scored + abstain) if is_num(scored) else None
        flagged = m.get("tpr") if is_num(m.get("tpr")) else None
        s = _sample_set(evaluation, size, method)
        rows.append({"sampling": str(method), "set": s.get("set"), "sha256": s.get("sha256"),
                     "split": s.get("split", "test"), "n": n, "n_abstain": int(abstain), "n_human": m.get("n_human"),
                     "auroc": m.get("auroc"), "auroc_ci": m.get("auroc_ci") if valid_ci(m.get("auroc_ci")) else None,
                     "flagged": flagged, "flagged_ci": m.get("tpr_ci") if valid_ci(m.get("tpr_ci")) else None,
                     "n_flagged": round(flagged * n) if flagged is not None and n is not None else None,
                     "fpr": m.get("fpr") if is_num(m.get("fpr")) else None})
    return rows


def pooled_reason(evaluation: dict) -> str:
    """Why the AUROC of all of this size's samples is not recorded."""
    others = [s for s in stage_sizes(evaluation) if s != size_of(evaluation)]
    return (f"the stage measured AUROC over the samples of {', '.join(stage_sizes(evaluation))} together, not of "
            f"{size_of(evaluation)} alone; see each sample set") if others else "absent from the evaluation"


def all_row(evaluation: dict, rows: list[dict] | None = None) -> dict | None:
    """All of this size's test samples: the counts of :func:`set_rows` added up.

    The flagged rate is flagged documents over documents; its interval is the one set's when
    there is one set, else not recorded. AUROC is the stage's overall AUROC when the stage
    has no other size (then it is measured on exactly these samples), else None.
    """
    rows = set_rows(evaluation) if rows is None else rows
    if not rows:
        return None
    counted = all(r["n"] is not None and r["n_flagged"] is not None for r in rows)
    n = sum(r["n"] for r in rows) if counted else None
    n_flagged = sum(r["n_flagged"] for r in rows) if counted else None
    overall = get(evaluation, "detection", "overall", default={})
    own = not pooled_stage(evaluation) and isinstance(overall, dict)
    humans = {r["n_human"] for r in rows if is_num(r["n_human"])}
    fprs = [r["fpr"] for r in rows if r["fpr"] is not None]
    return {"sampling": "all", "set": None, "sha256": None, "split": "test", "n": n,
            "n_abstain": sum(r["n_abstain"] for r in rows), "n_human": humans.pop() if len(humans) == 1 else None,
            "auroc": overall.get("auroc") if own else None,
            "auroc_ci": overall.get("auroc_ci") if own and valid_ci(overall.get("auroc_ci")) else None,
            "flagged": n_flagged / n if n else None, "n_flagged": n_flagged,
            "flagged_ci": rows[0]["flagged_ci"] if len(rows) == 1 else None,
            "fpr": fprs[0] if fprs else None}


def worst_row(evaluation: dict) -> dict | None:
    """The sample set the detector flags least often (what the detectability gate judges)."""
    rows = [r for r in set_rows(evaluation) if r["flagged"] is not None]
    return min(rows, key=lambda r: r["flagged"]) if rows else None


def human_fpr(evaluation: dict) -> float | None:
    """Share of the human test documents flagged at the calibrated threshold."""
    fprs = [r["fpr"] for r in set_rows(evaluation) if r["fpr"] is not None]
    if fprs:
        return fprs[0]
    value = get(evaluation, "detection", "overall", "fpr")
    return value if is_num(value) else None


def by_length(evaluation: dict) -> dict | None:
    """AUROC by length bucket, when the stage measured it on this size's samples only."""
    groups = get(evaluation, "detection", "by_length")
    if pooled_stage(evaluation) or not isinstance(groups, dict) or not groups:
        return None
    return groups

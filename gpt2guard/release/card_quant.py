"""The "Quantitative analyses" of a model card: gates, detection by sampling method and by
length with confidence intervals, the size-transfer matrix, and perplexity by size.

Each function takes an evaluation dict (``gpt2guard.release.evaluation/1``) and returns
Markdown lines; anything missing from the evaluation becomes ``not measured: <reason>``.
"""

from __future__ import annotations

from gpt2guard.release.card_format import (
    ABSENT, bucket_order, fmt, fmt_ci, fpr_keys, fpr_label, get, image, is_num, matrix_cell, not_measured,
    sampling_label, table,
)

RESULT = {True: "pass", False: "**FAIL**"}


def detector_fpr(evaluation: dict) -> float:
    """The false-positive rate the released detector is calibrated to (0.01 when not recorded)."""
    fpr = get(evaluation, "detector", "fpr")
    return float(fpr) if is_num(fpr) else 0.01


def released_before(evaluation: dict) -> list[str]:
    """Sizes released at earlier stages."""
    return [str(s) for s in get(evaluation, "released_before", default=[])]


def previous_size(evaluation: dict) -> str | None:
    """The size this one is compared with: ``quality_gain.vs``, else the last size released before."""
    return get(evaluation, "quality_gain", "vs") or (released_before(evaluation) or [None])[-1]


def _group_keys(groups: dict) -> list[str]:
    keys: list[str] = []
    for m in groups.values():
        keys += [k for k in fpr_keys(m) if k not in keys]
    return sorted(keys, key=lambda k: -float(k.split("@")[1]))


def detection_table(groups: dict, label: str, name=str) -> list[str]:
    """One row per group (sampling method, length bucket...) of detection metrics with CIs."""
    keys = _group_keys(groups)
    header = [label, "human docs", "machine docs", "abstained", "AUROC [CI]"] + \
        [f"TPR@{fpr_label(k)} FPR [CI]" for k in keys]
    rows = []
    for g, m in groups.items():
        m = m if isinstance(m, dict) else {}
        rows.append([name(g), fmt(m.get("n_human"), "int"), fmt(m.get("n_machine"), "int"),
                     fmt(m.get("n_abstain"), "int"), fmt_ci(m.get("auroc"), m.get("auroc_ci"), "auroc")]
                    + [fmt_ci(m.get(k), m.get(k + "_ci"), "pct") for k in keys])
    return table(header, rows, right={1, 2, 3})


def gate_row(gate: dict) -> list[str]:
    """Name, metric, value [CI], threshold, required, result and evidence of one gate."""
    threshold = f"{gate.get('op', '')} {fmt(gate.get('threshold'))}".strip()
    evidence = ", ".join(f"`{e}`" for e in gate.get("evidence") or []) or "none recorded"
    note = f" ({gate['note']})" if gate.get("note") else ""
    return [str(gate.get("name", "unnamed")), str(gate.get("metric", "")), fmt_ci(gate.get("value"), gate.get("ci")),
            threshold, "yes" if gate.get("required", True) else "no",
            RESULT.get(gate.get("passed"), "not evaluated") + note, evidence]


def gates_lines(evaluation: dict) -> list[str]:
    """The table of release gates, or why there is none."""
    gates = [g for g in get(evaluation, "gates", default=[]) if isinstance(g, dict)]
    if not gates:
        return [f"Release gates: {not_measured('no gates recorded for this stage')}.", ""]
    failed = [g.get("name", "unnamed") for g in gates if g.get("passed") is False and g.get("required", True)]
    summary = (f"{sum(g.get('passed') is True for g in gates)} of {len(gates)} gates passed"
               + (f"; required gates failed: {', '.join(failed)}" if failed else "") + ".")
    return table(["gate", "metric", "value [CI]", "threshold", "required", "result", "evidence"],
                 [gate_row(g) for g in gates]) + ["", summary, ""]


def detection_lines(evaluation: dict, plots: dict | None = None) -> list[str]:
    """Overall detection, then by sampling method and by length bucket, with plots."""
    det = get(evaluation, "detection", default={})
    fpr = detector_fpr(evaluation)
    lines = ["### Detection", ""]
    overall = det.get("overall") if isinstance(det.get("overall"), dict) else None
    if overall is None:
        return lines + [f"Detection of this size's samples: {not_measured()}.", ""]
    lines += detection_table({"all samples": overall}, "samples") + [""]
    threshold = get(evaluation, "detector", "threshold", default=overall.get("threshold"))
    lines += [f"At the detector's threshold {fmt(threshold)} (calibrated to {fpr_label(fpr)} FPR): accuracy "
              f"{fmt(overall.get('accuracy'), 'pct')}, TPR {fmt(overall.get('tpr'), 'pct')}, "
              f"measured FPR {fmt(overall.get('fpr'), 'pct')}.", ""]
    lines += ["#### By sampling method", ""]
    by_sampling = det.get("by_sampling") or {}
    if by_sampling:
        lines += detection_table(by_sampling, "sampling", sampling_label) + [""]
        lines += image(plots, "detection_by_sampling", f"TPR at {fpr_label(fpr)} FPR by sampling method")
    else:
        lines += [f"By sampling method: {not_measured()}.", ""]
    lines += ["#### By length (tokens)", ""]
    by_length = det.get("by_length") or {}
    if by_length:
        ordered = {k: by_length[k] for k in sorted(by_length, key=bucket_order)}
        lines += detection_table(ordered, "length bucket") + [""]
        lines += image(plots, "auroc_by_length", "AUROC by length bucket")
    else:
        lines += [f"By length: {not_measured()}.", ""]
    return lines


def transfer_reason(evaluation: dict) -> str:
    """Why a transfer matrix is absent."""
    if not released_before(evaluation):
        return "the first stage has samples of one size only, and transfer needs two"
    return ABSENT


def _matrix_table(sizes: list, matrix: list, kind: str) -> list[str]:
    rows = [[f"**{a}**"] + [fmt(matrix_cell(matrix, i, j), kind, "cell not evaluated") for j in range(len(sizes))]
            for i, a in enumerate(sizes)]
    return table(["trained on \\ tested on"] + [str(s) for s in sizes], rows)


def transfer_summary(transfer: dict) -> str | None:
    """Mean AUROC on the diagonal (same size) against off it (other sizes)."""
    sizes, au = transfer.get("sizes") or [], transfer.get("auroc") or []
    same, other = [], []
    for i in range(len(sizes)):
        for j in range(len(sizes)):
            v = matrix_cell(au, i, j)
            if is_num(v):
                (same if i == j else other).append(v)
    if not same or not other:
        return None
    spread = f" (from {fmt(min(other), 'auroc')} to {fmt(max(other), 'auroc')})" if min(other) < max(other) else ""
    return (f"Trained and tested on the same size, mean AUROC is {fmt(sum(same) / len(same), 'auroc')}; "
            f"across sizes it is {fmt(sum(other) / len(other), 'auroc')}{spread}.")


def transfer_lines(evaluation: dict, plots: dict | None = None) -> list[str]:
    """The transfer matrices (row: trained on, column: tested on)."""
    lines = ["### Transfer across sizes", ""]
    tr = get(evaluation, "transfer")
    if not isinstance(tr, dict) or not tr.get("sizes"):
        return lines + [f"Transfer matrix: {not_measured(transfer_reason(evaluation))}.", ""]
    for key in [k for k in tr if k != "sizes" and isinstance(tr[k], list)]:
        label = "AUROC" if key == "auroc" else (f"TPR@{fpr_label(key)} FPR" if key.startswith("tpr@") else key)
        lines += [f"{label} of a detector trained on the row's size, tested on the column's size:", ""]
        lines += _matrix_table(tr["sizes"], tr[key], "auroc" if key == "auroc" else "pct") + [""]
    summary = transfer_summary(tr)
    lines += ([summary, ""] if summary else [])
    return lines + image(plots, "transfer", "Transfer AUROC heatmap")


def quality_gain_value(evaluation: dict) -> str:
    """``0.206 [0.18, 0.23]``, or why the quality gain is not measured."""
    qg = get(evaluation, "quality_gain", default={})
    reason = "no earlier released size to compare with" if not released_before(evaluation) else ABSENT
    value = qg.get("value") if isinstance(qg, dict) else None
    return fmt_ci(value, get(evaluation, "quality_gain", "ci"), reason=reason)


def quality_gain_text(evaluation: dict) -> str:
    """``Quality gain over small: 0.206 [0.18, 0.23] ...`` or why it is not measured."""
    vs = get(evaluation, "quality_gain", "vs")
    if not is_num(get(evaluation, "quality_gain", "value")):
        return f"Quality gain: {quality_gain_value(evaluation)}."
    return f"Quality gain over {vs or 'the previous size'}: {quality_gain_value(evaluation)} " \
           "(relative reduction in perplexity on human text)."


def perplexity_lines(evaluation: dict, plots: dict | None = None) -> list[str]:
    """Perplexity of every size evaluated so far, marking this size and the previous release."""
    lines = ["### Perplexity", ""]
    ppl = get(evaluation, "perplexity", default={})
    size, prev = get(evaluation, "model", "size"), previous_size(evaluation)
    if not ppl:
        return lines + [f"Perplexity: {not_measured()}.", quality_gain_text(evaluation), ""]
    rows = []
    for s, p in ppl.items():
        p = p if isinstance(p, dict) else {}
        role = "this size" if s == size else ("previous release" if s == prev else "")
        rows.append([str(s), role, fmt_ci(p.get("ppl"), p.get("ci"), "ppl"), fmt(p.get("n_docs"), "int"),
                     fmt(p.get("n_tokens"), "int")])
    lines += table(["size", "role", "perplexity [CI]", "documents", "tokens"], rows, right={3, 4}) + [""]
    lines += [quality_gain_text(evaluation), ""]
    return lines + image(plots, "perplexity", "Perplexity by size")


def quantitative_lines(evaluation: dict, plots: dict | None = None) -> list[str]:
    """The whole "Quantitative analyses" section body."""
    lines = ["### Release gates", ""] + gates_lines(evaluation)
    lines += detection_lines(evaluation, plots) + transfer_lines(evaluation, plots)
    lines += perplexity_lines(evaluation, plots)
    known = {"detection_by_sampling", "auroc_by_length", "transfer", "perplexity"}
    for name in [n for n in (plots or {}) if n not in known]:
        lines += image(plots, name, name.replace("_", " "))
    return lines

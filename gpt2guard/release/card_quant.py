"""The "Quantitative analyses" of a model card: gates, detection by sample set and AUROC by
length with confidence intervals, the attack table and watermark figures when the stage
measured them (:mod:`~gpt2guard.release.card_attacks`), the size-transfer matrix, and
perplexity by size.

Each function takes an evaluation dict (``gpt2guard.release.evaluation/1``) and returns
Markdown lines; anything missing from the evaluation becomes ``not measured: <reason>``.
"""

from __future__ import annotations

from gpt2guard.release.card_attacks import attack_lines
from gpt2guard.release.card_detect import (
    all_row, by_length, human_fpr, pooled_reason, pooled_stage, set_rows, stage_sizes,
)
from gpt2guard.release.card_format import (
    ABSENT, bucket_order, fmt, fmt_ci, fpr_label, get, image, is_num, matrix_cell, not_measured, sampling_label, sha,
    table,
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


def set_label(row: dict) -> str:
    """A sample set's name as code, or ``all <size> samples``/the method when it has no name."""
    return f"`{row['set']}`" if row.get("set") else sampling_label(row["sampling"])


def detection_rows_table(rows: list[dict], extra: dict | None = None) -> list[str]:
    """One row per sample set: its digest, documents, abstentions, AUROC and flagged rate."""
    header = ["sample set", "sampling", "sha256", "documents", "abstained", "AUROC [CI]",
              "flagged at threshold [CI]"]
    body = []
    for r in rows:
        label = (extra or {}).get(id(r)) or set_label(r)
        digest = sha(r.get("sha256")) if r.get("set") or r["sampling"] != "all" else f"{len(rows) - 1} sets above"
        body.append([label, sampling_label(r["sampling"]), digest, fmt(r["n"], "int"),
                     fmt(r["n_abstain"], "int"),
                     fmt_ci(r["auroc"], r["auroc_ci"], "auroc", r.get("auroc_reason", ABSENT)),
                     fmt_ci(r["flagged"], r["flagged_ci"], "pct")])
    return table(header, body, right={3, 4})


def length_table(groups: dict) -> list[str]:
    """AUROC per length bucket, with the documents in each."""
    rows = []
    for g, m in groups.items():
        m = m if isinstance(m, dict) else {}
        rows.append([str(g), fmt(m.get("n_human"), "int"), fmt(m.get("n_machine"), "int"),
                     fmt(m.get("n_abstain"), "int"), fmt_ci(m.get("auroc"), m.get("auroc_ci"), "auroc")])
    return table(["length bucket", "human docs", "machine docs", "abstained", "AUROC [CI]"], rows, right={1, 2, 3})


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
    """Detection of this size's samples, one row per sample set and one for all of them,
    then AUROC by length; every flagged rate from :mod:`~gpt2guard.release.card_detect`."""
    fpr = detector_fpr(evaluation)
    size = get(evaluation, "model", "size", default="this size")
    lines = ["### Detection", ""]
    rows = set_rows(evaluation)
    if not rows:
        return lines + [f"Detection of this size's samples: {not_measured()}.", ""]
    total = all_row(evaluation, rows)
    total["auroc_reason"] = pooled_reason(evaluation)
    threshold = get(evaluation, "detector", "threshold")
    lines += [f"Each row is one set of {size}'s test samples against the {fmt(total['n_human'], 'int')} human test "
              f"documents. *Flagged* is the share of the set's documents whose score is above the released detector's "
              f"threshold {fmt(threshold)} (calibrated to {fpr_label(fpr)} FPR on human calibration text), with the "
              "documents it abstains on counted as not flagged: the rate the detectability gate judges. AUROC leaves "
              "abstentions out.", ""]
    lines += detection_rows_table(rows + [total], {id(total): f"all {size} samples"}) + [""]
    lines += [f"Human test documents flagged at this threshold (measured false-positive rate): "
              f"{fmt(human_fpr(evaluation), 'pct')}.", ""]
    lines += image(plots, "detection_by_sampling", f"Flagged at the calibrated {fpr_label(fpr)} FPR threshold "
                                                   "by sample set")
    lines += ["#### By length (tokens)", ""]
    groups = by_length(evaluation)
    if groups:
        ordered = {k: groups[k] for k in sorted(groups, key=bucket_order)}
        lines += length_table(ordered) + [""]
        lines += image(plots, "auroc_by_length", "AUROC by length bucket")
    else:
        reason = (f"the stage measured length buckets over the samples of {', '.join(stage_sizes(evaluation))} "
                  "together" if pooled_stage(evaluation) else ABSENT)
        lines += [f"By length: {not_measured(reason)}.", ""]
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
    if not isinstance(tr.get("auroc"), list):
        return lines + [f"Transfer matrix: {not_measured()}.", ""]
    # only AUROC: a rate at another detector's threshold would be a second flagged rate for the same samples
    lines += ["AUROC of a detector trained on the row's size, tested on the column's size:", ""]
    lines += _matrix_table(tr["sizes"], tr["auroc"], "auroc") + [""]
    summary = transfer_summary(tr)
    lines += ([summary, ""] if summary else [])
    return lines + image(plots, "transfer", "Transfer AUROC heatmap")


def _own_gain(evaluation: dict) -> float | None:
    """``1 - ppl(this size) / ppl(previous release)`` on the same human documents, for a size
    of a stage whose recorded quality gain is another size's."""
    size, prev = get(evaluation, "model", "size"), get(evaluation, "quality_gain", "vs")
    a, b = get(evaluation, "perplexity", prev, "ppl"), get(evaluation, "perplexity", size, "ppl")
    return 1.0 - b / a if is_num(a) and is_num(b) and a else None


def quality_gain_value(evaluation: dict) -> str:
    """``0.206 [0.18, 0.23]``, or why the quality gain of this size is not measured."""
    qg = get(evaluation, "quality_gain", default={})
    reason = "no earlier released size to compare with" if not released_before(evaluation) else ABSENT
    value = qg.get("value") if isinstance(qg, dict) else None
    gained = qg.get("size") if isinstance(qg, dict) else None
    if gained is not None and gained != get(evaluation, "model", "size"):
        own = _own_gain(evaluation)
        return f"{fmt(own, reason=ABSENT)} (CI not measured: the stage bootstrapped the gain of {gained})" \
            if own is not None else not_measured(f"the stage measured the gain of {gained}")
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
        role = "this size" if s == size else "previous release" if s == prev else \
            "same stage" if s in stage_sizes(evaluation) else ""
        rows.append([str(s), role, fmt_ci(p.get("ppl"), p.get("ci"), "ppl"), fmt(p.get("n_docs"), "int"),
                     fmt(p.get("n_tokens"), "int")])
    lines += table(["size", "role", "perplexity [CI]", "documents", "tokens"], rows, right={3, 4}) + [""]
    lines += [quality_gain_text(evaluation), ""]
    return lines + image(plots, "perplexity", "Perplexity by size")


def quantitative_lines(evaluation: dict, plots: dict | None = None) -> list[str]:
    """The whole "Quantitative analyses" section body."""
    lines = ["### Release gates", ""] + gates_lines(evaluation)
    lines += detection_lines(evaluation, plots) + attack_lines(evaluation) + transfer_lines(evaluation, plots)
    lines += perplexity_lines(evaluation, plots)
    known = {"detection_by_sampling", "auroc_by_length", "transfer", "perplexity"}
    for name in [n for n in (plots or {}) if n not in known]:
        lines += image(plots, name, name.replace("_", " "))
    return lines

"""The policy prose of a model card (release banner, intended use, ethical considerations,
caveats and recommendations), templated on one size's evaluation.

The wording is fixed policy; every name and number in it comes from the evaluation.
"""

from __future__ import annotations

from gpt2guard.release.card_format import (
    bucket_order, fmt, fmt_ci, fpr_label, get, is_num, sampling_label, tpr_key, valid_ci,
)
from gpt2guard.release.card_meta import detector_name, model_name
from gpt2guard.release.card_quant import detector_fpr, released_before, transfer_summary

TIERS = {
    "public": "anyone may download the weights",
    "partners": "weights go only to partner organisations under a sharing agreement",
    "researchers": "weights go to vetted researchers on request",
    "internal": "weights stay inside the releasing organisation",
    "none": "nobody outside the evaluation has access",
}


def tier_text(tier) -> str:
    """``partners`` -> ``**partners** (weights go only to partner organisations ...)``."""
    if not tier:
        return "not recorded"
    return f"**{tier}**" + (f" ({TIERS[tier]})" if tier in TIERS else "")


def tier_phrase(tier) -> str:
    """``partners`` -> ``the **partners** tier (weights go only to partner organisations ...)``."""
    if not tier:
        return "an access tier not recorded"
    return f"the **{tier}** tier" + (f" ({TIERS[tier]})" if tier in TIERS else "")


def stage_text(evaluation: dict) -> str:
    """``stage 2 (`medium`, 2019-05-03)``."""
    s = get(evaluation, "stage", default={})
    if s.get("index") is None and not s.get("name"):
        return "a stage not recorded"
    date = f", {s['date']}" if s.get("date") else ""
    return f"stage {s.get('index', '?')} (`{s.get('name', '?')}`{date})"


def failed_gates(evaluation: dict, required_only: bool = True) -> list[dict]:
    """Gates that were evaluated and did not pass."""
    return [g for g in get(evaluation, "gates", default=[]) if isinstance(g, dict) and g.get("passed") is False
            and (g.get("required", True) or not required_only)]


def _gate_short(g: dict) -> str:
    return f"{g.get('name', 'unnamed')} ({fmt(g.get('value'))}, needed {g.get('op', '')} {fmt(g.get('threshold'))})"


def banner(evaluation: dict) -> list[str]:
    """The line under the title: released to which tier, or prominently NOT released and why."""
    decision, reason = get(evaluation, "stage", "decision"), get(evaluation, "stage", "reason", default="")
    name, where = model_name(evaluation), stage_text(evaluation)
    if decision == "release":
        return [f"> **Released** at {where} to {tier_phrase(get(evaluation, 'stage', 'tier'))}"
                + (f"; {reason}." if reason else "."), ""]
    if decision == "hold":
        failed = failed_gates(evaluation)
        extra = f" Required gates failed: {'; '.join(map(_gate_short, failed))}." if failed else ""
        return [f"> **NOT RELEASED.** `{name}` was held at {where}: {reason or 'no reason recorded'}.{extra}", ""]
    return [f"> **Release decision not recorded** for `{name}` at {where}; treat it as not released.", ""]


def detection_phrases(evaluation: dict) -> list[str]:
    """``63% [55%, 71%] of top-k 40 samples`` for every sampling method measured: the share
    flagged at the calibrated threshold (what the detectability gate judges) when the
    evaluation has it, else the TPR at the target rate on the test split."""
    size = get(evaluation, "model", "size")
    cells = get(evaluation, "detection", "by_size_sampling", default={}) or {}
    if isinstance(cells.get(size), dict):
        return [f"{fmt_ci(m['tpr'], m.get('tpr_ci'), 'pct')} of {sampling_label(method)} samples"
                for method, m in cells[size].items() if isinstance(m, dict) and is_num(m.get("tpr"))]
    key = tpr_key(detector_fpr(evaluation))
    out = []
    for method, m in (get(evaluation, "detection", "by_sampling", default={}) or {}).items():
        if isinstance(m, dict) and is_num(m.get(key)):
            out.append(f"{fmt_ci(m[key], m.get(key + '_ci'), 'pct')} of {sampling_label(method)} samples")
    return out


def detection_sentence(evaluation: dict) -> str:
    """The headline detection claim, or that it was not measured."""
    fpr = detector_fpr(evaluation)
    phrases = detection_phrases(evaluation)
    size = get(evaluation, "model", "size", default="this size")
    if not phrases:
        overall = get(evaluation, "detection", "overall", default={})
        key = tpr_key(fpr)
        if not is_num(overall.get(key)):
            return (f"Detection of {size} samples at a {fpr_label(fpr)} false-positive rate: not measured: "
                    "absent from the evaluation.")
        phrases = [f"{fmt_ci(overall[key], overall.get(key + '_ci'), 'pct')} of all {size} samples"]
    return (f"At the calibrated {fpr_label(fpr)} false-positive rate the released detector "
            f"({detector_name(evaluation)}) flags " + ", ".join(phrases) + f" written by {size}.")


def worst_sampling(evaluation: dict) -> tuple[str, float] | None:
    """The sampling method whose samples the detector flags least often, with that rate."""
    key = tpr_key(detector_fpr(evaluation))
    rates = {k: m[key] for k, m in (get(evaluation, "detection", "by_sampling", default={}) or {}).items()
             if isinstance(m, dict) and is_num(m.get(key))}
    if not rates:
        return None
    k = min(rates, key=rates.get)
    return k, rates[k]


def intended_use_lines(evaluation: dict) -> list[str]:
    """Primary uses, who may use it at this access tier, and out-of-scope uses."""
    name = model_name(evaluation)
    decision, tier = get(evaluation, "stage", "decision"), get(evaluation, "stage", "tier")
    n = get(evaluation, "model", "n_params")
    what = (f"a {fmt(n, 'int')}-parameter GPT-2-architecture language model" if is_num(n)
            else "a GPT-2-architecture language model (parameter count not recorded)")
    if decision == "release":
        who = f"It is released to {tier_phrase(tier)} at {stage_text(evaluation)}."
    else:
        who = (f"It is **not released** ({stage_text(evaluation)}): use is limited to the evaluation that held it, "
               "and its weights and unfiltered samples must not be shared.")
    return [f"`{name}` is {what}. {who}", "",
            "Primary intended uses:", "",
            "- research on the behaviour, capabilities and risks of language models of increasing size;",
            "- building and evaluating detectors of machine-written text, together with the released detector;",
            "- writing assistance and creative text where a person reviews every output.", "",
            "Out of scope: presenting its text as written by a person; generating news, product reviews, "
            "political or health content meant to be taken as fact; impersonation, spam and harassment; "
            "any decision about a person that rests on the model's output.", "",
            detection_sentence(evaluation), ""]


def ethical_lines(evaluation: dict) -> list[str]:
    """Risks of the model and of its detector, with the measured rates."""
    size = get(evaluation, "model", "size", default="this size")
    fpr = detector_fpr(evaluation)
    corpus = get(evaluation, "model", "training", "corpus", default="a corpus not recorded in the evaluation")
    lines = [f"- Misuse: text from {size} can pass as human writing and be used for spam, disinformation, "
             "impersonation or academic dishonesty. Staged release exists to measure this risk before wider access.",
             f"- Bias and accuracy: the model reproduces the topics, style and biases of its training text, "
             f"{corpus}. Its statements are not facts."]
    worst = worst_sampling(evaluation)
    if worst:
        lines.append(f"- Missed detections: {sampling_label(worst[0])} samples are the hardest to detect; "
                     f"{fmt(1 - worst[1], 'pct')} of them pass the released detector unflagged.")
    measured = get(evaluation, "detection", "overall", "fpr")
    lines.append(f"- False accusations: the detector is calibrated so that {fpr_label(fpr)} of human documents "
                 f"are wrongly flagged (measured on held-out human text: {fmt(measured, 'pct')}). A flag is "
                 "evidence to review, never proof that a person did not write a text.")
    if get(evaluation, "stage", "decision") != "release":
        reason = get(evaluation, "stage", "reason", default="no reason recorded")
        lines.append(f"- Held: this size was withheld ({reason}); "
                     "sharing its weights would undo the staged-release decision.")
    return lines + [""]


WIDE_CI = 0.2
"""An interval on a rate wider than this (20 points) is called out as a caveat."""


def wide_intervals(evaluation: dict, width: float = WIDE_CI) -> list[str]:
    """Groups whose TPR interval at the detector's FPR is wider than ``width``."""
    key = tpr_key(detector_fpr(evaluation))
    groups = {**(get(evaluation, "detection", "by_sampling", default={}) or {}),
              **(get(evaluation, "detection", "by_length", default={}) or {})}
    return [f"{sampling_label(g)} ({fmt_ci(m[key], m[key + '_ci'], 'pct')})" for g, m in groups.items()
            if isinstance(m, dict) and valid_ci(m.get(key + "_ci")) and m[key + "_ci"][1] - m[key + "_ci"][0] > width]


def missing_cis(evaluation: dict) -> list[str]:
    """Overall metrics that have a value but no interval."""
    overall = get(evaluation, "detection", "overall", default={})
    return [k for k in overall if k.startswith(("auroc", "tpr@")) and not k.endswith("_ci")
            and is_num(overall[k]) and not valid_ci(overall.get(k + "_ci"))]


RECOMMENDATIONS = [
    "Recommendations:", "",
    "- Recalibrate the detector's threshold on human text from your own domain before relying on its "
    "false-positive rate; the rates above hold for the evaluation's human set only.",
    "- Report detection rates with their intervals, and re-evaluate when new sampling methods, lengths "
    "or fine-tuned variants appear.",
    "- Do not act against a person on a detector flag alone.", ""]


def caveat_items(evaluation: dict) -> list[str]:
    """Caveats computed from one evaluation, one sentence each (without the bullet)."""
    overall = get(evaluation, "detection", "overall", default={})
    threshold = fmt_ci(get(evaluation, "detector", "threshold"), get(evaluation, "detector", "threshold_ci"))
    items = [f"Sample size: detection rests on {fmt(overall.get('n_human'), 'int')} human and "
             f"{fmt(overall.get('n_machine'), 'int')} machine documents; the threshold on "
             f"{fmt(get(evaluation, 'detector', 'n_human_calibration'), 'int')} human calibration documents "
             f"(threshold {threshold})."]
    wide = wide_intervals(evaluation)
    if wide:
        items.append(f"Wide intervals (more than {fmt(WIDE_CI * 100, 'int')} points) at "
                     f"{fpr_label(detector_fpr(evaluation))} FPR: "
                     + ", ".join(wide) + ".")
    missing = missing_cis(evaluation)
    if missing:
        items.append("No confidence interval for: " + ", ".join(missing) + " (too few documents to bootstrap).")
    by_length = get(evaluation, "detection", "by_length", default={}) or {}
    scored = {k: m["auroc"] for k, m in by_length.items() if isinstance(m, dict) and is_num(m.get("auroc"))}
    if scored:
        low = min(sorted(scored, key=bucket_order), key=scored.get)
        items.append(f"Length: detection is weakest on documents of {low} tokens (AUROC {fmt(scored[low], 'auroc')}).")
    tr = get(evaluation, "transfer")
    summary = transfer_summary(tr) if isinstance(tr, dict) else None
    if summary:
        items.append(f"Transfer: {summary[0].lower()}{summary[1:]} "
                     "A detector may miss text from sizes it was not trained on.")
    if is_num(overall.get("n_abstain")) and overall["n_abstain"] > 0:
        items.append(f"The detector abstained on {fmt(overall['n_abstain'], 'int')} documents, left out of every rate.")
    if get(evaluation, "detector", "fallback"):
        items.append(f"Detector fallback in use: {get(evaluation, 'detector', 'fallback')}.")
    for g in failed_gates(evaluation, required_only=False):
        items.append(f"Gate {_gate_short(g)}" + ("" if g.get("required", True) else " (advisory)") + ".")
    if not released_before(evaluation):
        items.append("Nothing public before this stage: quality is measured against the pre-release reference, "
                     "and third parties hold no detector yet.")
    return items


def caveat_lines(evaluation: dict) -> list[str]:
    """Caveats computed from the evaluation, then standing recommendations."""
    return [f"- {item}" for item in caveat_items(evaluation)] + [""] + RECOMMENDATIONS
